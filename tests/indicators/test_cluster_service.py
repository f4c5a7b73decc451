"""Hydra-cluster linking on the database (DOMAIN §4.3): SQL reads, persistence, stable ids, the lease."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from indicators import cluster_service as cs
from indicators import matching_service as ms
from indicators import tasks
from indicators.accounts import accounts_import
from indicators.demo_accounts import demo_accounts_generate
from indicators.hashing import Keyring
from indicators.matching import (
    AccountRecord,
    ClientRecord,
    IpRecord,
    PaymentRecord,
    PromptSignatureRecord,
    TimingRecord,
)
from indicators.models import (
    Account,
    AccountCluster,
    AccountClusterMember,
    AccountIp,
    AccountPayment,
    Alert,
    IndicatorMatchState,
    MatchingCursor,
)
from tests.indicators.matching_helpers import publish_indicators, records_store
from tests.stix_builders import make_indicator

NOW = datetime(2026, 11, 23, tzinfo=UTC)
DAY = timedelta(days=1)
KEYRING = Keyring.for_tests()
PLANTED = {f"acct-h{n:03d}" for n in range(40)}
IAT = (0.0, 0.0, 0.01, 0.02, 0.61, 0.3, 0.04, 0.01, 0.01, 0, 0, 0, 0, 0, 0, 0)
HOD = tuple([1 / 24] * 24)

pytestmark = pytest.mark.django_db


def record(
    n: int,
    *,
    card: str | None = None,
    signup_ip: str | None = None,
    proxy_type: str | None = None,
    ja4: str | None = None,
    template: str | None = None,
    tags: tuple[str, ...] = (),
    timing: bool = False,
    seen: datetime = NOW - 10 * DAY,
) -> AccountRecord:
    """One account; every attribute it has was seen at ``seen`` (its sign-up time, too)."""
    window = (NOW - 14 * DAY, NOW - 7 * DAY)
    return AccountRecord(
        pseudonym=f"{n:064x}",
        created_at=seen,
        tier="free",
        payments=(PaymentRecord("par", "mdx-test-0", card, first_used=seen, last_used=seen),) if card else (),
        ips=(IpRecord(signup_ip, 64500, proxy_type, seen, seen, signup=True),) if signup_ip else (),
        clients=(ClientRecord(ja4=ja4, first_seen=seen, last_seen=seen),) if ja4 else (),
        prompt_signatures=(
            (
                PromptSignatureRecord(
                    "mdx-test-0",
                    *window,
                    tuple(range(128)),
                    (),
                    template,
                    capability_tags=tags,
                    sample_size=500,
                ),
            )  # fmt: skip
            if template
            else ()
        ),
        timing=(TimingRecord(*window, 5000, IAT, HOD),) if timing else (),
    )


def store(records: list[AccountRecord], prefix: str = "acct") -> list[int]:
    return records_store(records, prefix)


def clusters() -> list[set[int]]:
    """Every persisted cluster as its set of account pks, largest first."""
    ordered = AccountCluster.objects.order_by("-size", "pk")
    return [set(c.members.values_list("account_id", flat=True)) for c in ordered]


# --- The demo data ------------------------------------------------------------------------------------


@pytest.fixture
def demo_accounts():
    result = accounts_import(demo_accounts_generate(3000), keyring=KEYRING)
    assert (result.imported, result.errors) == (3000, [])


def test_the_demo_accounts_give_exactly_the_planted_cluster(demo_accounts):
    summary = cs.clusters_link(NOW)
    cluster = AccountCluster.objects.get()  # exactly one: no ordinary account pair is linked
    members = set(cluster.members.values_list("account__account_id", flat=True))
    assert members == PLANTED
    assert cluster.size == 40 and AccountClusterMember.objects.count() == 40
    # One card (strong); the residential /24 with sign-ups within 24 h plus the ja4 (two weak types).
    assert cluster.link_counts == {"payment": 40, "signup-net": 40, "client-fingerprint": 40}
    assert not cluster.is_candidate and cluster.indicator_hits == 0  # no indicator has matched yet
    assert (summary.clusters, summary.accounts, summary.created, summary.skipped) == (1, 40, 1, False)
    # The common SDK fingerprints and the two shared IPv4 pools are held by far more than D accounts.
    assert summary.stats["values_capped"] >= 5


def test_with_the_demo_indicators_matched_the_planted_cluster_is_a_candidate(
    demo_accounts, alice_lab, django_capture_on_commit_callbacks, eager_tasks
):
    from sharing.demo_local import demo_cluster_indicators
    from sharing.services import GrantSpec, collection_create, objects_publish

    collection = collection_create(title="consortium-indicators", grants=[GrantSpec(alice_lab, True, True)])
    objects = demo_cluster_indicators(keyring=KEYRING, publisher=alice_lab, today=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        objects_publish(collection=collection, objects=objects, submitted_by=alice_lab)
    cs.clusters_link(NOW)
    cluster = AccountCluster.objects.get()
    assert set(cluster.members.values_list("account__account_id", flat=True)) == PLANTED
    assert cluster.is_candidate and cluster.indicator_hits == 40
    assert cluster.candidate_reason == "40 members matched by indicators"
    assert cluster.max_alert_score == max(Alert.objects.values_list("score", flat=True))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_demo_command_shows_the_planted_cluster_as_a_candidate_on_its_first_run(settings, eager_tasks):
    # Committed transactions, as under `make run`: the demo indicators match before linking runs.
    settings.MDX_KEYRING = KEYRING
    out = io.StringIO()
    call_command("demo", "--no-migrate", stdout=out)
    assert "Hydra clusters: 1 linked, 1 candidate(s) for review" in out.getvalue()
    cluster = AccountCluster.objects.get()
    assert cluster.is_candidate and cluster.indicator_hits == 40
    assert set(cluster.members.values_list("account__account_id", flat=True)) == PLANTED


def test_only_the_rolling_window_counts(demo_accounts):
    # 90 days after the planted sign-ups (2026-10-06) nothing they share is in the window any more.
    assert cs.clusters_link(datetime(2027, 1, 10, tzinfo=UTC)).clusters == 0
    assert AccountCluster.objects.count() == 0


# --- Links, caps and candidates on the tables ---------------------------------------------------------


def test_strong_links_need_the_value_inside_the_window():
    recent = store([record(1, card="c1" * 32), record(2, card="c1" * 32)], "recent")
    store(
        [record(3, card="c2" * 32, seen=NOW - 120 * DAY), record(4, card="c2" * 32, seen=NOW - 120 * DAY)],
        "old",
    )
    cs.clusters_link(NOW)
    assert clusters() == [set(recent)]


def test_one_shared_weak_value_does_not_link_and_two_weak_types_do():
    net = "198.51.100.{}"
    alone = store([record(i, signup_ip=net.format(i)) for i in (1, 2)], "alone")
    pair = store([record(i, signup_ip=f"203.0.113.{i}", ja4="t13d-rare") for i in (3, 4)], "pair")
    cs.clusters_link(NOW)
    assert clusters() == [set(pair)]
    assert AccountCluster.objects.get().link_counts == {"signup-net": 2, "client-fingerprint": 2}
    assert not AccountClusterMember.objects.filter(account_id__in=alone).exists()


def test_ipv6_sign_ups_share_their_48():
    pair = store(
        [
            record(1, signup_ip="2001:db8:aa:1::1", ja4="t13d-rare"),
            record(2, signup_ip="2001:db8:aa:ffff::2", ja4="t13d-rare"),
            record(3, signup_ip="2001:db8:ab::3", ja4="t13d-rare"),  # another /48
        ]
    )
    cs.clusters_link(NOW)
    assert clusters() == [set(pair[:2])]


def shared_nat(count: int, *, proxy_type: str | None = None) -> list[int]:
    """``count`` accounts signing up from one /24 within hours, on one client fingerprint."""
    return store(
        [
            record(
                i,
                signup_ip=f"192.0.2.{i % 250 + 1}",
                proxy_type=proxy_type,
                ja4="t13d-sdk",
                seen=NOW - 10 * DAY + timedelta(minutes=i),
            )  # fmt: skip
            for i in range(count)
        ],
        f"nat-{proxy_type}",
    )


def test_the_degree_cap_stops_a_shared_nat_and_sdk_string_fusing_customers(settings):
    settings.MDX_CLUSTER_DEGREE_CAP = 50
    shared_nat(60)
    summary = cs.clusters_link(NOW)
    assert summary.clusters == 0 and summary.stats["values_capped"] == 2


def test_the_degree_cap_is_lifted_for_reseller_egress_and_indicator_matched_values(settings):
    settings.MDX_CLUSTER_DEGREE_CAP = 50
    accounts = shared_nat(60, proxy_type="ai-reseller-egress")
    # The egress /24 alone is exempt, but the ja4 is still capped: one weak type, no links.
    assert cs.clusters_link(NOW).clusters == 0
    [indicator] = publish_indicators([make_indicator(pattern="[mdx-client-fingerprint:ja4 = 't13d-sdk']")])
    assert ms.indicator_match(indicator.pk) == 60
    summary = cs.clusters_link(NOW)
    assert clusters() == [set(accounts)]
    cluster = AccountCluster.objects.get()
    assert cluster.is_candidate and cluster.indicator_hits == 60
    assert summary.stats["values_capped"] == 0


def test_a_quarantined_indicator_lifts_no_cap(settings):
    settings.MDX_CLUSTER_DEGREE_CAP = 50
    settings.MDX_MATCH_QUARANTINE_THRESHOLD = 10
    shared_nat(60, proxy_type="ai-reseller-egress")
    [indicator] = publish_indicators([make_indicator(pattern="[mdx-client-fingerprint:ja4 = 't13d-sdk']")])
    ms.indicator_match(indicator.pk)
    assert IndicatorMatchState.objects.get(indicator=indicator).status == "quarantined"
    assert cs.clusters_link(NOW).clusters == 0


def test_templates_and_timing_link_and_a_narrow_repetitive_cluster_is_a_candidate(settings):
    settings.MDX_CLUSTER_MIN_SIZE = 20
    farm = store(
        [record(i, ja4="t13d-farm", template="ab" * 32, tags=("agentic-coding",)) for i in range(20)], "farm"
    )
    twins = store([record(i, template="cd" * 32, timing=True) for i in (1, 2)], "twins")
    loners = store([record(i, timing=True) for i in (1, 2)], "loners")  # same timing, nothing else shared
    cs.clusters_link(NOW)
    assert clusters() == [set(farm), set(twins)]
    farm_cluster, twin_cluster = AccountCluster.objects.order_by("-size")
    assert farm_cluster.link_counts == {"client-fingerprint": 20, "template": 20}
    assert farm_cluster.is_candidate and farm_cluster.indicator_hits == 0
    assert farm_cluster.narrow_score_median == 1.0 and farm_cluster.top_template_share == 1.0
    assert farm_cluster.candidate_reason.startswith("narrow capability (median score 1.00")
    assert twin_cluster.link_counts == {"template": 2, "timing": 2} and not twin_cluster.is_candidate
    assert not AccountClusterMember.objects.filter(account_id__in=loners).exists()


def test_a_small_component_is_never_a_candidate_even_with_hits(settings):
    settings.MDX_CLUSTER_MIN_SIZE = 20
    store([record(i, card="c1" * 32) for i in range(5)])
    [indicator] = publish_indicators(
        [make_indicator(pattern=f"[mdx-payment-fingerprint:value = '{'c1' * 32}']")]
    )
    ms.indicator_match(indicator.pk)
    cs.clusters_link(NOW)
    cluster = AccountCluster.objects.get()
    assert (cluster.size, cluster.indicator_hits, cluster.is_candidate) == (5, 5, False)


# --- Stable identity, review, idempotency -----------------------------------------------------------


def test_a_rerun_is_idempotent():
    store(
        [record(i, card="c1" * 32) for i in range(3)]
        + [record(9, card="c2" * 32), record(10, card="c2" * 32)]
    )
    first = cs.clusters_link(NOW)
    before = list(AccountCluster.objects.order_by("pk").values())
    members = set(AccountClusterMember.objects.values_list("pk", "account_id", "cluster_id"))
    again = cs.clusters_link(NOW)
    assert (first.created, first.members_changed) == (2, 5)
    assert (again.created, again.kept, again.dissolved, again.members_changed) == (0, 2, 0, 0)
    assert list(AccountCluster.objects.order_by("pk").values()) == before  # not even updated_at moved
    assert set(AccountClusterMember.objects.values_list("pk", "account_id", "cluster_id")) == members


def test_a_cluster_keeps_its_id_and_review_when_it_grows(django_user_model):
    store([record(i, card="c1" * 32) for i in range(5)], "first")
    cs.clusters_link(NOW)
    cluster = AccountCluster.objects.get()
    reviewer = django_user_model.objects.create_user("rey")
    cs.cluster_review(cluster=cluster, user=reviewer, status="confirmed", note="one operator")
    newcomer = store([record(7, card="c1" * 32)], "later")
    summary = cs.clusters_link(NOW)
    grown = AccountCluster.objects.get()
    assert grown.pk == cluster.pk and grown.size == 6 and summary.kept == 1
    assert (grown.status, grown.review_note, grown.reviewer) == ("confirmed", "one operator", reviewer)
    assert grown.first_seen == cluster.first_seen
    assert AccountClusterMember.objects.get(account_id=newcomer[0]).cluster_id == cluster.pk


def test_when_a_cluster_splits_the_larger_part_keeps_the_id():
    # Cards A (4 accounts) and B (2 accounts) joined by a bridge account holding both.
    big = store([record(i, card="aa" * 32) for i in range(4)], "big")
    small = store([record(i, card="bb" * 32) for i in range(2)], "small")
    bridge = store([record(0, card="aa" * 32)], "bridge")
    AccountPayment.objects.create(
        account_id=bridge[0], basis="par", key_id="mdx-test-0", value="bb" * 32, first_used=NOW - DAY
    )
    cs.clusters_link(NOW)
    joined = AccountCluster.objects.get()
    cs.cluster_review(cluster=joined, status="dismissed", note="family plan")
    AccountPayment.objects.filter(account_id=bridge[0], value="bb" * 32).delete()
    summary = cs.clusters_link(NOW)
    assert (summary.kept, summary.created, summary.dissolved) == (1, 1, 0)
    kept = AccountCluster.objects.get(pk=joined.pk)
    assert set(kept.members.values_list("account_id", flat=True)) == set(big + bridge)
    assert kept.status == "dismissed"
    other = AccountCluster.objects.exclude(pk=joined.pk).get()
    assert set(other.members.values_list("account_id", flat=True)) == set(small) and other.status == "new"


def test_a_cluster_whose_links_left_the_window_is_dissolved():
    store([record(i, card="c1" * 32, seen=NOW - 80 * DAY) for i in range(3)])
    cs.clusters_link(NOW)
    assert AccountCluster.objects.count() == 1
    summary = cs.clusters_link(NOW + 20 * DAY)
    assert (summary.dissolved, summary.clusters) == (1, 0)
    assert not AccountClusterMember.objects.exists()


def test_deleting_an_account_removes_its_membership():
    pks = store([record(i, card="c1" * 32) for i in range(3)])
    cs.clusters_link(NOW)
    Account.objects.filter(pk=pks[0]).delete()
    assert AccountClusterMember.objects.count() == 2


def test_a_review_needs_a_known_status():
    store([record(i, card="c1" * 32) for i in range(2)])
    cs.clusters_link(NOW)
    cluster = AccountCluster.objects.get()
    with pytest.raises(cs.ClusterReviewError, match="status must be one of new, confirmed, dismissed"):
        cs.cluster_review(cluster=cluster, status="enforced")
    reopened = cs.cluster_review(cluster=cluster, status="new", note="  look again  ")
    assert (reopened.status, reopened.review_note) == ("new", "look again")
    assert reopened.reviewed_at is not None


# --- The lease, the task and the command ------------------------------------------------------------


def test_a_run_while_another_holds_the_lease_does_nothing():
    store([record(i, card="c1" * 32) for i in range(2)])
    MatchingCursor.objects.create(name=cs.LEASE, value=timezone.now())
    assert cs.clusters_link(NOW).skipped
    assert tasks.link_clusters()["skipped"] is True
    assert AccountCluster.objects.count() == 0


def test_a_stale_lease_is_taken_over_and_released_after_the_run():
    store([record(i, card="c1" * 32) for i in range(2)])
    MatchingCursor.objects.create(name=cs.LEASE, value=timezone.now() - timedelta(hours=2))
    assert not cs.clusters_link(NOW).skipped
    assert AccountCluster.objects.count() == 1
    assert MatchingCursor.objects.get(name=cs.LEASE).value.year == 1970  # released
    assert cs.last_linked() == NOW


def test_the_task_links_as_of_now():
    store([record(i, card="c1" * 32, seen=timezone.now() - DAY) for i in range(2)])
    result = tasks.link_clusters()
    assert (result["skipped"], result["clusters"], result["accounts"]) == (False, 1, 2)


def test_the_hourly_beat_entry_and_the_settings_exist(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["mdx-link-clusters"]
    assert entry == {"task": "indicators.tasks.link_clusters", "schedule": timedelta(hours=1)}
    assert (
        settings.MDX_CLUSTER_MIN_SIZE,
        settings.MDX_CLUSTER_DEGREE_CAP,
        settings.MDX_CLUSTER_WINDOW_DAYS,
    ) == (
        20,
        50,
        90,
    )


def test_the_command_prints_the_summary_and_rejects_a_bad_date():
    store([record(i, card="c1" * 32) for i in range(2)])
    out, err = io.StringIO(), io.StringIO()
    call_command("link_clusters", "--now", "2026-11-23T00:00:00Z", stdout=out, stderr=err)
    assert out.getvalue().startswith("Linked 2 accounts into 1 cluster (0 candidates; 1 new, 0 kept")
    assert "payments:" in err.getvalue()
    with pytest.raises(CommandError, match="ISO 8601 date-time with a time zone"):
        call_command("link_clusters", "--now", "yesterday")
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("link_clusters", "--now", "2026-11-23T00:00:00")


def test_the_command_reports_a_run_in_progress():
    MatchingCursor.objects.create(name=cs.LEASE, value=timezone.now())
    with pytest.raises(CommandError, match="another cluster-linking run is in progress"):
        call_command("link_clusters", stdout=io.StringIO(), stderr=io.StringIO())


def test_signup_ip_rows_that_are_not_sign_ups_do_not_count():
    pks = store([record(i, ja4="t13d-rare") for i in (1, 2)])
    for pk in pks:  # same /24 and ja4, but the /24 is a later address, not the sign-up one
        AccountIp.objects.create(
            account_id=pk, ip="198.51.100.9", ip_low=b"\x00" * 10 + b"\xff\xff\xc6\x33\x64\x09",
            ip_high=b"\x00" * 10 + b"\xff\xff\xc6\x33\x64\x09", is_signup=False,
        )  # fmt: skip
    assert cs.clusters_link(NOW).clusters == 0
