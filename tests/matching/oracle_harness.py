"""Seeded synthetic accounts and patterns for the differential tests against stix2-matcher.

A module of its own (not conftest.py) because the worker functions are pickled by module
name for the process pool, and every test folder's conftest is called "conftest".
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from stix2matcher.matcher import MatchListener
from stix2matcher.matcher import Pattern as OraclePattern

from indicators.matching import (
    AccountRecord,
    ApiKeyRecord,
    ClientRecord,
    CompiledPattern,
    IdentifierRecord,
    IpRecord,
    Observation,
    PatternError,
    PaymentRecord,
    PromptSignatureRecord,
    TimingRecord,
    compile_pattern,
    parse_pattern,
)
from indicators.matching.evaluator import select
from indicators.matching.nodes import Bracket, Comparison

ACCOUNT_COUNT = 2000
PATTERN_COUNT = 300
SEED = 20261123
IP_EXT = "extension-definition--9ad6d8dc-5bdc-491e-b991-479c0b931a03"
BASE = datetime(2026, 6, 1, tzinfo=UTC)

TIERS = [
    "free",
    "self-serve-paid",
    "team",
    "enterprise",
    "education-program",
    "research-program",
    "startup-program",
    "partner",
    "unknown",
]
CHANNELS = [
    "first-party-api",
    "consumer-app",
    "cloud-marketplace",
    "reseller-proxy",
    "partner-integration",
    "unknown",
]
ORGS = ["individual", "university", "research-institute", "startup", "enterprise", "unknown"]
COUNTRIES = ["US", "GB", "DE", "CN", "SG", "IN", "BR"]
ID_TYPES = {
    "email": "mdx-email-v1",
    "email-canonical": "mdx-email-canonical-v1",
    "phone": "mdx-phone-e164-v1",
    "org-domain": "mdx-domain-v1",
    "device-id": "raw",
    "oauth-subject": "raw",
}
KEY_IDS = ["mdx-2026q3", "mdx-2026q4"]
FUNDING = ["credit", "debit", "prepaid", "unknown"]
IINS = ["411111", "555555", "378282", "601100", "35280000"]
PROXIES = ["residential", "mobile", "datacenter", "vpn", "tor", "ai-reseller-egress", "unknown"]
ASNS = [64500, 64501, 64502, 13335, 16509, 14061]
AGENTS = [
    "python-httpx/0.27",
    "openai-python/1.40.0",
    "curl/8.4.0",
    "Mozilla/5.0 (X11; Linux x86_64)",
    "Go-http-client/2.0",
]
SDKS = [("custom", "1.0"), ("openai", "1.40.0"), ("anthropic", "0.34.2"), ("langchain", "0.2.1")]
JA4S = [
    "t13d1516h2_8daaf6152771_02713d6af862",
    "t13d1715h2_5b57614c22b0_3d5424432f57",
    "t13d190900_9dc949149365_97f8aa674fd9",
    "t12d1209h1_c866b44c5a26_7e2e0e2e9d3c",
]
CAPABILITIES = [
    "agentic-coding",
    "tool-use",
    "reasoning-trace-elicitation",
    "rubric-grading",
    "coding",
    "general",
]
CLUSTER_A_PAYMENT = "a1" * 32
CLUSTER_A_JA4 = "t13d1516h2_c1a5c1a5c1a5_c1a5c1a5c1a5"
CLUSTER_B_EMAIL = "b2" * 32
CLUSTER_B_API_KEY = "b3" * 32
CLUSTER_C_TEMPLATE = "c4" * 32
IP_REGEXES = [r"^10\.", r"^198\.51", r"\.[0-9]$", r"^2001:db8:"]


def _hex(rng: random.Random, n: int = 32) -> str:
    return rng.randbytes(n).hex()


def _moment(rng: random.Random, start: datetime, days: float) -> datetime:
    moment = start + timedelta(seconds=rng.randrange(int(days * 86400)))
    # A few sub-second times so timestamp text with a fraction is exercised too.
    return moment.replace(microsecond=rng.choice([0, 0, 0, 0, 250000, 123000]))


def _span(rng: random.Random, created: datetime) -> tuple[datetime | None, datetime | None]:
    if rng.random() < 0.15:
        return None, None
    first = _moment(rng, created, 60)
    return first, first + timedelta(seconds=rng.choice([0, 30, 3600, 86400, 86400 * 20]))


def _histogram(rng: random.Random, bins: int) -> tuple[float, ...]:
    raw = [rng.random() for _ in range(bins)]
    total = sum(raw)
    return tuple(round(x / total, 4) for x in raw)


def make_account(rng: random.Random, index: int) -> AccountRecord:
    cluster = "A" if index % 97 == 5 else "B" if index % 89 == 7 else "C" if index % 83 == 11 else None
    created = _moment(rng, BASE, 150)
    identifiers = []
    for _ in range(rng.randint(1, 2)):
        id_type = rng.choice(list(ID_TYPES))
        # A small pool of shared values (org domains, shared devices) besides unique ones.
        value = _hex(rng) if rng.random() < 0.8 else f"{rng.randrange(20):02x}" * 32
        identifiers.append(
            IdentifierRecord(id_type, rng.choice(KEY_IDS), value, ID_TYPES[id_type], *_span(rng, created))
        )
    if cluster == "B":
        identifiers.append(
            IdentifierRecord(
                "email-canonical",
                "mdx-2026q4",
                CLUSTER_B_EMAIL,
                "mdx-email-canonical-v1",
                *_span(rng, created),
            )
        )
    payments = []
    for _ in range(rng.choice([0, 0, 1, 1, 1, 2])):
        payments.append(
            PaymentRecord(
                rng.choice(["pan", "par", "par", "iban"]),
                rng.choice(KEY_IDS),
                _hex(rng),
                card_iin=rng.choice(IINS + [None]),
                card_network=rng.choice(["visa", "mastercard", None]),
                card_funding=rng.choice(FUNDING + [None]),
                is_virtual=rng.choice([True, False, None]),
                issuer_country=rng.choice(COUNTRIES),
                first_used=_span(rng, created)[0],
                last_used=None,
            )
        )
    if cluster == "A":
        payments.append(
            PaymentRecord(
                "par",
                "mdx-2026q4",
                CLUSTER_A_PAYMENT,
                card_iin="411111",
                card_funding="prepaid",
                is_virtual=True,
                issuer_country="US",
            )
        )
    ips = []
    for n in range(rng.randint(1, 3)):
        roll = rng.random()
        if cluster == "A" and n == 0:
            ip = f"198.51.100.{rng.randrange(256)}"
        elif roll < 0.05:
            ip = f"2001:db8:{rng.randrange(4):x}::{rng.randrange(65536):x}"
        elif roll < 0.09:
            ip = f"203.0.113.{rng.choice([0, 16, 32])}/28"
        elif roll < 0.5:
            ip = f"{rng.choice(['192.0.2', '203.0.113', '198.51.100'])}.{rng.randrange(256)}"
        else:
            ip = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}"
        first, last = _span(rng, created)
        ips.append(
            IpRecord(
                ip,
                rng.choice(ASNS + [None]),
                rng.choice(PROXIES + [None]),
                first,
                last,
                signup=n == 0 and rng.random() < 0.9,
            )
        )
    api_keys = [ApiKeyRecord(_hex(rng), *_span(rng, created)) for _ in range(rng.choice([0, 0, 1]))]
    if cluster == "B":
        api_keys.append(ApiKeyRecord(CLUSTER_B_API_KEY))
    clients = []
    for _ in range(rng.choice([0, 1, 1])):
        sdk = rng.choice(SDKS)
        clients.append(
            ClientRecord(
                rng.choice(AGENTS),
                sdk[0],
                sdk[1],
                rng.choice(["httpx", "requests", None]),
                rng.choice(JA4S),
                rng.choice(["ge11nn060000_4e59edc1297a_000000000000_000000000000", None]),
                None,
                *_span(rng, created),
            )
        )
    if cluster == "A":
        clients.append(ClientRecord("python-httpx/0.27", "custom", "1.0", ja4=CLUSTER_A_JA4))
    signatures = []
    for _ in range(rng.choice([0, 1, 1])):
        start = _moment(rng, created, 60).replace(hour=0, minute=0, second=0, microsecond=0)
        bands = tuple(f"{b:02d}:{rng.randrange(40):016x}" for b in range(16))
        signatures.append(
            PromptSignatureRecord(
                rng.choice(KEY_IDS),
                start,
                start + timedelta(days=7),
                tuple(rng.randrange(2**32) for _ in range(128)),
                bands,
                CLUSTER_C_TEMPLATE if cluster == "C" else _hex(rng),
                simhash64=_hex(rng, 8),
                capability_tags=tuple(rng.sample(CAPABILITIES, rng.randint(1, 2))),
                sample_size=rng.randrange(100, 6000),
            )
        )
    timing = []
    for _ in range(rng.choice([0, 1, 1])):
        start = _moment(rng, created, 60).replace(hour=0, minute=0, second=0, microsecond=0)
        timing.append(
            TimingRecord(
                start,
                start + timedelta(days=7),
                rng.randrange(50, 30000),
                _histogram(rng, 16),
                _histogram(rng, 24),
                float(rng.randrange(20, 3000)),
                round(rng.random() * 1.5, 3),
                rng.choice([1, 4, 16, None]),
            )
        )
    return AccountRecord(
        pseudonym=_hex(rng),
        created_at=created,
        status=rng.choice(["active", "active", "suspended", "terminated"]),
        tier=rng.choice(TIERS),
        org_category=rng.choice(ORGS + [None]),
        access_channel=rng.choice(CHANNELS),
        signup_country=rng.choice(COUNTRIES + [None]),
        identifiers=tuple(identifiers),
        payments=tuple(payments),
        ips=tuple(ips),
        api_keys=tuple(api_keys),
        clients=tuple(clients),
        prompt_signatures=tuple(signatures),
        timing=tuple(timing),
    )


# --- pattern generation: constants are drawn from the data so many patterns hit some accounts


def _q(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ts(moment: datetime) -> str:
    return (
        "t'"
        + moment.strftime("%Y-%m-%dT%H:%M:%S")
        + (f".{moment.microsecond // 1000:03d}" if moment.microsecond else "")
        + "Z'"
    )


@dataclass(frozen=True)
class Prop:
    """A pattern object path and the kind of value it selects."""

    path: str
    kind: str  # str | int | float | bool | ts | ip


PROPS = [
    Prop("mdx-hashed-identifier:value", "str"),
    Prop("mdx-hashed-identifier:identifier_type", "str"),
    Prop("mdx-hashed-identifier:key_id", "str"),
    Prop("mdx-hashed-identifier:normalization", "str"),
    Prop("mdx-payment-fingerprint:value", "str"),
    Prop("mdx-payment-fingerprint:card_iin", "str"),
    Prop("mdx-payment-fingerprint:card_funding", "str"),
    Prop("mdx-payment-fingerprint:is_virtual", "bool"),
    Prop("mdx-payment-fingerprint:issuer_country", "str"),
    Prop("mdx-payment-fingerprint:basis", "str"),
    Prop("ipv4-addr:value", "ip"),
    Prop(f"ipv4-addr:extensions.'{IP_EXT}'.proxy_type", "str"),
    Prop(f"ipv4-addr:extensions.'{IP_EXT}'.first_seen", "ts"),
    Prop("autonomous-system:number", "int"),
    Prop("mdx-client-fingerprint:ja4", "str"),
    Prop("mdx-client-fingerprint:user_agent", "str"),
    Prop("mdx-client-fingerprint:sdk_name", "str"),
    Prop("mdx-client-fingerprint:sdk_version", "str"),
    Prop("mdx-prompt-signature:lsh_bands[*]", "str"),
    Prop("mdx-prompt-signature:lsh_bands[0]", "str"),
    Prop("mdx-prompt-signature:capability_tags[*]", "str"),
    Prop("mdx-prompt-signature:sample_size", "int"),
    Prop("mdx-prompt-signature:minhash[3]", "int"),
    Prop("mdx-prompt-signature:template_hmac", "str"),
    Prop("mdx-timing-fingerprint:request_count", "int"),
    Prop("mdx-timing-fingerprint:median_iat_ms", "float"),
    Prop("mdx-timing-fingerprint:iat_cv", "float"),
    Prop("mdx-timing-fingerprint:iat_histogram[0]", "float"),
    Prop("mdx-timing-fingerprint:window_start", "ts"),
    Prop("mdx-timing-fingerprint:max_concurrency", "int"),
    Prop("mdx-ai-account:account_tier", "str"),
    Prop("mdx-ai-account:status", "str"),
    Prop("mdx-ai-account:signup_country", "str"),
    Prop("mdx-ai-account:access_channel", "str"),
    Prop("mdx-ai-account:org_category", "str"),
    Prop("mdx-ai-account:account_created", "ts"),
    Prop("mdx-ai-account:payment_refs[*].card_funding", "str"),
    Prop("mdx-ai-account:payment_refs[*].is_virtual", "bool"),
    Prop("mdx-ai-account:payment_refs[*].value", "str"),
    Prop("mdx-ai-account:identifier_refs[*].value", "str"),
    Prop("mdx-ai-account:identifier_refs[*].identifier_type", "str"),
    Prop("mdx-ai-account:signup_ip_ref.value", "ip"),
    Prop("mdx-ai-account:ip_refs[*].value", "ip"),
    Prop("mdx-ai-account:ip_refs[0].value", "ip"),
    Prop("mdx-ai-account:asn_refs[*].number", "int"),
    Prop("mdx-ai-account:client_refs[*].ja4", "str"),
    Prop("mdx-ai-account:prompt_signature_refs[*].lsh_bands[*]", "str"),
    Prop("mdx-ai-account:timing_refs[*].iat_cv", "float"),
    Prop(f"mdx-ai-account:signup_ip_ref.extensions.'{IP_EXT}'.proxy_type", "str"),
    Prop("mdx-ai-account:account_pseudonym", "str"),
]


def collect_values(observations: list[list[Observation]]) -> dict[str, list[Any]]:
    """Sample values per pattern path (only the profile observation is needed: it holds every SCO)."""
    found: dict[str, list[Any]] = {}
    for prop in PROPS:
        tree = parse_pattern(f"[EXISTS {prop.path}]")
        assert isinstance(tree, Bracket) and isinstance(tree.expr, Comparison)
        path = tree.expr.path
        values: list[Any] = []
        for obs_list in observations[:400]:
            profile = obs_list[0]
            for root in profile.by_type.get(path.object_type, ()):
                values.extend(v for v in select(path, root, profile) if not isinstance(v, list | dict))
        found[prop.path] = values or ["none"]
    return found


class PatternMaker:
    def __init__(self, rng: random.Random, values: dict[str, list[Any]]) -> None:
        self.rng = rng
        self.values = values

    def constant(self, prop: Prop) -> str:
        value = self.rng.choice(self.values[prop.path])
        if prop.kind == "ts":
            moment = datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
            return _ts(moment + timedelta(days=self.rng.choice([0, 0, -3, 5])))
        if prop.kind == "bool":
            return self.rng.choice(["true", "false"])
        if prop.kind == "int":
            return str(value + self.rng.choice([0, 0, 1, -1000]))
        if prop.kind == "float":
            return repr(round(float(value), self.rng.choice([1, 2, 4])))
        if self.rng.random() < 0.1:
            return _q(value + "-absent")
        return _q(str(value))

    def comparison(self, prop: Prop | None = None) -> str:
        rng = self.rng
        prop = prop or rng.choice(PROPS)
        neg = "NOT " if rng.random() < 0.3 else ""
        if prop.kind == "ip":
            choice = rng.random()
            if choice < 0.45:
                base = str(rng.choice(self.values[prop.path])).split("/")[0]
                if ":" in base:
                    return f"{prop.path} {neg}= {_q(base)}"
                octets = base.split(".")
                prefix = rng.choice([8, 16, 24, 28, 32])
                net = (
                    ".".join(octets[: prefix // 8] + ["0"] * (4 - prefix // 8))
                    if prefix % 8 == 0
                    else ".".join(octets[:3] + ["0"])
                )
                return f"{prop.path} {neg}ISSUBSET {_q(net + '/' + str(prefix))}"
            if choice < 0.7:
                return f"{prop.path} {neg}= {self.constant(prop)}"
            if choice < 0.85:
                like = rng.choice(["198.51.100.%", "10.%", "%.1_", "203.0.113.%/28"])
                return f"{prop.path} {neg}LIKE {_q(like)}"
            regex = rng.choice(IP_REGEXES)
            return f"{prop.path} {neg}MATCHES {_q(regex)}"
        ops = {
            "str": ["=", "=", "!=", "IN", "LIKE", "MATCHES", "<", ">=", "EXISTS"],
            "int": ["=", "!=", "<", "<=", ">", ">=", "IN"],
            "float": ["=", "<", "<=", ">", ">=", "!="],
            "bool": ["=", "!="],
            "ts": ["=", "<", "<=", ">", ">=", "!="],
        }[prop.kind]
        op = rng.choice(ops)
        if op == "EXISTS":
            return f"EXISTS {prop.path}"
        if op == "IN":
            members = sorted({self.constant(prop) for _ in range(rng.randint(1, 4))})
            return f"{prop.path} {neg}IN ({', '.join(members)})"
        if op == "LIKE":
            text = str(rng.choice(self.values[prop.path]))
            like = rng.choice(
                [text[:3] + "%", "%" + text[-2:], text[:1] + "_" + text[2:], "%" + text[1:3] + "%"]
            )
            return f"{prop.path} {neg}LIKE {_q(like)}"
        if op == "MATCHES":
            text = str(rng.choice(self.values[prop.path]))
            regex = rng.choice(
                ["^" + _re_escape(text[:3]), _re_escape(text[-2:]) + "$", "[0-9]{2}", "^[a-f]"]
            )
            return f"{prop.path} {neg}MATCHES {_q(regex)}"
        return f"{prop.path} {neg}{op} {self.constant(prop)}"

    def bracket(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.55:
            return f"[{self.comparison()}]"
        # Mostly one object type per bracket (AND must bind one object); sometimes mixed.
        first = rng.choice([p for p in PROPS])
        same = [p for p in PROPS if p.path.split(":")[0] == first.path.split(":")[0]]
        parts = [self.comparison(first)] + [
            self.comparison(rng.choice(same) if rng.random() < 0.85 else None)
            for _ in range(rng.randint(1, 2))
        ]
        parts = [p for p in parts if not p.startswith("EXISTS")] or [self.comparison(first)]
        if parts[0].startswith("EXISTS"):
            return f"[{parts[0]}]"
        joiner = rng.choice([" AND ", " OR "])
        if len(parts) == 3 and rng.random() < 0.5:
            other = " OR " if joiner == " AND " else " AND "
            return f"[{parts[0]}{joiner}({parts[1]}{other}{parts[2]})]"
        return "[" + joiner.join(parts) + "]"

    def qualify(self, expr: str) -> str:
        rng = self.rng
        kind = rng.choice(["WITHIN", "REPEATS", "STARTSTOP"])
        if kind == "WITHIN":
            seconds = rng.choice(["1", "60", "3600", "86400", "604800", "5184000", "1.5"])
            return f"{expr} WITHIN {seconds} SECONDS"
        if kind == "REPEATS":
            return f"{expr} REPEATS {rng.choice([1, 2, 2, 3])} TIMES"
        start = BASE + timedelta(days=rng.randrange(0, 150))
        stop = start + timedelta(days=rng.choice([1, 14, 60, 365]))
        return f"{expr} START {_ts(start)} STOP {_ts(stop)}"

    def pattern(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.35:
            return self.bracket()
        if roll < 0.55:
            return self.qualify(self.bracket())
        op = rng.choice([" AND ", " OR ", " FOLLOWEDBY "])
        parts = [self.bracket() for _ in range(rng.choice([2, 2, 3]))]
        if rng.random() < 0.3:
            parts[0] = "(" + self.qualify(parts[0]) + ")"
        expr = op.join(parts)
        if rng.random() < 0.25:
            inner_op = rng.choice([" AND ", " OR ", " FOLLOWEDBY "])
            expr = f"({expr}){inner_op}{self.bracket()}"
        if rng.random() < 0.3:
            expr = self.qualify(f"({expr})")
        return expr


def _re_escape(text: str) -> str:
    return "".join("\\\\" + c if not c.isalnum() else c for c in text)


def make_patterns(values: dict[str, list[Any]], count: int) -> list[str]:
    maker = PatternMaker(random.Random(SEED + 1), values)
    patterns: list[str] = []
    # Every property appears at least once in a plain bracket, with and without NOT.
    for prop in PROPS:
        patterns.append(f"[{maker.comparison(prop)}]")
    seen = set(patterns)
    while len(patterns) < count:
        candidate = maker.pattern()
        if candidate not in seen:
            seen.add(candidate)
            patterns.append(candidate)
    return patterns


# --- both engines over all (pattern, account) pairs, split across the machine's 2 cores


@dataclass
class EngineRun:
    accepted: list[bool]  # the engine compiled the pattern
    # results[p][a]: True/False, or the engine's exception text for that pair.
    results: list[list[bool | str]]
    seconds: float


_WORKER_STATE: dict[str, Any] = {}


def _oracle_rows(indices: list[int]) -> list[list[bool | str]]:
    compiled: list[OraclePattern | None] = _WORKER_STATE["compiled"]
    bundles: list[list[dict[str, Any]]] = _WORKER_STATE["inputs"]
    rows = []
    for index in indices:
        listener = MatchListener(bundles[index], stix_version="2.1")
        row: list[bool | str] = []
        for pattern in compiled:
            if pattern is None:
                row.append("rejected")
                continue
            # stix2-matcher keeps its result stack on the listener; a fresh stack per
            # pattern lets one listener (one parse of the account's bundles) serve them all.
            listener._MatchListener__compute_stack = []
            try:
                pattern.walk(listener)
                row.append(next(listener.matched(), None) is not None)
            except Exception as exc:  # the oracle's own errors: recorded, judged by the test
                row.append(f"{type(exc).__name__}: {exc}")
        rows.append(row)
    return rows


def _our_rows(indices: list[int]) -> list[list[bool | str]]:
    compiled: list[CompiledPattern | None] = _WORKER_STATE["compiled"]
    observations: list[list[Observation]] = _WORKER_STATE["inputs"]
    return [
        ["rejected" if p is None else p.matches(observations[index]) for p in compiled] for index in indices
    ]


def _run(
    compiled: list[Any],
    inputs: list[Any],
    rows: Callable[[list[int]], list[list[bool | str]]],
    started: float,
) -> EngineRun:
    _WORKER_STATE.update(compiled=compiled, inputs=inputs)
    chunks = [list(range(i, len(inputs), 2)) for i in range(2)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        parts = pool.map(rows, chunks)
    by_account: dict[int, list[bool | str]] = {}
    for chunk, part in zip(chunks, parts, strict=True):
        by_account.update(zip(chunk, part, strict=True))
    results = [[by_account[a][p] for a in range(len(inputs))] for p in range(len(compiled))]
    return EngineRun([c is not None for c in compiled], results, time.perf_counter() - started)


def run_oracle(patterns: list[str], bundles: list[list[dict[str, Any]]]) -> EngineRun:
    started = time.perf_counter()
    compiled: list[OraclePattern | None] = []
    for pattern in patterns:
        try:
            compiled.append(OraclePattern(pattern, "2.1"))
        except Exception:
            compiled.append(None)
    return _run(compiled, bundles, _oracle_rows, started)


def run_ours(patterns: list[str], observations: list[list[Observation]]) -> EngineRun:
    started = time.perf_counter()
    compiled: list[CompiledPattern | None] = []
    for pattern in patterns:
        try:
            compiled.append(compile_pattern(pattern))
        except PatternError:
            compiled.append(None)
    return _run(compiled, observations, _our_rows, started)
