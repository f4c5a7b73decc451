"""Outbound after a cluster review (DOMAIN.md §4.3.6): what a confirmed hydra cluster tells its hub.

The demo accounts hold one planted 40-account cluster sharing a prepaid card (PAR), a
residential /24 of sign-ups and a client fingerprint. A JA4 indicator pulled from the hub hits
it; the report derives indicators for the card and the /24 (not for the JA4, which the hub
already has), and sends a count-only sighting of the JA4 indicator to the hub's inbox.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from indicators import cluster_service as cs
from indicators.accounts import accounts_import
from indicators.cluster_values import cluster_identifiers
from indicators.demo_accounts import DEMO_CLUSTER, demo_accounts_generate
from indicators.hashing import Keyring, payment_hash
from indicators.models import Account, AccountCluster, AccountIdentifier, AccountIp, AccountPayment, Match
from sharing.cluster_report import cluster_report_prepare, rounded_count
from sharing.feedback_outbound import FeedbackError, feedback_send
from sharing.models import AuditEvent, CollectionEntry, FeedbackReport, SubmissionItem
from sharing.services import GrantSpec, collection_create, objects_publish, token_issue
from tests.stix_builders import TLP, make_indicator

pytestmark = pytest.mark.django_db

LINKED_AT = datetime(2026, 11, 23, tzinfo=UTC)  # the demo accounts' sign-ups end before this
# Two key epochs: the importer hashes every identifier under both; only the current one may leave.
KEYRING = Keyring(
    keys={"mdx-test-0": bytes(32), "mdx-test-1": b"\x02" * 32},
    current="mdx-test-1",
    pseudonym_key=b"\x01" * 32,
)
JA4_PATTERN = f"[mdx-client-fingerprint:ja4 = '{DEMO_CLUSTER.ja4}']"


def par_hmac() -> str:
    return payment_hash(KEYRING.key(), "par", DEMO_CLUSTER.par)


@pytest.fixture
def reported(fed_cast, settings, eager_tasks, django_capture_on_commit_callbacks):
    """Demo accounts, a subscription with an inbox, the JA4 indicator pulled through it and
    matched, and the planted cluster linked and confirmed."""
    settings.MDX_KEYRING = KEYRING
    result = accounts_import(demo_accounts_generate(3000), keyring=KEYRING)
    assert result.errors == []
    member = fed_cast.member
    fed_cast.discovery_url = "http://127.0.0.1:9/taxii2/"  # the sending test points it at a live server
    inbox = collection_create(title="Hub inbox", grants=[GrantSpec(member, False, True)], is_inbox=True)
    fed_cast.upstream.grants.filter(organisation=member).update(can_write=True)
    _, token = token_issue(organisation=member, scopes="read,write")
    subscription = fed_cast.subscribe(token=token, inbox=str(inbox.pk), identity=member.identity_id)
    trigger = make_indicator(pattern=JA4_PATTERN, tlp="amber")
    with django_capture_on_commit_callbacks(execute=True):
        objects_publish(collection=fed_cast.upstream, objects=[trigger], submitted_by=fed_cast.publisher)
        objects_publish(collection=fed_cast.mirror, objects=[trigger], submitted_by=subscription.organisation)
    cs.clusters_link(LINKED_AT)
    cluster = AccountCluster.objects.get()
    cs.cluster_review(cluster=cluster, status=AccountCluster.Status.CONFIRMED)
    fed_cast.inbox, fed_cast.subscription, fed_cast.trigger, fed_cast.cluster = (
        inbox,
        subscription,
        trigger,
        cluster,
    )
    return fed_cast


def objects_of(report: FeedbackReport) -> list[dict]:
    return json.loads(report.payload)["objects"]


def by_type(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["type"] == kind]


def test_the_report_has_a_rounded_infrastructure_new_identifiers_and_a_count_only_sighting(reported):
    cluster, trigger = reported.cluster, reported.trigger
    assert cluster.size == 40
    to_collection, to_inbox = cluster_report_prepare(cluster=cluster)
    assert (to_collection.destination, to_inbox.destination) == ("collection", "inbox")
    assert to_collection.cluster == to_inbox.cluster == cluster
    assert to_collection.indicator_stix_id == to_inbox.indicator_stix_id == trigger["id"]

    objects = objects_of(to_collection)
    [infrastructure] = by_type(objects, "infrastructure")
    profile = infrastructure["extensions"]["extension-definition--cd2b1f8c-69bb-4af2-a7a2-15347264af71"]
    assert profile["controlled_account_count"] == 40
    assert infrastructure["name"] == "Hydra cluster, member-observed"
    derived = by_type(objects, "indicator")
    assert {d["pattern"] for d in derived} == {
        "[mdx-payment-fingerprint:basis = 'par' AND mdx-payment-fingerprint:key_id = "
        f"'{KEYRING.current}' AND mdx-payment-fingerprint:value = '{par_hmac()}']",
        f"[mdx-ai-account:signup_ip_ref.value ISSUBSET '{DEMO_CLUSTER.cidr}']",
    }  # the JA4 is the hub's own indicator: not derived again
    ttl_days = {
        d["mdx_indicator_kind"]: (_time(d["valid_until"]) - _time(d["valid_from"])).days for d in derived
    }
    assert ttl_days == {"payment": 180, "network-range": 14}  # DOMAIN.md §4.4 TTLs
    relations = {
        (r["relationship_type"], r["source_ref"], r["target_ref"]) for r in by_type(objects, "relationship")
    }
    assert relations == {("indicates", trigger["id"], infrastructure["id"])} | {
        edge
        for d in derived
        for edge in (("derived-from", d["id"], trigger["id"]), ("indicates", d["id"], infrastructure["id"]))
    }
    assert all(o["object_marking_refs"] == [TLP["amber"]] for o in objects)
    assert all(o["created_by_ref"] == reported.member.identity_id for o in objects)

    [sighting] = objects_of(to_inbox)
    assert sighting["type"] == "sighting" and sighting["sighting_of_ref"] == trigger["id"]
    # 40 members matched it; only the bucket's lower bound leaves (40 would undo the rounding).
    assert (sighting["count"], sighting["mdx_count_bucket"]) == (10, "10-99")
    assert sighting["mdx_review_state"] == "confirmed"
    assert sighting["object_marking_refs"] == [TLP["amber+strict"]]
    assert "observed_data_refs" not in sighting
    assert sighting["first_seen"].endswith("T00:00:00Z") and sighting["last_seen"].endswith("T00:00:00Z")

    audit = AuditEvent.objects.get(action="cluster.report.prepare")
    assert audit.details["derived_indicators"] == 2 and audit.details["controlled_account_count"] == 40


def test_nothing_in_either_report_names_an_account(reported):
    assert len(KEYRING.keys) == 2  # so the card was hashed under an older epoch too
    reports = cluster_report_prepare(cluster=reported.cluster)
    text = "\n".join(r.payload for r in reports)
    for account_id, pseudonym in Account.objects.values_list("account_id", "pseudonym"):
        assert f'"{account_id}"' not in text and account_id + " " not in text
        assert pseudonym not in text
    # Per-customer hashes never leave; of the card only its current-epoch hash does.
    for value in AccountIdentifier.objects.values_list("value", flat=True):
        assert value not in text
    for value in AccountPayment.objects.exclude(value=par_hmac()).values_list("value", flat=True):
        assert value not in text
    for ip in AccountIp.objects.filter(account__cluster_membership__cluster=reported.cluster).values_list(
        "ip", flat=True
    ):
        assert f"'{ip}'" not in text and f'"{ip}"' not in text


def test_identifiers_held_by_fewer_than_three_members_stay_home(reported):
    members = list(Account.objects.filter(cluster_membership__cluster=reported.cluster).order_by("pk"))
    shared_email, shared_phone = "e1" * 32, "a7" * 32
    for account in members[:3]:
        AccountIdentifier.objects.create(
            account=account, identifier_type="email-canonical", key_id=KEYRING.current, value=shared_email,
            normalization="mdx-email-canonical-v1",
        )  # fmt: skip
    for account in members[3:5]:
        AccountIdentifier.objects.create(
            account=account, identifier_type="phone", key_id=KEYRING.current, value=shared_phone,
            normalization="mdx-phone-e164-v1",
        )  # fmt: skip
    to_collection, _ = cluster_report_prepare(cluster=reported.cluster)
    patterns = [d["pattern"] for d in by_type(objects_of(to_collection), "indicator")]
    assert any(shared_email in p and "'email-canonical'" in p for p in patterns)
    assert not any(shared_phone in p for p in patterns)


def test_the_derived_indicators_match_exactly_the_cluster_here(reported, django_capture_on_commit_callbacks):
    to_collection, _ = cluster_report_prepare(cluster=reported.cluster)
    derived = by_type(objects_of(to_collection), "indicator")
    local = collection_create(title="Derived check", grants=[])
    with django_capture_on_commit_callbacks(execute=True):
        stored, problems = objects_publish(collection=local, objects=derived)
    assert problems == []
    members = set(reported.cluster.members.values_list("account_id", flat=True))
    for obj in stored:
        assert set(Match.objects.filter(indicator=obj).values_list("account_id", flat=True)) == members


def identifiers(cluster) -> list:
    chosen, _ = cluster_identifiers(cluster.pk, current_key=KEYRING.current, limit=50)
    return chosen


def test_a_value_an_outside_account_holds_or_an_indicator_names_is_not_derived(reported):
    outsider = Account.objects.exclude(cluster_membership__cluster=reported.cluster).first()
    AccountPayment.objects.create(account=outsider, basis="par", key_id=KEYRING.current, value=par_hmac())
    assert {i.kind for i in identifiers(reported.cluster)} == {
        "network-range"
    }  # the card: not the cluster's alone

    # An outside account that signed up from the cluster's /24 rules the network out too.
    AccountIp.objects.create(
        account=outsider, ip="198.51.100.77", ip_low=bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 77]),
        ip_high=bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 77]), is_signup=True,
    )  # fmt: skip
    assert identifiers(reported.cluster) == []


def test_a_network_a_stored_indicator_covers_is_not_derived(reported):
    objects_publish(
        collection=reported.mirror,
        objects=[make_indicator(pattern="[ipv4-addr:value ISSUBSET '198.51.100.0/22']")],
    )
    assert {i.kind for i in identifiers(reported.cluster)} == {"payment"}


def test_a_second_report_versions_what_was_sent_and_revokes_what_no_longer_holds(reported):
    first, first_inbox = cluster_report_prepare(cluster=reported.cluster)
    FeedbackReport.objects.filter(pk__in=[first.pk, first_inbox.pk]).update(status="sent")
    second, second_inbox = cluster_report_prepare(cluster=reported.cluster)  # within a millisecond or so
    old = {o["id"]: o for o in objects_of(first) + objects_of(first_inbox)}
    new = {o["id"]: o for o in objects_of(second) + objects_of(second_inbox)}
    assert old.keys() == new.keys()  # the sighting included: the hub replaces it, not adds to it
    for stix_id, obj in new.items():
        assert obj["created"] == old[stix_id]["created"] and obj["modified"] > old[stix_id]["modified"]

    # The card turns up on an outside account: the next report revokes its indicator.
    FeedbackReport.objects.filter(pk__in=[second.pk, second_inbox.pk]).update(status="sent")
    outsider = Account.objects.exclude(cluster_membership__cluster=reported.cluster).first()
    AccountPayment.objects.create(account=outsider, basis="par", key_id=KEYRING.current, value=par_hmac())
    third, _ = cluster_report_prepare(cluster=reported.cluster)
    [card] = [o for o in by_type(objects_of(second), "indicator") if o["mdx_indicator_kind"] == "payment"]
    revoked = [o for o in by_type(objects_of(third), "indicator") if o.get("revoked")]
    assert [(o["id"], o["created"], o["pattern"]) for o in revoked] == [
        (card["id"], card["created"], card["pattern"])
    ]
    # Its two relationships (derived-from the trigger, indicates the infrastructure) are revoked with it.
    card_edges = [r for r in by_type(objects_of(third), "relationship") if r["source_ref"] == card["id"]]
    assert sorted(r["relationship_type"] for r in card_edges) == ["derived-from", "indicates"]
    assert all(r.get("revoked") for r in card_edges)
    assert not any(
        r.get("revoked") for r in by_type(objects_of(third), "relationship") if r not in card_edges
    )
    FeedbackReport.objects.filter(pk=third.pk).update(status="sent")
    fourth, _ = cluster_report_prepare(cluster=reported.cluster)
    assert all(card["id"] not in (o["id"], o.get("source_ref")) for o in objects_of(fourth))  # revoked once


def test_drafts_bind_nothing(reported):
    first, _ = cluster_report_prepare(cluster=reported.cluster)  # never sent
    second, _ = cluster_report_prepare(cluster=reported.cluster)
    assert not {o["id"] for o in by_type(objects_of(first), "indicator")} & {
        o["id"] for o in by_type(objects_of(second), "indicator")
    }


def test_a_cluster_relinked_after_its_review_must_be_reviewed_again(reported, client):
    newcomer = Account.objects.exclude(cluster_membership__cluster=reported.cluster).order_by("pk").first()
    AccountPayment.objects.create(
        account=newcomer, basis="par", key_id=KEYRING.current, value=par_hmac(), first_used=LINKED_AT
    )
    cs.clusters_link(LINKED_AT)
    cluster = AccountCluster.objects.get(pk=reported.cluster.pk)  # the same cluster, one more member
    assert cluster.status == "confirmed" and cluster.size == 41
    with pytest.raises(FeedbackError, match="relinking changed this cluster's members"):
        cluster_report_prepare(cluster=cluster)
    cs.cluster_review(cluster=cluster, status=AccountCluster.Status.CONFIRMED)
    assert cluster_report_prepare(cluster=cluster)


@pytest.mark.parametrize(
    "change, problem",
    [
        ("unreviewed", "only a confirmed cluster is reported"),
        ("dismissed", "only a confirmed cluster is reported"),
        ("unknown-indicator", "is not an active, subscribed indicator below TLP:RED"),
        ("red", r"no active indicator from a subscribed hub \(below TLP:RED\)"),
        ("not-subscribed", r"no active indicator from a subscribed hub \(below TLP:RED\)"),
    ],
)
def test_reports_are_refused_with_a_reason(reported, change, problem):
    cluster = reported.cluster
    indicator = ""
    if change in ("unreviewed", "dismissed"):
        status = AccountCluster.Status.NEW if change == "unreviewed" else AccountCluster.Status.DISMISSED
        cs.cluster_review(cluster=cluster, status=status)
    elif change == "unknown-indicator":
        indicator = make_indicator()["id"]
    elif change == "red":
        newer = dict(reported.trigger, modified="2026-11-30T00:00:00.000Z", object_marking_refs=[TLP["red"]])
        objects_publish(
            collection=reported.mirror, objects=[newer], submitted_by=reported.subscription.organisation
        )
    else:
        CollectionEntry.objects.filter(collection=reported.mirror).update(submitted_by=reported.publisher)
    with pytest.raises(FeedbackError, match=problem):
        cluster_report_prepare(cluster=cluster, indicator=indicator)
    assert not FeedbackReport.objects.exists()


def test_a_collection_report_whose_trigger_turned_red_is_not_sent(reported):
    to_collection, _ = cluster_report_prepare(cluster=reported.cluster)
    newer = dict(reported.trigger, modified="2026-11-30T00:00:00.000Z", object_marking_refs=[TLP["red"]])
    objects_publish(
        collection=reported.mirror, objects=[newer], submitted_by=reported.subscription.organisation
    )
    with pytest.raises(FeedbackError, match="no longer an active indicator below TLP:RED"):
        feedback_send(report=to_collection)
    to_collection.refresh_from_db()
    assert to_collection.status == "draft"


def test_sending_puts_the_objects_in_the_hub_collection_and_the_sighting_in_its_inbox(reported, live_server):
    reported.subscription.discovery_url = f"{live_server.url}/taxii2/"
    reported.subscription.save()
    to_collection, to_inbox = cluster_report_prepare(cluster=reported.cluster)
    for report in (to_collection, to_inbox):
        report = feedback_send(report=report)
        assert (report.status, report.error) == ("sent", "")
    sent = {o["id"] for o in objects_of(to_collection)}
    waiting = SubmissionItem.objects.filter(
        submission__collection=reported.upstream,
        submission__organisation=reported.member,
        state=SubmissionItem.State.PENDING,
    )
    assert set(waiting.values_list("stix_id", flat=True)) == sent  # Member Cloud is reviewed at the hub
    [sighting] = objects_of(to_inbox)
    assert CollectionEntry.objects.filter(collection=reported.inbox, stix_id=sighting["id"]).exists()
    assert not CollectionEntry.objects.filter(collection=reported.inbox, stix_id__in=sent).exists()


@pytest.mark.parametrize(
    "size, rounded",
    [(2, 10), (23, 20), (40, 40), (45, 50), (99, 100), (149, 150), (1234, 1200), (20345, 20000)],
)
def test_the_account_count_is_rounded(size, rounded):
    assert rounded_count(size) == rounded


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- Web UI and REST -------------------------------------------------------------------------------


@pytest.fixture
def operator(make_org, django_user_model):
    from sharing.models import Membership

    hub = make_org("Node Operator", "hub", trusted=True)
    reviewer = django_user_model.objects.create_user("rey", password="correct-horse-battery-9")
    viewer = django_user_model.objects.create_user("vic", password="correct-horse-battery-9")
    Membership.objects.create(user=reviewer, organisation=hub, role="reviewer")
    Membership.objects.create(user=viewer, organisation=hub, role="viewer")
    _, admin_token = token_issue(organisation=hub, scopes="admin")
    _, read_token = token_issue(organisation=hub, scopes="read,write")
    return {"reviewer": reviewer, "viewer": viewer, "admin": admin_token, "read": read_token}


def test_a_reviewer_prepares_the_reports_from_the_cluster_page_and_sees_the_exact_json(
    reported, operator, client
):
    client.force_login(operator["reviewer"])
    page = client.get(f"/clusters/{reported.cluster.pk}/")
    html = page.content.decode()
    assert 'id="report"' in html and f'value="{reported.trigger["id"]}"' in html

    response = client.post(f"/clusters/{reported.cluster.pk}/report/", {"indicator": reported.trigger["id"]})
    to_collection = FeedbackReport.objects.get(destination="collection")
    assert response.status_code == 302 and response["Location"] == f"/feedback/{to_collection.pk}/"
    report_page = client.get(response["Location"]).content.decode()
    assert "Hub collection" in report_page and "Hydra cluster, member-observed" in report_page
    assert "Send to hub" in report_page
    listed = client.get(f"/clusters/{reported.cluster.pk}/").content.decode()
    assert listed.count("/feedback/") >= 2 and "Hub inbox" in listed

    # A cluster that is not confirmed: a message, no report.
    cs.cluster_review(cluster=reported.cluster, status=AccountCluster.Status.DISMISSED)
    response = client.post(f"/clusters/{reported.cluster.pk}/report/", follow=True)
    assert "only a confirmed cluster is reported" in response.content.decode()
    assert FeedbackReport.objects.count() == 2


def test_viewers_cannot_prepare_cluster_reports(reported, operator, client):
    client.force_login(operator["viewer"])
    assert client.post(f"/clusters/{reported.cluster.pk}/report/").status_code == 403
    assert "Prepare reports" not in client.get(f"/clusters/{reported.cluster.pk}/").content.decode()
    assert not FeedbackReport.objects.exists()


def test_the_rest_api_prepares_cluster_reports_for_operator_admins_only(reported, operator):
    from rest_framework.test import APIClient

    url = f"/api/v1/clusters/{reported.cluster.pk}/report/"
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {operator['read']}")
    assert api.post(url, {}, format="json").status_code == 403
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {operator['admin']}")
    response = api.post(
        url, {"indicator_id": "indicator--00000000-0000-4000-8000-000000000000"}, format="json"
    )
    assert (
        response.status_code == 400 and "is not an active, subscribed indicator" in response.json()["detail"]
    )
    response = api.post(url, {}, format="json")
    assert response.status_code == 201, response.content
    reports = response.json()["reports"]
    assert [r["destination"] for r in reports] == ["collection", "inbox"]
    assert {r["cluster"] for r in reports} == {reported.cluster.pk}
    assert api.post("/api/v1/clusters/999999/report/", {}, format="json").status_code == 404
