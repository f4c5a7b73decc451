"""The review workflow end to end in real headless Chromium against a live server.

A review-policy partner submits two indicators over TAXII (taxii2-client); a reviewer signs in,
finds them in the queue, approves one and rejects the other with a reason; then the partner's
TAXII client sees only the approved one, and the status resource shows one success and one
failure carrying the reason. Any JavaScript console error fails the test. Screenshots of the
dashboard, queue and submission pages are saved under artifacts/ (git-ignored).

Uses Debian's /usr/bin/chromium (never a browser downloaded by ``playwright install``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.stix_builders import make_indicator
from tests.web.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"browser tests need Debian's chromium at {CHROMIUM}"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="browser tests need playwright for Python (pip install -e '.[test]')",
    ),
]

REASON = "Documentation range: would block legitimate traffic"


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, so Django refuses ORM calls until
    # the browser closes: tests prepare their data in fixtures requested before this one.
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on(
            "console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None
        )
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.js_errors = errors
        yield page
        context.close()
        browser.close()
    assert not errors, "JavaScript errors in the browser:\n" + "\n".join(errors)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:
    page.goto(base + "/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(base + "/home/")


def test_submit_review_and_pull_in_a_real_browser(live_server, transactional_db, web, page):
    from taxii2client.v21 import Collection, Status

    base = live_server.url
    collection_url = f"{base}/taxii2/api/collections/{web.feed.pk}/"
    partner = Collection(collection_url, user="borealis", password=web.partner_plaintext)
    keep = make_indicator(
        name="Distillation proxy pool egress",
        pattern="[ipv4-addr:value ISSUBSET '45.146.164.0/24']",
        valid_until="2099-01-01T00:00:00Z",
        confidence=80,
        labels=["proxy-pool"],
    )
    drop = make_indicator(
        name="Harness callback range", pattern="[ipv4-addr:value ISSUBSET '203.0.113.0/24']"
    )
    status = partner.add_objects({"objects": [keep, drop]}, wait_for_completion=False)
    assert status.pending_count == 2

    sign_in(page, base, "rey")
    assert page.inner_text("[data-testid=pending-count]") == "2"
    page.wait_for_selector("svg.chart")
    shot(page, "dashboard")

    page.click("nav >> text=Review queue")
    page.wait_for_url(base + "/review/")
    rows = page.locator("#queue-results tbody tr")
    assert rows.count() == 2
    assert "Distillation proxy pool egress" in page.inner_text("#queue-results")
    assert "Harness callback range" in page.inner_text("#queue-results")
    # htmx filter: choosing a TLP with no pending objects swaps in an empty table, no reload.
    page.select_option("#id_tlp", "red")
    page.wait_for_selector("#queue-results td.empty")
    page.select_option("#id_tlp", "")
    page.wait_for_function("document.querySelectorAll('#queue-results tbody tr').length === 2")
    shot(page, "queue")

    page.click(f"#queue-results a:has-text('{keep['name']}')")
    page.wait_for_selector("article.item")
    keep_card = page.locator("article.item", has_text=keep["id"])
    drop_card = page.locator("article.item", has_text=drop["id"])
    assert "overlaps a known-benign range" in drop_card.inner_text()
    shot(page, "submission")

    keep_card.get_by_role("button", name="Approve", exact=True).click()
    page.wait_for_selector(f"article.item.item-success:has-text('{keep['id']}')")
    drop_card.locator("input[name=reason]").fill(REASON)
    drop_card.get_by_role("button", name="Reject", exact=True).click()
    page.wait_for_selector(f"article.item.item-failure:has-text('{drop['id']}')")
    assert REASON in page.locator("article.item.item-failure").inner_text()
    assert "TAXII status complete" in " ".join(page.inner_text("#submission-summary").split())
    shot(page, "submission-decided")

    # The partner's TAXII view: only the approved object, and a complete status resource.
    envelope = partner.get_objects()
    assert [o["id"] for o in envelope.get("objects", [])] == [keep["id"]]
    done = Status(f"{base}/taxii2/api/status/{status.id}/", user="borealis", password=web.partner_plaintext)
    assert (done.status, done.success_count, done.failure_count, done.pending_count) == ("complete", 1, 1, 0)
    assert done.failures == [{"id": drop["id"], "version": drop["modified"], "message": REASON}]
    assert [s["id"] for s in done.successes] == [keep["id"]]


@pytest.fixture
def seeded_paths(transactional_db, web, submit) -> list[str]:
    """An approved indicator with a newer pending version: every page has something to show."""
    from sharing.review import submission_item_approve

    first = make_indicator(name="Proxy pool", pattern="[ipv4-addr:value ISSUBSET '45.146.164.0/24']")
    campaign = {
        "type": "campaign",
        "spec_version": "2.1",
        "id": "campaign--5b8a9c34-9b7c-4f0e-8f55-1d1f6b6f4b11",
        "created": "2026-11-01T00:00:00.000Z",
        "modified": "2026-11-01T00:00:00.000Z",
        "name": "Hydra distillation campaign",
    }
    relationship = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": "relationship--0c1f1f57-2b0e-4a0e-9d8f-1b1e1a1c1d1e",
        "created": "2026-11-01T00:00:00.000Z",
        "modified": "2026-11-01T00:00:00.000Z",
        "relationship_type": "indicates",
        "source_ref": first["id"],
        "target_ref": campaign["id"],
    }
    approved = submit([first, campaign, relationship])
    submission_item_approve(item=approved.items.get(position=0), user=web.admin_user)
    pending = submit([dict(first, modified="2026-11-24T00:00:00.000Z", confidence=90)])
    version = pending.items.get().stix_object
    alert, subscription = _seed_alert_and_subscription(web, approved.items.get(position=0).stix_object)
    return [
        "/home/",
        "/review/",
        f"/submissions/{pending.pk}/",
        "/objects/",
        f"/objects/{version.pk}/",
        "/organisations/",
        f"/organisations/{web.partner.pk}/",
        "/tokens/",
        "/collections/",
        f"/collections/{web.feed.pk}/",
        "/audit/",
        "/account/security/",
        "/alerts/",
        f"/alerts/{alert.pk}/",
        f"/accounts/{alert.account_id}/",
        "/subscriptions/",
        "/feedback/",
        f"/feedback/{_seed_feedback(web, indicator=first, subscription=subscription).pk}/",
        "/clusters/",
        f"/clusters/{_seed_cluster(alert.account).pk}/",
    ]


def _seed_cluster(account):
    """The alerted account and a second one share a card: one hydra cluster, linked for real."""
    from datetime import timedelta

    from django.utils import timezone

    from indicators.cluster_service import cluster_review, clusters_link
    from indicators.matching import AccountRecord, PaymentRecord
    from indicators.models import AccountCluster, AccountPayment
    from tests.indicators.matching_helpers import records_store

    now = timezone.now()
    card = "5e" * 32
    AccountPayment.objects.create(
        account=account, basis="par", key_id="mdx-test-0", value=card, first_used=now
    )
    twin = AccountRecord(
        pseudonym="4b" * 16, created_at=now - timedelta(days=3), tier="startup-program",
        payments=(PaymentRecord("par", "mdx-test-0", card, first_used=now),),
    )  # fmt: skip
    records_store([twin], "acct-twin")
    clusters_link(now)
    cluster = AccountCluster.objects.get()
    cluster_review(cluster=cluster, status=AccountCluster.Status.CONFIRMED)  # shows "Report to the hub"
    return cluster


def _seed_feedback(web, *, indicator: dict, subscription):
    """Feedback received from two partners (one disputing) and one report prepared here."""
    from django.utils import timezone

    from sharing.models import FeedbackReport, ReceivedOpinion, ReceivedSighting

    now = timezone.now()
    for org, verdict in ((web.partner, "agree"), (subscription.organisation, "disagree")):
        ReceivedSighting.objects.create(
            sighting_id=f"sighting--{org.pk:08d}-1b1b-4b1b-8b1b-1b1b1b1b1b1b",
            modified=now,
            indicator_stix_id=indicator["id"],
            organisation=org,
            count=4,
            last_seen=now,
            review_state="confirmed",
        )
        ReceivedOpinion.objects.create(
            opinion_id=f"opinion--{org.pk:08d}-1b1b-4b1b-8b1b-1b1b1b1b1b1b",
            indicator_stix_id=indicator["id"],
            modified=now,
            organisation=org,
            opinion=verdict,
        )
    return FeedbackReport.objects.create(
        subscription=subscription, indicator_stix_id=indicator["id"], review_state="confirmed", count=4,
        payload='{"objects": []}',
    )  # fmt: skip


def _seed_alert_and_subscription(web, indicator):
    """An alert with two matches (one from a quarantined indicator) and one subscription."""
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from indicators.models import Account, Alert, IndicatorMatchState, Match
    from indicators.services import stix_objects_store
    from sharing.federation import subscription_add

    now = timezone.now()
    broad = stix_objects_store(
        [make_indicator(name="Over-broad range", pattern="[ipv4-addr:value ISSUBSET '10.0.0.0/8']")]
    )
    broad = broad[0].stix_object
    IndicatorMatchState.objects.update_or_create(
        indicator=indicator, defaults={"status": "done", "matched_count": 1}
    )
    IndicatorMatchState.objects.create(indicator=broad, status="quarantined", matched_count=812)
    account = Account.objects.create(
        account_id="acct-7f3a91",
        pseudonym="9c1e5b2d7a40f3e8b6d1c2a9e0f4b7d3",
        created_at=now - timedelta(days=41),
        changed_at=now,
        status="active",
        tier="startup-program",
        signup_country="SG",
    )
    Match.objects.create(
        indicator=indicator, account=account, kind="network-range", weight=0.9, matched_at=now,
        evidence={"table": "account_ip", "column": "ip", "range": "45.146.164.0/24", "is_signup": True},
    )  # fmt: skip
    Match.objects.create(
        indicator=broad, account=account, kind="network-range", weight=0.9, matched_at=now,
        evidence={"table": "account_ip", "column": "ip", "range": "10.0.0.0/8"},
    )  # fmt: skip
    alert = Alert.objects.create(account=account, score=0.87)
    subscription = subscription_add(
        name="Upstream consortium",
        discovery_url="https://hub.example.org/taxii2/",
        collection_id=str(uuid.uuid4()),
        into=str(web.feed.pk),
        token="never-shown-token",
    )
    return alert, subscription


def test_every_page_renders_without_javascript_errors(live_server, seeded_paths, page):
    base = live_server.url
    page.goto(base + "/")
    shot(page, "sign-in")
    sign_in(page, base, "ada")
    for index, path in enumerate(seeded_paths):
        response = page.goto(base + path)
        assert response.status == 200, path
        shot(page, f"page-{index:02d}-{path.strip('/').split('/')[0]}")
    page.goto(base + seeded_paths[4])
    assert page.locator("svg.graph").count() == 1
    shot(page, "object")
    page.goto(base + seeded_paths[13])
    assert page.locator("[data-testid=quarantine]").count() == 1
    assert page.get_by_role("button", name="Dismiss", exact=True).count() == 1
    shot(page, "alert")
    page.goto(base + seeded_paths[-1])
    # No indicator of the subscribed hub hit this cluster: the report card says there is no hub.
    assert page.locator("#report [data-testid=no-trigger]").is_visible()
    shot(page, "cluster")
