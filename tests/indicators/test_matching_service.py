"""Matching services on the database: idempotency, alerts and scoring, withdrawal, quarantine, similarity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from indicators import matching_service as ms
from indicators import tasks
from indicators.hashing import Keyring
from indicators.matching import (
    AccountRecord,
    ApiKeyRecord,
    IdentifierRecord,
    IpRecord,
    PaymentRecord,
    PromptSignatureRecord,
    TimingRecord,
)
from indicators.models import Alert, IndicatorMatchState, Match, MatchJob
from tests.indicators.matching_helpers import publish_indicators, records_store
from tests.stix_builders import make_indicator

State = IndicatorMatchState.Status
T0 = datetime(2026, 10, 1, tzinfo=UTC)
EMAIL = "e1" * 32
CARD = "c1" * 32
KEY = "a1" * 32
SIG_ID = "mdx-prompt-signature--ff74b39b-6479-5547-84d5-89ef627b1ebd"
TIMING_ID = "mdx-timing-fingerprint--bd00b558-49a2-5778-ad9d-eb7c8119b846"
MINHASH = tuple(range(1000, 1128))
IAT = (0.0, 0.0, 0.01, 0.02, 0.61, 0.3, 0.04, 0.01, 0.01, 0, 0, 0, 0, 0, 0, 0)
HOD = tuple([1 / 24] * 24)


def account(
    n: int,
    *,
    tier: str = "free",
    email: str | None = None,
    card: str | None = None,
    ip: str = "10.0.0.1",
    key: str | None = None,
    minhash=None,
    iat=None,
) -> AccountRecord:
    identifiers = [
        IdentifierRecord("email-canonical", "mdx-2026q4", email or f"{n:064x}", "mdx-email-canonical-v1")
    ]
    sigs = ()
    if minhash is not None:
        sigs = tuple(
            PromptSignatureRecord(
                "mdx-2026q4",
                T0 + timedelta(days=7 * w),
                T0 + timedelta(days=7 * w + 7),
                minhash,
                tuple(f"{b:02d}:{b:016x}" for b in range(16)),
                "ab" * 32,
            )
            for w in range(3)
        )
    timing = ()
    if iat is not None:
        timing = (TimingRecord(T0, T0 + timedelta(days=7), 5000, iat, HOD),)
    return AccountRecord(
        pseudonym=f"{n:064x}",
        created_at=T0,
        tier=tier,
        identifiers=tuple(identifiers),
        payments=(PaymentRecord("par", "mdx-2026q4", card),) if card else (),
        ips=(IpRecord(ip, 64500, "residential", T0, T0 + timedelta(days=30), signup=True),),
        api_keys=(ApiKeyRecord(key),) if key else (),
        prompt_signatures=sigs,
        timing=timing,
    )


def indicator(pattern: str, **extra) -> dict:
    extra.setdefault("valid_from", "2026-01-01T00:00:00Z")
    extra.setdefault("confidence", 80)
    return make_indicator(pattern=pattern, **extra)


def email_pattern(value: str = EMAIL) -> str:
    return (
        "[mdx-hashed-identifier:identifier_type = 'email-canonical' AND "
        f"mdx-hashed-identifier:key_id = 'mdx-2026q4' AND mdx-hashed-identifier:value = '{value}']"
    )


@pytest.fixture(autouse=True)
def eager_tasks(monkeypatch):
    """Enqueued tasks run in this process, also when CELERY_BROKER_URL points at a real broker."""
    from config.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)


@pytest.fixture
def accounts(db):
    records = [account(i) for i in range(20)]
    records[3] = account(3, email=EMAIL, tier="education-program")
    records[4] = account(4, email=EMAIL, card=CARD)
    records[5] = account(5, card=CARD, key=KEY, ip="198.51.100.9")
    return records_store(records)


def run(obj) -> int:
    return ms.indicator_match(obj.pk)


def test_an_exact_identifier_matches_and_running_twice_changes_nothing(accounts):
    [obj] = publish_indicators([indicator(email_pattern(), mdx_indicator_kind="exact-identifier")])
    assert run(obj) == 2
    first = list(Match.objects.values_list("indicator_id", "account_id", "kind", "weight", "matched_at"))
    assert run(obj) == 2
    assert (
        list(Match.objects.values_list("indicator_id", "account_id", "kind", "weight", "matched_at")) == first
    )
    assert {m[1] for m in first} == {accounts[3], accounts[4]}
    assert {m[2] for m in first} == {"exact-identifier"} and {m[3] for m in first} == {0.9}
    evidence = Match.objects.first().evidence
    assert evidence["lookups"] == [{"table": "account_identifiers", "column": "value"}]
    assert EMAIL not in str(evidence)  # no raw identifiers in evidence


def test_alert_scores_are_noisy_or_with_the_programme_tier_prior(accounts):
    email, card = publish_indicators(
        [
            indicator(email_pattern(), mdx_indicator_kind="exact-identifier", confidence=70),
            indicator(f"[mdx-payment-fingerprint:value = '{CARD}']", confidence=60),
        ]
    )
    run(email), run(card)
    alerts = {a.account_id: a for a in Alert.objects.all()}
    # account 3: one exact identifier, education programme: 0.9·0.7 × 1.5
    assert alerts[accounts[3]].score == pytest.approx(min(0.63 * 1.5, 0.99))
    # account 4: email + payment: 1 − (1 − 0.63)(1 − 0.54)
    assert alerts[accounts[4]].score == pytest.approx(1 - 0.37 * 0.46)
    # account 5: payment alone 0.54 ≥ the 0.5 watchlist threshold
    assert alerts[accounts[5]].score == pytest.approx(0.54)
    assert all(a.status == Alert.Status.NEW for a in alerts.values())
    assert ms.score_contributions([(0.9, "payment", 100)] * 3, "startup-program") == 0.99


def test_weak_evidence_alone_raises_no_alert(accounts):
    [obj] = publish_indicators([indicator("[ipv4-addr:value ISSUBSET '198.51.100.0/24']")])
    assert run(obj) == 1
    match = Match.objects.get()
    assert (match.kind, match.weight) == ("network-range", 0.15)
    assert not Alert.objects.exists()  # 0.15 · 0.8 is below MDX_ALERT_MIN_SCORE


def test_revoking_withdraws_open_alerts_but_keeps_decisions_and_other_support(
    accounts, django_capture_on_commit_callbacks
):
    email, card = publish_indicators(
        [
            indicator(email_pattern(), mdx_indicator_kind="exact-identifier"),
            indicator(f"[mdx-payment-fingerprint:value = '{CARD}']"),
        ]
    )
    run(email), run(card)
    confirmed = Alert.objects.get(account_id=accounts[3])
    ms.alert_decide(alert=confirmed, status="confirmed", note="same cluster")
    revoked = dict(email.data, modified="2026-11-24T00:00:00.000Z", revoked=True)
    [new] = publish_indicators([revoked])
    with django_capture_on_commit_callbacks(execute=True):
        tasks.indicators_published([new.pk])
    statuses = dict(Alert.objects.values_list("account_id", "status"))
    assert statuses[accounts[3]] == "confirmed"  # human decision kept
    assert statuses[accounts[4]] == "new"  # still supported by the payment indicator
    assert IndicatorMatchState.objects.get(indicator=email).status == State.WITHDRAWN
    alert4 = Alert.objects.get(account_id=accounts[4])
    assert alert4.score == pytest.approx(0.9 * 0.8)
    ms.indicator_withdraw(card.stix_id)
    assert Alert.objects.get(account_id=accounts[4]).status == "withdrawn"
    assert Match.objects.count() == 4  # matches are kept for audit


def _days_from_now(days: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_expired_indicators_are_withdrawn_by_the_periodic_task(accounts):
    until = _days_from_now(30)
    [obj] = publish_indicators([indicator(email_pattern(), valid_until=_stamp(until))])
    run(obj)
    assert Alert.objects.filter(status="new").count() == 2
    assert ms.indicators_expire(now=until - timedelta(days=1)) == []
    assert ms.indicators_expire(now=until + timedelta(days=1)) == [obj.stix_id]
    assert set(Alert.objects.values_list("status", flat=True)) == {"withdrawn"}


def test_an_expired_indicator_matches_nothing(accounts):
    [obj] = publish_indicators([indicator(email_pattern(), valid_until="2026-02-01T00:00:00Z")])
    assert run(obj) == 0
    assert not Match.objects.exists()


def test_a_new_version_supersedes_the_old_one(accounts, django_capture_on_commit_callbacks):
    [old] = publish_indicators([indicator(email_pattern())])
    run(old)
    newer = dict(
        old.data, modified="2026-11-24T00:00:00.000Z", pattern=f"[mdx-payment-fingerprint:value = '{CARD}']"
    )
    [new] = publish_indicators([newer])
    with django_capture_on_commit_callbacks(execute=True):
        tasks.indicators_published([new.pk])
    assert IndicatorMatchState.objects.get(indicator=old).status == State.SUPERSEDED
    assert IndicatorMatchState.objects.get(indicator=new).status == State.DONE
    statuses = dict(Alert.objects.values_list("account_id", "status"))
    assert statuses == {accounts[3]: "withdrawn", accounts[4]: "new", accounts[5]: "new"}


def test_over_matching_indicators_are_quarantined_without_alerts(accounts, settings):
    settings.MDX_MATCH_QUARANTINE_THRESHOLD = 10
    [obj] = publish_indicators(
        [indicator("[ipv4-addr:value ISSUBSET '10.0.0.0/8']", mdx_indicator_kind="composite", confidence=90)]
    )
    assert run(obj) == 19
    state = IndicatorMatchState.objects.get(indicator=obj)
    assert (state.status, state.matched_count) == (State.QUARANTINED, 19)
    assert Match.objects.count() == 19
    assert not Alert.objects.exists()


def test_quarantine_found_by_a_later_chunk_withdraws_alerts_of_earlier_chunks(accounts, settings):
    settings.MDX_MATCH_QUARANTINE_THRESHOLD = 10
    [obj] = publish_indicators(
        [indicator("[ipv4-addr:value ISSUBSET '10.0.0.0/8']", mdx_indicator_kind="composite", confidence=90)]
    )
    ms.indicator_match(obj.pk, (accounts[0], accounts[7]))
    assert Alert.objects.filter(status="new").count() == 7
    ms.indicator_match(obj.pk, (accounts[8], accounts[-1]))
    assert IndicatorMatchState.objects.get(indicator=obj).status == State.QUARANTINED
    assert set(Alert.objects.values_list("status", flat=True)) == {"withdrawn"}


def test_a_released_indicator_raises_alerts_and_is_not_quarantined_again(accounts, settings):
    settings.MDX_MATCH_QUARANTINE_THRESHOLD = 10
    [obj] = publish_indicators(
        [indicator("[ipv4-addr:value ISSUBSET '10.0.0.0/8']", mdx_indicator_kind="composite", confidence=90)]
    )
    run(obj)
    assert not Alert.objects.exists()
    assert ms.quarantine_release(obj.pk) == 19
    assert IndicatorMatchState.objects.get(indicator=obj).status == State.RELEASED
    assert Alert.objects.filter(status="new").count() == 19
    # Matching it again (e.g. a retro-hunt) keeps the reviewer's decision.
    ms.indicator_match(obj.pk)
    assert IndicatorMatchState.objects.get(indicator=obj).status == State.RELEASED
    assert Alert.objects.filter(status="new").count() == 19
    with pytest.raises(ms.ReleaseError):
        ms.quarantine_release(obj.pk)


def test_unknown_key_epochs_are_not_evaluable(accounts, settings):
    settings.MDX_KEYRING = Keyring.for_tests()
    [obj] = publish_indicators([indicator(email_pattern())])
    assert ms.indicator_match_run(obj.pk) is True
    state = IndicatorMatchState.objects.get(indicator=obj)
    assert state.status == State.NOT_EVALUABLE and "mdx-2026q4" in state.error
    assert not Match.objects.exists()


def test_claiming_makes_the_indicator_task_run_once(accounts):
    [obj] = publish_indicators([indicator(email_pattern())])
    assert ms.indicator_match_run(obj.pk) is True
    assert ms.indicator_match_run(obj.pk) is False
    assert IndicatorMatchState.objects.get(indicator=obj).status == State.DONE


def test_prompt_similarity_needs_jaccard_in_enough_windows(db):
    near = MINHASH[:110] + tuple(range(9000, 9018))  # 110/128 = 0.86
    far = MINHASH[:90] + tuple(range(9000, 9038))  # 0.70
    pks = records_store([account(1, minhash=near), account(2, minhash=far), account(3)])
    reference = {
        "type": "mdx-prompt-signature",
        "spec_version": "2.1",
        "id": SIG_ID,
        "key_id": "mdx-2026q4",
        "normalization": "mdx-prompt-v1",
        "minhash": list(MINHASH),
        "template_hmac": "ab" * 32,
    }
    bands = " OR ".join(f"mdx-prompt-signature:lsh_bands[*] = '{b:02d}:{b:016x}'" for b in range(4))
    _, obj = publish_indicators(
        [
            reference,
            indicator(
                f"[{bands}]",
                mdx_indicator_kind="prompt-similarity",
                mdx_match={"jaccard_min": 0.8, "min_matching_windows": 3, "verify_with": SIG_ID},
            ),
        ]
    )
    assert run(obj) == 1
    match = Match.objects.get()
    assert match.account_id == pks[0] and match.weight == 0.5
    assert match.evidence["similarity"] == {
        "table": "account_prompt_signatures",
        "jaccard_max": 0.8594,
        "matching_windows": 3,
    }


def test_timing_similarity_uses_js_distance_thresholds(db):
    close = (0.0, 0.0, 0.02, 0.02, 0.6, 0.3, 0.04, 0.01, 0.01, 0, 0, 0, 0, 0, 0, 0)
    other = tuple([1 / 16] * 16)
    pks = records_store([account(1, iat=close), account(2, iat=other), account(3)])
    reference = {
        "type": "mdx-timing-fingerprint",
        "spec_version": "2.1",
        "id": TIMING_ID,
        "method": "mdx-iat-log2x16+hod24-v1",
        "window_start": "2026-11-01T00:00:00Z",
        "window_end": "2026-11-08T00:00:00Z",
        "request_count": 48210,
        "iat_histogram": list(IAT),
        "hour_of_day_histogram": list(HOD),
    }
    _, obj = publish_indicators(
        [
            reference,
            indicator(
                "[mdx-timing-fingerprint:request_count >= 1000]",
                mdx_indicator_kind="timing-similarity",
                mdx_match={
                    "jsd_max_iat": 0.15,
                    "jsd_max_hod": 0.2,
                    "min_requests": 1000,
                    "verify_with": TIMING_ID,
                },
            ),
        ]
    )
    assert run(obj) == 1
    match = Match.objects.get()
    assert match.account_id == pks[0] and match.kind == "timing-similarity" and match.weight == 0.2
    assert match.evidence["similarity"]["jsd_iat"] < 0.15


def test_changed_accounts_are_matched_and_stale_matches_removed(accounts):
    [obj] = publish_indicators([indicator(email_pattern())])
    run(obj)
    Match.objects.filter(account_id=accounts[3]).delete()
    Match.objects.create(indicator=obj, account_id=accounts[9], kind="x", weight=0.9, matched_at=T0)
    assert ms.accounts_match([accounts[3], accounts[9]]) == 1
    assert set(Match.objects.values_list("account_id", flat=True)) == {accounts[3], accounts[4]}


def test_accounts_changed_enqueues_one_job_per_chunk(accounts, django_capture_on_commit_callbacks):
    [obj] = publish_indicators([indicator(email_pattern())])
    IndicatorMatchState.objects.update_or_create(indicator=obj, defaults={"status": State.DONE})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tasks.accounts_changed(accounts)
    assert len(callbacks) == 1
    job = MatchJob.objects.get()
    assert job.status == MatchJob.Status.DONE and job.matched == 2


def test_would_match_count_previews_a_pattern(accounts):
    assert ms.would_match_count(email_pattern()) == 2
    assert ms.would_match_count("[mdx-ai-account:account_tier = 'education-program']") == 1
    assert ms.would_match_count("[not a pattern") is None


def test_would_match_count_is_none_without_accounts(db):
    assert ms.would_match_count(email_pattern()) is None


def test_the_sweep_requeues_lost_work(accounts):
    [obj] = publish_indicators([indicator(email_pattern())])
    IndicatorMatchState.objects.update_or_create(
        indicator=obj, defaults={"status": State.RUNNING, "claimed_at": T0}
    )
    job = MatchJob.objects.create(
        indicator_pks=[obj.pk], status=MatchJob.Status.RUNNING, claimed_at=T0, attempts=1
    )
    result = tasks.sweep(stale_seconds=60)  # eager: re-enqueued work runs at once
    assert result == {"indicators": 1, "jobs": 1, "failed": 0}
    assert IndicatorMatchState.objects.get(indicator=obj).status == State.DONE
    job.refresh_from_db()
    assert (job.status, job.attempts, job.matched) == (MatchJob.Status.DONE, 2, 2)
    assert Match.objects.count() == 2


def test_retro_hunt_fans_out_indicators_by_account_chunks(accounts, settings):
    settings.MDX_MATCH_ACCOUNT_CHUNK = 7
    settings.MDX_MATCH_INDICATOR_BATCH = 1
    publish_indicators([indicator(email_pattern()), indicator(f"[mdx-payment-fingerprint:value = '{CARD}']")])
    assert tasks.retro_hunt(True) == 2 * 3
    assert set(MatchJob.objects.values_list("status", flat=True)) == {"done"}
    assert Match.objects.count() == 4


def test_expiry_of_an_old_version_leaves_the_current_version_alone(
    accounts, django_capture_on_commit_callbacks
):
    until = _days_from_now(30)
    [old] = publish_indicators([indicator(email_pattern(), valid_until=_stamp(until))])
    run(old)
    assert Alert.objects.filter(status="new").count() == 2
    newer = dict(old.data, modified="2026-11-24T00:00:00.000Z", valid_until=_stamp(_days_from_now(300)))
    [new] = publish_indicators([newer])
    with django_capture_on_commit_callbacks(execute=True):
        tasks.indicators_published([new.pk])
    assert ms.indicators_expire(now=until + timedelta(days=1)) == []
    assert IndicatorMatchState.objects.get(indicator=new).status == State.DONE
    assert set(Alert.objects.values_list("status", flat=True)) == {"new"}


def test_an_indicator_valid_only_later_stays_pending_for_the_sweep(accounts):
    [obj] = publish_indicators([indicator(email_pattern(), valid_from="2999-01-01T00:00:00Z")])
    assert ms.indicator_match_run(obj.pk) is True
    assert IndicatorMatchState.objects.get(indicator=obj).status == State.PENDING
    assert not Match.objects.exists()
