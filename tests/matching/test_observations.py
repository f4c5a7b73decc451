"""Account -> observations (DOMAIN §4.0), deterministic SCO ids, and the oracle's bundle form."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stix2
from stix2.canonicalization.Canonicalize import canonicalize
from stix2.properties import FloatProperty, IntegerProperty, ListProperty, StringProperty
from stix2.v21 import CustomObservable

from indicators.matching import (
    AccountRecord,
    ApiKeyRecord,
    ClientRecord,
    IdentifierRecord,
    IpRecord,
    Observation,
    PaymentRecord,
    PromptSignatureRecord,
    TimingRecord,
    account_observations,
    observations_as_bundles,
)
from indicators.matching.scos import canonical_json, sco_id

T = datetime(2026, 9, 14, 10, 2, tzinfo=UTC)
DAY = timedelta(days=1)


def account() -> AccountRecord:
    return AccountRecord(
        pseudonym="69" * 32,
        created_at=T,
        status="active",
        tier="education-program",
        org_category="university",
        access_channel="first-party-api",
        signup_country="US",
        identifiers=(
            IdentifierRecord(
                "email-canonical", "mdx-2026q4", "d5" * 32, "mdx-email-canonical-v1", T, T + DAY
            ),
            IdentifierRecord("phone", "mdx-2026q4", "e6" * 32, "mdx-phone-e164-v1"),
        ),
        payments=(
            PaymentRecord(
                "par",
                "mdx-2026q4",
                "ab" * 32,
                card_iin="411111",
                card_funding="prepaid",
                is_virtual=True,
                issuer_country="US",
            ),
        ),
        ips=(
            IpRecord("198.51.100.7", 64500, "residential", T, T + 10 * DAY, signup=True),
            IpRecord("2001:db8::5", 64501, None, T + DAY, T + 2 * DAY),
            IpRecord("198.51.100.7", None, None, T - DAY, T + 20 * DAY),
        ),
        api_keys=(ApiKeyRecord("cd" * 32),),
        clients=(
            ClientRecord(user_agent="python-httpx/0.27", sdk_name="custom", sdk_version="1.0", ja4="t13d"),
        ),
        prompt_signatures=(
            PromptSignatureRecord(
                "mdx-2026q4",
                T + DAY,
                T + 8 * DAY,
                tuple(range(128)),
                tuple(f"{b:02d}:{b:016x}" for b in range(16)),
                "ef" * 32,
            ),
        ),
        timing=(TimingRecord(T + DAY, T + 8 * DAY, 12000, (1 / 16,) * 16, (1 / 24,) * 24, 800.0, 0.2),),
    )


def test_profile_observation_holds_the_account_and_everything_it_references() -> None:
    profile, *facts = account_observations(account())
    root = profile.objects[profile.root_ids[0]]
    assert root["type"] == "mdx-ai-account" and root["account_created"] == "2026-09-14T00:00:00Z"
    refs = [root["signup_ip_ref"]] + [
        r for key, value in root.items() if key.endswith("_refs") for r in value
    ]
    assert set(refs) | {root["id"]} == set(profile.objects)
    assert profile.objects[root["signup_ip_ref"]]["value"] == "198.51.100.7"
    assert [profile.objects[r]["value"] for r in root["ip_refs"]] == ["198.51.100.7", "2001:db8::5"]
    assert [profile.objects[r]["number"] for r in root["asn_refs"]] == [64500, 64501]
    assert [profile.objects[r]["identifier_type"] for r in root["identifier_refs"]] == [
        "email-canonical",
        "phone",
        "api-key",
    ]
    # first_observed = created_at; last_observed = the latest attribute time.
    assert profile.first_observed == T and profile.last_observed == T + 20 * DAY
    assert len(facts) == 9  # 2 identifiers, 1 API key, 1 payment, 2 IPs, 1 client, 1 prompt, 1 timing


def test_fact_observations_carry_their_own_times() -> None:
    _, *facts = account_observations(account())
    by_value = {next(iter(f.objects.values())).get("value"): f for f in facts}
    email = by_value["d5" * 32]
    assert (email.first_observed, email.last_observed) == (T, T + DAY)
    phone = by_value["e6" * 32]  # no times: the profile's interval
    assert (phone.first_observed, phone.last_observed) == (T, T + 20 * DAY)
    ip = by_value["198.51.100.7"]  # two rows for one address: one SCO spanning both
    assert (ip.first_observed, ip.last_observed) == (T - DAY, T + 20 * DAY)
    assert sorted(o["type"] for o in ip.objects.values()) == ["autonomous-system", "ipv4-addr"]
    assert ip.objects[ip.root_ids[0]]["extensions"][
        "extension-definition--9ad6d8dc-5bdc-491e-b991-479c0b931a03"
    ] == {
        "extension_type": "property-extension",
        "proxy_type": "residential",
        "first_seen": "2026-09-13T10:02:00Z",
        "last_seen": "2026-10-04T10:02:00Z",
    }
    timing = next(f for f in facts if f.root_ids[0].startswith("mdx-timing-fingerprint--"))
    assert (timing.first_observed, timing.last_observed) == (T + DAY, T + 8 * DAY)
    assert all(len(f.root_ids) == 1 and f.number_observed == 1 for f in facts)


def test_account_without_attributes() -> None:
    (profile,) = account_observations(AccountRecord(pseudonym="aa" * 32, created_at=T))
    assert profile.first_observed == profile.last_observed == T
    assert list(profile.objects.values())[0] == {
        "type": "mdx-ai-account",
        "spec_version": "2.1",
        "id": sco_id("mdx-ai-account", {"account_pseudonym": "aa" * 32}),
        "account_pseudonym": "aa" * 32,
        "account_created": "2026-09-14T00:00:00Z",
        "extensions": {
            "extension-definition--744616a0-5fc2-4979-8aba-20cd64b1763e": {"extension_type": "new-sco"}
        },
    }


def test_observation_rejects_inverted_intervals() -> None:
    with pytest.raises(ValueError):
        Observation(T, T - DAY, 1, {}, ())
    with pytest.raises(ValueError):
        Observation(T, T, 0, {}, ())


def test_bundles_for_the_oracle() -> None:
    observations = account_observations(account())
    bundles = observations_as_bundles(observations)
    assert len(bundles) == len(observations)
    for bundle, obs in zip(bundles, observations, strict=True):
        observed, *scos = bundle["objects"]
        assert observed["type"] == "observed-data" and observed["object_refs"] == [s["id"] for s in scos]
        assert observed["number_observed"] == 1 and scos == list(obs.objects.values())
    assert bundles[0]["objects"][0]["first_observed"] == "2026-09-14T10:02:00Z"
    assert observations_as_bundles(observations) == bundles  # deterministic ids


def test_standard_sco_ids_match_stix2() -> None:
    profile = account_observations(account())[0]
    for sco in profile.objects.values():
        if sco["type"] == "ipv4-addr":
            assert sco["id"] == stix2.IPv4Address(value=sco["value"]).id
        elif sco["type"] == "ipv6-addr":
            assert sco["id"] == stix2.IPv6Address(value=sco["value"]).id
        elif sco["type"] == "autonomous-system":
            assert sco["id"] == stix2.AutonomousSystem(number=sco["number"]).id


class _ListSafeFloat(FloatProperty):  # type: ignore[misc]
    # stix2 3.0.2 passes an extra argument to list members' clean() (DOMAIN §1.5).
    def clean(self, value: Any, allow_custom: bool = False, strict: bool = False) -> Any:
        return super().clean(value, allow_custom)


class _ListSafeInt(IntegerProperty):  # type: ignore[misc]
    def clean(self, value: Any, allow_custom: bool = False, strict: bool = False) -> Any:
        return super().clean(value, allow_custom)


@CustomObservable(
    "x-mdx-id-check",
    [  # a test-only type: the UUID depends on the properties, not the type
        ("identifier_type", StringProperty()),
        ("scheme", StringProperty()),
        ("key_id", StringProperty()),
        ("value", StringProperty()),
        ("method", StringProperty()),
        ("window_start", StringProperty()),
        ("iat_histogram", ListProperty(_ListSafeFloat())),
        ("minhash", ListProperty(_ListSafeInt())),
    ],
    id_contrib_props=[
        "identifier_type",
        "scheme",
        "key_id",
        "value",
        "method",
        "window_start",
        "iat_histogram",
        "minhash",
    ],
)
class _IdCheck:
    pass


def test_custom_sco_ids_match_stix2() -> None:
    # Only the ID contributing properties enter the UUID, so one check type stands in for ours.
    identifiers = [
        sco
        for sco in account_observations(account())[0].objects.values()
        if sco["type"] == "mdx-hashed-identifier"
    ]
    assert len(identifiers) == 3
    for sco in identifiers:
        props = {k: sco[k] for k in ("identifier_type", "scheme", "key_id", "value") if k in sco}
        assert sco["id"].split("--")[1] == _IdCheck(**props).id.split("--")[1]
    histogram = [0.1, 0.25, 1e-7, 0.0, 1.0, 123456.125]
    ours = sco_id(
        "mdx-timing-fingerprint",
        {"method": "m", "window_start": "2026-10-01T00:00:00Z", "iat_histogram": histogram},
    )
    theirs = _IdCheck(method="m", window_start="2026-10-01T00:00:00Z", iat_histogram=histogram)
    assert ours.split("--")[1] == theirs.id.split("--")[1]
    ours = sco_id("mdx-prompt-signature", {"minhash": [1, 2, 3], "key_id": "k"})
    assert ours.split("--")[1] == _IdCheck(minhash=[1, 2, 3], key_id="k").id.split("--")[1]


def test_canonical_json_matches_stix2_on_random_values() -> None:
    rng = random.Random(7)
    for _ in range(300):
        value = {
            "f": [
                rng.uniform(-1e6, 1e6),
                rng.random() * 10 ** rng.randint(-12, 25),
                float(rng.randint(-99, 99)),
            ],
            "i": rng.randint(-(2**40), 2**40),
            "s": "".join(rng.choice('aé"\\\n\t\u2028z') for _ in range(6)),
            "b": rng.choice([True, False]),
            "n": {"z": 1, "a": [1, 2.5]},
        }
        assert canonical_json(value) == canonicalize(value, utf8=False)
