"""End to end across two hubs on loopback, each with its own database (issue #5 "done means").

Node A (the consortium hub) is a separate gunicorn process; node B (a cloud provider's node) is
this test process with its live server. B reaches A only through a recording proxy, so the test
sees every byte B sent to A.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from taxii2client.v21 import Collection as TaxiiCollection

from indicators.hashing import Keyring, account_pseudonym, hash_identifier, normalize_email
from indicators.models import Account, Alert, IndicatorMatchState, StixObject
from sharing.models import CollectionEntry, FeedbackReport, Membership, Subscription
from sharing.services import GrantSpec, collection_create, organisation_create
from tests.sharing.feedback.nodes import NodeA, RecordingProxy, hrefs, web_post, web_session
from tests.stix_builders import make_indicator

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RAW_EMAIL = "Hydra.Operator+batch7@example.org"
RAW_PHONE = "+44 20 7946 0321"
ACCOUNT_ID = "cust-7f3a9-hydra-0042"
ACCOUNT_IP = "203.0.113.77"


@pytest.fixture
def node_a(tmp_path):
    node = NodeA(tmp_path)
    try:
        node.setup()
        node.start()
        yield node
    finally:  # also when setup or start failed: no server or database is left behind
        node.close()


@pytest.fixture
def proxy(node_a):
    recorder = RecordingProxy(node_a.port)
    yield recorder
    recorder.close()


@pytest.fixture
def node_b(db, eager_tasks, settings):
    """Node B's own side: its keyring, operator, a reviewer, and the collection pulled objects land in."""
    settings.MDX_KEYRING = Keyring.for_tests()
    operator = organisation_create(name="Cloud B Operations", kind="hub")
    mirror = collection_create(title="From the consortium", grants=[GrantSpec(operator, True, False)])
    reviewer = get_user_model().objects.create_user("reviewer-b", password="node-b-reviewer-pw")
    Membership.objects.create(user=reviewer, organisation=operator, role=Membership.Role.REVIEWER)
    return mirror


def subscribe(node_a, proxy, mirror, **options) -> Subscription:
    call_command(
        "add_subscription",
        name="Consortium",
        discovery_url=f"{proxy.url}/taxii2/",
        collection=node_a.info["feed"],
        token=node_a.info["cloud_token"],
        into=str(mirror.pk),
        inbox=node_a.info["inbox"],
        identity=node_a.info["cloud_identity"],
        **options,
    )
    return Subscription.objects.get(name="Consortium")


def lab_collection(node_a) -> TaxiiCollection:
    """The review lab's own taxii2-client view of A's feed (direct, not through B's proxy)."""
    url = f"{node_a.url}/taxii2/api/collections/{node_a.info['feed']}/"
    return TaxiiCollection(url, user="lab", password=node_a.info["lab_token"])


def email_indicator(node_a) -> dict:
    """The review lab's indicator: the keyed hash of the hydra operator's e-mail (consortium key)."""
    keyring = settings.MDX_KEYRING
    email_hash = hash_identifier("email", RAW_EMAIL, key=keyring.key())
    return make_indicator(
        name="Hydra operator e-mail (keyed hash)",
        created_by_ref=node_a.info["lab_identity"],
        pattern=(
            f"[mdx-hashed-identifier:identifier_type = 'email' AND mdx-hashed-identifier:key_id = "
            f"'{keyring.current}' AND mdx-hashed-identifier:value = '{email_hash}']"
        ),
    )


def import_accounts(tmp_path) -> None:
    lines = [
        {
            "account_id": ACCOUNT_ID,
            "created_at": "2026-10-06T09:00:00Z",
            "tier": "education-program",
            "identifiers": [{"type": "email", "value": RAW_EMAIL}, {"type": "phone", "value": RAW_PHONE}],
            "ips": [{"ip": ACCOUNT_IP, "signup": True}],
        },
        {"account_id": "cust-ordinary-0001", "created_at": "2026-09-01T09:00:00Z",
         "identifiers": [{"type": "email", "value": "someone.else@example.com"}]},
    ]  # fmt: skip
    path = tmp_path / "accounts.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    call_command("import_accounts", str(path))


def test_an_indicator_travels_a_to_b_and_only_a_count_comes_back(
    node_a, proxy, node_b, live_server, tmp_path
):
    keyring = settings.MDX_KEYRING
    email_hash = hash_identifier("email", RAW_EMAIL, key=keyring.key())
    indicator = email_indicator(node_a)

    # 1. The review lab submits to A with taxii2-client; it waits for A's reviewer.
    status = lab_collection(node_a).add_objects({"objects": [indicator]}, wait_for_completion=False)
    assert status.pending_count == 1 and status.status == "pending"

    # 2. A's reviewer approves it in A's web UI (the TAXII status id is the submission).
    reviewer_a = web_session(node_a.url, "reviewer-a", "node-a-reviewer-pw")
    approved = web_post(reviewer_a, f"{node_a.url}/submissions/{status.id}/approve/", {})
    assert approved.status_code == 200, approved.text[:500]
    status.refresh()
    assert status.status == "complete" and status.success_count == 1

    # 3. B subscribes (with A's inbox for feedback), imports its accounts and polls.
    mirror = node_b
    subscribe(node_a, proxy, mirror)
    import_accounts(tmp_path)
    call_command("poll_subscriptions", name="Consortium")
    assert CollectionEntry.objects.filter(collection=mirror, stix_id=indicator["id"]).count() == 1

    # 4. B matched its own account: one alert, on the hydra account only.
    account = Account.objects.get(account_id=ACCOUNT_ID)
    alert = Alert.objects.get()
    assert alert.account_id == account.pk and alert.status == Alert.Status.NEW

    # 5. B's reviewer confirms the alert and reports to the hub, all in B's web UI.
    b = live_server.url
    reviewer_b = web_session(b, "reviewer-b", "node-b-reviewer-pw")
    decided = web_post(
        reviewer_b, f"{b}/alerts/{alert.pk}/decide/", {"decision": "confirm", "note": "cluster"}
    )
    assert decided.status_code == 200
    page = reviewer_b.get(f"{b}/alerts/{alert.pk}/", timeout=10).text
    [report_link] = hrefs(page, "/feedback/new/")
    assert "state=confirmed" in report_link
    form = reviewer_b.get(f"{b}{report_link}", timeout=10)
    prepared = web_post(
        reviewer_b,
        form.url,
        {"indicator": indicator["id"], "review_state": "confirmed", "opinion": "agree",
         "explanation": "Confirmed after manual review; accounts suspended."},
    )  # fmt: skip
    report = FeedbackReport.objects.get()
    assert prepared.url.endswith(f"/feedback/{report.pk}/")
    assert json.loads(report.payload)["objects"][0]["count"] == 1
    sent = web_post(reviewer_b, f"{b}/feedback/{report.pk}/send/", {})
    report.refresh_from_db()
    assert report.status == FeedbackReport.Status.SENT, (report.error, sent.text[:300])
    assert report.remote_status == "complete"

    # 6. A's originator (the review lab) sees the aggregate count through A's REST API.
    seen = node_a.rest(f"objects/{indicator['id']}/feedback/", node_a.info["lab_token"]).json()
    assert seen["scope"] == "originator"
    assert seen["sighted_by_members"] == 1 and seen["total_count"] == 1
    assert seen["opinions"] == {"agree": 1, "disagree": 0, "neutral": 0}

    # 7. The lab revokes its indicator on A: published at once (a revocation only withdraws),
    #    and B's next poll brings it. B stops counting the indicator; the reviewer's decision
    #    on the account stays (only open alerts are withdrawn, DOMAIN.md §4.4).
    revoked = dict(indicator, revoked=True, modified="2026-11-24T00:00:00.000Z")
    status = lab_collection(node_a).add_objects({"objects": [revoked]}, wait_for_completion=False)
    assert status.status == "complete" and status.success_count == 1
    call_command("poll_subscriptions", name="Consortium")
    latest = CollectionEntry.objects.get(collection=mirror, stix_id=indicator["id"], is_latest=True)
    assert latest.stix_object.revoked
    states = set(
        IndicatorMatchState.objects.filter(indicator__stix_id=indicator["id"]).values_list(
            "status", flat=True
        )
    )
    assert IndicatorMatchState.Status.WITHDRAWN in states, states
    alert.refresh_from_db()
    assert alert.status == Alert.Status.CONFIRMED

    # 8. Everything B sent to A: the feedback POST is byte for byte the previewed payload, and no
    #    request carries an account id, pseudonym, raw or normalised identifier, hash or address.
    posts = [r for r in proxy.requests if r.method == "POST"]
    assert [p.body.decode() for p in posts] == [report.payload]
    secrets = {
        ACCOUNT_ID, account.pseudonym, account_pseudonym(keyring.pseudonym_key, ACCOUNT_ID), RAW_EMAIL,
        normalize_email(RAW_EMAIL), RAW_PHONE, "+442079460321", "2079460321", email_hash, ACCOUNT_IP,
    }  # fmt: skip
    for request in proxy.requests:
        text = request.path + "\n" + request.body.decode("utf-8", "replace")
        for secret in secrets:
            assert secret.lower() not in text.lower(), (request.method, request.path, secret)
    sighting = json.loads(posts[0].body)["objects"][0]
    assert "observed_data_refs" not in sighting
    assert sighting["first_seen"].endswith("T00:00:00Z") and sighting["last_seen"].endswith("T00:00:00Z")
    assert sighting["object_marking_refs"] == ["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"]
    assert sighting["where_sighted_refs"] == [node_a.info["cloud_identity"]]


def test_stopping_a_in_the_middle_of_a_poll_loses_and_duplicates_nothing(node_a, proxy, node_b, settings):
    settings.MDX_FEDERATION_PAGE_SIZE = 10
    settings.MDX_FEDERATION_RETRIES = 0
    # A's lab publishes 35 indicators; A's operator approves them (here through the service,
    # the review UI is covered above), so the feed holds 35 objects for B to page through.
    objects = [
        make_indicator(name=f"Egress {i}", pattern=f"[ipv4-addr:value = '198.51.100.{i + 1}']")
        for i in range(35)
    ]
    status = lab_collection(node_a).add_objects({"objects": objects}, wait_for_completion=False)
    reviewer_a = web_session(node_a.url, "reviewer-a", "node-a-reviewer-pw")
    assert web_post(reviewer_a, f"{node_a.url}/submissions/{status.id}/approve/", {}).status_code == 200

    subscription = subscribe(node_a, proxy, node_b)
    pages_served = []

    def stop_a_after_two_pages(request):
        if request.method == "GET" and "/objects/" in request.path:
            pages_served.append(request.path)
            if len(pages_served) == 3:
                node_a.stop()  # A goes down while B is asking for the third page

    proxy.on_request = stop_a_after_two_pages
    with pytest.raises(CommandError, match="did not succeed: Consortium"):
        call_command("poll_subscriptions", name="Consortium")
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 1 and subscription.last_error
    landed = set(CollectionEntry.objects.filter(collection=node_b).values_list("stix_id", flat=True))
    assert len(landed) == 20  # exactly the two pages that were committed

    proxy.on_request = None
    node_a.start()
    call_command("poll_subscriptions", name="Consortium")
    entries = list(CollectionEntry.objects.filter(collection=node_b).values_list("stix_id", flat=True))
    assert sorted(entries) == sorted(o["id"] for o in objects)  # every object, each exactly once
    assert StixObject.objects.filter(stix_id__in=[o["id"] for o in objects]).count() == 35
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0 and subscription.objects_received == 35


def test_a_failed_send_is_kept_with_its_error_and_can_be_retried(node_a, proxy, node_b, tmp_path):
    """Sending while A is down records the error and keeps the report; sending again works."""
    from sharing.feedback_outbound import FeedbackError, feedback_prepare, feedback_send
    from sharing.services import objects_publish

    subscription = subscribe(node_a, proxy, node_b)
    indicator = email_indicator(node_a)
    objects_publish(collection=node_b, objects=[indicator], submitted_by=subscription.organisation)
    import_accounts(tmp_path)
    alert = Alert.objects.get()
    alert.status = Alert.Status.CONFIRMED
    alert.save()
    report = feedback_prepare(stix_id=indicator["id"], review_state="confirmed")
    node_a.stop()
    report = feedback_send(report=report)
    assert report.status == FeedbackReport.Status.FAILED and report.error
    node_a.start()
    report = feedback_send(report=report)
    assert report.status == FeedbackReport.Status.SENT, report.error
    with pytest.raises(FeedbackError, match="already sent"):
        feedback_send(report=report)
