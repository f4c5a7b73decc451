"""The mdx-* STIX 2.1 extension registrations (DOMAIN.md §1.7) and the TLP 2.0 constants (§1.3)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from stix2 import v21
from stix2.properties import (
    BooleanProperty,
    DictionaryProperty,
    EnumProperty,
    FloatProperty,
    IntegerProperty,
    ListProperty,
    OpenVocabProperty,
    ReferenceProperty,
    StringProperty,
    TimestampProperty,
)
from stix2.registry import class_for_type

# --- TLP 2.0 (DOMAIN.md §1.3; ids from oasis-open/cti-stix-common-objects) -------------------

TLP_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

TLP_ORDER: tuple[str, ...] = ("clear", "green", "amber", "amber+strict", "red")

TLP_IDS: dict[str, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP_LEVEL_BY_ID: dict[str, str] = {marking_id: level for level, marking_id in TLP_IDS.items()}

TLP_DEFINITIONS: dict[str, dict[str, Any]] = {
    level: {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.upper()}",
        "extensions": {TLP_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level}},
    }
    for level in TLP_ORDER
}

# TLP 1.0 ids as shipped in stix2 3.0.2 (stix2.TLP_WHITE etc.); mapped on input (§1.3 policy).
TLP1_IDS: dict[str, str] = {
    "white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
TLP1_TO_TLP2: dict[str, str] = {
    TLP1_IDS["white"]: TLP_IDS["clear"],
    TLP1_IDS["green"]: TLP_IDS["green"],
    TLP1_IDS["amber"]: TLP_IDS["amber"],
    TLP1_IDS["red"]: TLP_IDS["red"],
}


def tlp_rank(level: str) -> int:
    """Position of a TLP 2.0 level in TLP_ORDER (CLEAR=0 … RED=4); ValueError if unknown."""
    try:
        return TLP_ORDER.index(level)
    except ValueError:
        raise ValueError(f"unknown TLP level {level!r}; expected one of {', '.join(TLP_ORDER)}") from None


# --- Extension ids and vocabularies (DOMAIN.md §1.7; fixed, never regenerate) -------------------

EXTENSION_IDS: dict[str, str] = {
    "mdx-hashed-identifier": "extension-definition--f269ee26-d797-48c8-bb27-c89e80861096",
    "mdx-payment-fingerprint": "extension-definition--b06d3d0d-1cb9-410b-8cdc-ba664dc3fe2e",
    "mdx-ai-account": "extension-definition--744616a0-5fc2-4979-8aba-20cd64b1763e",
    "mdx-prompt-signature": "extension-definition--f3e4a9e2-9808-48f3-b46d-582b8c0c80ca",
    "mdx-timing-fingerprint": "extension-definition--aeb58f68-6838-4cdc-a4c4-7032693e1a2c",
    "mdx-client-fingerprint": "extension-definition--b31d0363-5929-44da-966e-bedbe9d0e405",
    "mdx-ip-context": "extension-definition--9ad6d8dc-5bdc-491e-b991-479c0b931a03",
    "mdx-activity-profile": "extension-definition--cd2b1f8c-69bb-4af2-a7a2-15347264af71",
    "mdx-indicator-matching": "extension-definition--444a9a9b-5ff7-4b80-a0e4-0012d183405b",
    "mdx-sighting-context": "extension-definition--326ca5be-47c7-41f1-bf75-faa80bf68915",
}
EXTENSION_NAME_BY_ID: dict[str, str] = {ext_id: name for name, ext_id in EXTENSION_IDS.items()}

# The new-sco extensions: the SCO type name equals the extension name.
MDX_SCO_TYPES: tuple[str, ...] = (
    "mdx-hashed-identifier",
    "mdx-payment-fingerprint",
    "mdx-ai-account",
    "mdx-prompt-signature",
    "mdx-timing-fingerprint",
    "mdx-client-fingerprint",
)

# "Applies to" column of §1.7 for the property and top-level property extensions.
EXTENSION_APPLIES_TO: dict[str, tuple[str, ...]] = {
    "mdx-ip-context": ("ipv4-addr", "ipv6-addr"),
    "mdx-activity-profile": ("campaign", "intrusion-set", "infrastructure"),
    "mdx-indicator-matching": ("indicator",),
    "mdx-sighting-context": ("sighting",),
}

# Open vocabularies: exported for warnings only, never enforced (§1.7).
CAPABILITY_OV: tuple[str, ...] = (
    "agentic-coding",
    "tool-use",
    "tool-orchestration",
    "agentic-reasoning",
    "reasoning-trace-elicitation",
    "rubric-grading",
    "censorship-rewrite",
    "computer-use",
    "computer-vision",
    "data-analysis",
    "coding",
    "general",
)
ACCESS_CHANNEL_OV: tuple[str, ...] = (
    "first-party-api",
    "consumer-app",
    "cloud-marketplace",
    "reseller-proxy",
    "partner-integration",
    "unknown",
)
ACCOUNT_TIER_OV: tuple[str, ...] = (
    "free",
    "self-serve-paid",
    "team",
    "enterprise",
    "education-program",
    "research-program",
    "startup-program",
    "partner",
    "unknown",
)

IDENTIFIER_TYPES = [
    "email",
    "email-canonical",
    "phone",
    "account-id",
    "org-domain",
    "api-key",
    "device-id",
    "oauth-subject",
]
INDICATOR_KINDS = [
    "exact-identifier",
    "network-range",
    "prompt-similarity",
    "timing-similarity",
    "client-fingerprint",
    "payment",
    "composite",
]
ACTION_HINTS = ["review", "step-up-verification", "rate-limit", "suspend"]
COUNT_BUCKETS = ["1", "2-9", "10-99", "100-999", "1000+"]
REVIEW_STATES = ["unreviewed", "confirmed", "false-positive", "inconclusive"]
PROXY_TYPES = ["residential", "mobile", "datacenter", "vpn", "tor", "ai-reseller-egress", "unknown"]

# Sketch geometry of mdx-prompt-signature v1 (DOMAIN.md §3.3 steps 6-7).
MINHASH_NUM_PERM = 128
LSH_BANDS = 16
LSH_ROWS = 8
UINT32_MAX = 2**32 - 1
IAT_BINS = 16
HOUR_BINS = 24
# Histograms arrive rounded; a normalised one must still sum to 1 within this tolerance.
HISTOGRAM_SUM_TOLERANCE = 0.01


class ExtensionConstraintError(ValueError):
    """An mdx-* rule of DOMAIN.md §1.7 is violated; ``prop`` names the offending property."""

    def __init__(self, extension: str, prop: str, reason: str) -> None:
        super().__init__(f"{extension}: '{prop}' {reason}")
        self.extension = extension
        self.prop = prop


# --- Property types --------------------------------------------------------------------------


class ListSafeFloatProperty(FloatProperty):
    """FloatProperty usable inside ListProperty.

    stix2 3.0.2 ListProperty.clean passes a third ``interoperability`` argument that
    FloatProperty.clean does not accept (DOMAIN.md §1.5).
    """

    def clean(
        self, value: Any, allow_custom: bool = False, interoperability: bool = False
    ) -> tuple[float, bool]:
        return super().clean(value, allow_custom)


class RegexStringProperty(StringProperty):
    """A string that must fully match ``regex``; ``description`` is used in the error."""

    def __init__(self, regex: str, description: str, **kwargs: Any) -> None:
        self.regex = re.compile(regex)
        self.description = description
        super().__init__(**kwargs)

    def clean(
        self, value: Any, allow_custom: bool = False, interoperability: bool = False
    ) -> tuple[str, bool]:
        if not isinstance(value, str) or not self.regex.fullmatch(value):
            raise ValueError(f"must be {self.description}, got {value!r}")
        return value, False


def _lower_hex(length: int, **kwargs: Any) -> RegexStringProperty:
    """Hex digest property: exactly ``length`` lowercase hex characters (§1.7 "hex")."""
    return RegexStringProperty(f"[0-9a-f]{{{length}}}", f"{length} lowercase hex characters", **kwargs)


def _country_code(**kwargs: Any) -> RegexStringProperty:
    return RegexStringProperty("[A-Z]{2}", "an ISO 3166-1 alpha-2 code (two uppercase letters)", **kwargs)


def _refs_to(*types: str) -> ListProperty:
    return ListProperty(ReferenceProperty(valid_types=list(types), spec_version="2.1"))


def _require(condition: bool, extension: str, prop: str, reason: str) -> None:
    if not condition:
        raise ExtensionConstraintError(extension, prop, reason)


def _check_histogram(values: Sequence[float], extension: str, prop: str, bins: int, normalised: bool) -> None:
    _require(len(values) == bins, extension, prop, f"must have exactly {bins} values, got {len(values)}")
    _require(
        all(0.0 <= v <= 1.0 for v in values),
        extension,
        prop,
        "values must be between 0 and 1",
    )
    if normalised:
        total = math.fsum(values)
        _require(
            abs(total - 1.0) <= HISTOGRAM_SUM_TOLERANCE, extension, prop, f"must sum to 1 (got {total:.4f})"
        )


# --- Registration ----------------------------------------------------------------------------


def _register() -> None:
    """Register every mdx-* type and extension with stix2 (called once per process)."""

    @v21.CustomObservable(
        "mdx-hashed-identifier",
        [
            ("identifier_type", EnumProperty(IDENTIFIER_TYPES, required=True)),
            ("scheme", EnumProperty(["hmac-sha256", "sha256"], required=True)),
            ("key_id", StringProperty()),
            ("normalization", StringProperty(required=True)),
            ("value", _lower_hex(64, required=True)),
        ],
        id_contrib_props=["identifier_type", "scheme", "key_id", "value"],
        extension_name=EXTENSION_IDS["mdx-hashed-identifier"],
    )
    class HashedIdentifier:
        def _check_object_constraints(self) -> None:
            super()._check_object_constraints()
            name = "mdx-hashed-identifier"
            # DOMAIN.md §0 item 4: an unkeyed hash is only safe for high-entropy secrets.
            if self["scheme"] == "sha256":
                _require(
                    self["identifier_type"] == "api-key",
                    name,
                    "scheme",
                    f"must be 'hmac-sha256' for identifier_type {self['identifier_type']!r}: unkeyed "
                    "'sha256' is only allowed for identifier_type 'api-key'",
                )
            else:
                _require("key_id" in self, name, "key_id", "is required when scheme is 'hmac-sha256'")

    @v21.CustomObservable(
        "mdx-payment-fingerprint",
        [
            (
                "instrument_type",
                EnumProperty(["card", "bank-account", "wallet", "crypto-address"], required=True),
            ),
            ("basis", EnumProperty(["pan", "par", "iban", "wallet-id", "crypto-address"], required=True)),
            ("scheme", EnumProperty(["hmac-sha256"], required=True)),
            ("key_id", StringProperty(required=True)),
            ("value", _lower_hex(64, required=True)),
            # Never last4; not named card_bin because STIX reserves the _bin suffix (§1.7).
            ("card_iin", RegexStringProperty("[0-9]{6,8}", "a 6-8 digit issuer identification number")),
            ("card_network", StringProperty()),
            ("card_funding", EnumProperty(["credit", "debit", "prepaid", "unknown"])),
            ("is_virtual", BooleanProperty()),
            ("issuer_country", _country_code()),
        ],
        id_contrib_props=["instrument_type", "basis", "scheme", "key_id", "value"],
        extension_name=EXTENSION_IDS["mdx-payment-fingerprint"],
    )
    class PaymentFingerprint:
        pass

    @v21.CustomObservable(
        "mdx-client-fingerprint",
        [
            ("user_agent", StringProperty()),
            ("sdk_name", StringProperty()),
            ("sdk_version", StringProperty()),
            ("http_library", StringProperty()),
            ("ja4", StringProperty()),
            ("ja4h", StringProperty()),
            ("header_order_sha256", _lower_hex(64)),
        ],
        id_contrib_props=["user_agent", "sdk_name", "sdk_version", "ja4", "ja4h", "header_order_sha256"],
        extension_name=EXTENSION_IDS["mdx-client-fingerprint"],
    )
    class ClientFingerprint:
        def _check_object_constraints(self) -> None:
            super()._check_object_constraints()
            self._check_at_least_one_property(
                [
                    "user_agent",
                    "sdk_name",
                    "sdk_version",
                    "http_library",
                    "ja4",
                    "ja4h",
                    "header_order_sha256",
                ],
            )

    @v21.CustomObservable(
        "mdx-prompt-signature",
        [
            ("normalization", EnumProperty(["mdx-prompt-v1"])),
            ("key_id", StringProperty()),
            ("shingling", EnumProperty(["word-5"])),
            ("num_perm", IntegerProperty()),
            ("minhash", ListProperty(IntegerProperty(min=0, max=UINT32_MAX))),
            ("lsh_b", IntegerProperty()),
            ("lsh_r", IntegerProperty()),
            ("lsh_bands", ListProperty(StringProperty())),
            ("template_hmac", _lower_hex(64)),
            ("simhash64", _lower_hex(16)),
            ("capability_tags", ListProperty(StringProperty())),
            ("language", StringProperty()),
            ("sample_size", IntegerProperty(min=1)),
        ],
        id_contrib_props=["normalization", "key_id", "minhash", "template_hmac", "simhash64"],
        extension_name=EXTENSION_IDS["mdx-prompt-signature"],
    )
    class PromptSignature:
        def _check_object_constraints(self) -> None:
            super()._check_object_constraints()
            name = "mdx-prompt-signature"
            self._check_at_least_one_property(["minhash", "lsh_bands", "template_hmac", "simhash64"])
            # Keyed sketches are meaningless without the key epoch (§3.3 step 6).
            if "minhash" in self or "template_hmac" in self:
                _require("key_id" in self, name, "key_id", "is required with 'minhash' or 'template_hmac'")
            for prop, fixed in (("num_perm", MINHASH_NUM_PERM), ("lsh_b", LSH_BANDS), ("lsh_r", LSH_ROWS)):
                if prop in self:
                    _require(self[prop] == fixed, name, prop, f"must be {fixed} in v1, got {self[prop]}")
            if "minhash" in self:
                _require(
                    len(self["minhash"]) == MINHASH_NUM_PERM,
                    name,
                    "minhash",
                    f"must have exactly {MINHASH_NUM_PERM} values, got {len(self['minhash'])}",
                )
            if "lsh_bands" in self:
                bands = self["lsh_bands"]
                _require(
                    len(bands) == LSH_BANDS,
                    name,
                    "lsh_bands",
                    f"must have exactly {LSH_BANDS} band keys, got {len(bands)}",
                )
                # Band key = "%02d:" % i + 16 hex (§3.3 step 7), in band order.
                for i, band in enumerate(bands):
                    _require(
                        re.fullmatch(f"{i:02d}:[0-9a-f]{{16}}", band) is not None,
                        name,
                        "lsh_bands",
                        f"item {i} must be '{i:02d}:' followed by 16 lowercase hex characters, got {band!r}",
                    )

    @v21.CustomObservable(
        "mdx-timing-fingerprint",
        [
            ("method", EnumProperty(["mdx-iat-log2x16+hod24-v1"], required=True)),
            ("window_start", TimestampProperty(required=True)),
            ("window_end", TimestampProperty(required=True)),
            ("request_count", IntegerProperty(min=0)),
            ("iat_histogram", ListProperty(ListSafeFloatProperty())),
            ("hour_of_day_histogram", ListProperty(ListSafeFloatProperty())),
            ("median_iat_ms", FloatProperty(min=0.0)),
            ("iat_cv", FloatProperty(min=0.0)),
            ("max_concurrency", IntegerProperty(min=0)),
            ("release_switch_latency_h", FloatProperty(min=0.0)),
        ],
        id_contrib_props=["method", "window_start", "window_end", "iat_histogram", "hour_of_day_histogram"],
        extension_name=EXTENSION_IDS["mdx-timing-fingerprint"],
    )
    class TimingFingerprint:
        def _check_object_constraints(self) -> None:
            super()._check_object_constraints()
            name = "mdx-timing-fingerprint"
            _require(
                self["window_end"] > self["window_start"], name, "window_end", "must be after 'window_start'"
            )
            if "iat_histogram" in self:
                _check_histogram(self["iat_histogram"], name, "iat_histogram", IAT_BINS, normalised=True)
            if "hour_of_day_histogram" in self:
                _check_histogram(
                    self["hour_of_day_histogram"], name, "hour_of_day_histogram", HOUR_BINS, normalised=False
                )

    @v21.CustomObservable(
        "mdx-ai-account",
        [
            ("account_pseudonym", _lower_hex(64, required=True)),
            ("access_channel", OpenVocabProperty(list(ACCESS_CHANNEL_OV))),
            ("account_tier", OpenVocabProperty(list(ACCOUNT_TIER_OV))),
            (
                "org_category",
                EnumProperty(
                    ["individual", "university", "research-institute", "startup", "enterprise", "unknown"]
                ),
            ),
            ("account_created", TimestampProperty()),
            ("signup_country", _country_code()),
            ("status", EnumProperty(["active", "suspended", "terminated"])),
            ("identifier_refs", _refs_to("mdx-hashed-identifier")),
            ("payment_refs", _refs_to("mdx-payment-fingerprint")),
            ("signup_ip_ref", ReferenceProperty(valid_types=["ipv4-addr", "ipv6-addr"], spec_version="2.1")),
            ("ip_refs", _refs_to("ipv4-addr", "ipv6-addr")),
            ("asn_refs", _refs_to("autonomous-system")),
            ("client_refs", _refs_to("mdx-client-fingerprint")),
            ("prompt_signature_refs", _refs_to("mdx-prompt-signature")),
            ("timing_refs", _refs_to("mdx-timing-fingerprint")),
        ],
        id_contrib_props=["account_pseudonym"],
        extension_name=EXTENSION_IDS["mdx-ai-account"],
    )
    class AIAccount:
        def _check_object_constraints(self) -> None:
            super()._check_object_constraints()
            created = self.get("account_created")
            if created is not None:
                # Truncated to the day so the exact signup time never leaves the provider (§1.7).
                _require(
                    (created.hour, created.minute, created.second, created.microsecond) == (0, 0, 0, 0),
                    "mdx-ai-account",
                    "account_created",
                    "must be truncated to the day (T00:00:00Z)",
                )

    @v21.CustomExtension(
        EXTENSION_IDS["mdx-ip-context"],
        [
            ("proxy_type", EnumProperty(PROXY_TYPES)),
            ("proxy_provider", StringProperty()),
            ("linked_account_count", IntegerProperty(min=0)),
            ("first_seen", TimestampProperty()),
            ("last_seen", TimestampProperty()),
        ],
    )
    class IPContext:
        extension_type = "property-extension"

        def _check_object_constraints(self) -> None:
            super()._check_object_constraints()
            if "first_seen" in self and "last_seen" in self:
                _require(
                    self["last_seen"] >= self["first_seen"],
                    "mdx-ip-context",
                    "last_seen",
                    "must not be earlier than 'first_seen'",
                )

    @v21.CustomExtension(
        EXTENSION_IDS["mdx-activity-profile"],
        [
            ("reported_exchange_count", IntegerProperty(min=0)),
            ("reported_account_count", IntegerProperty(min=0)),
            ("controlled_account_count", IntegerProperty(min=0)),
            ("target_capabilities", ListProperty(StringProperty())),
            ("access_channels", ListProperty(StringProperty())),
            ("release_retarget_window_h", FloatProperty(min=0.0)),
            ("release_retarget_share", FloatProperty(min=0.0, max=1.0)),
            ("figures_basis", StringProperty()),
        ],
    )
    class ActivityProfile:
        extension_type = "property-extension"

    # Top-level property extensions: stix2 validates these properties on the host object.
    @v21.CustomExtension(
        EXTENSION_IDS["mdx-indicator-matching"],
        [
            ("mdx_indicator_kind", EnumProperty(INDICATOR_KINDS, required=True)),
            ("mdx_match", DictionaryProperty(spec_version="2.1")),
            ("mdx_min_accounts", IntegerProperty(min=1)),
            ("mdx_action_hint", EnumProperty(ACTION_HINTS)),
        ],
    )
    class IndicatorMatching:
        extension_type = "toplevel-property-extension"

    @v21.CustomExtension(
        EXTENSION_IDS["mdx-sighting-context"],
        [
            ("mdx_match_kind", EnumProperty(INDICATOR_KINDS)),
            ("mdx_count_bucket", EnumProperty(COUNT_BUCKETS)),
            ("mdx_review_state", EnumProperty(REVIEW_STATES)),
        ],
    )
    class SightingContext:
        extension_type = "toplevel-property-extension"


# stix2 refuses duplicate registrations; registering only when absent keeps a second import
# of this module (e.g. importlib.reload in tests) harmless.
if class_for_type(EXTENSION_IDS["mdx-sighting-context"], "2.1", "extensions") is None:
    _register()

# The registered SCO classes, e.g. to build an object and let stix2 derive its deterministic id.
MDX_SCO_CLASSES: dict[str, type] = {
    type_: class_for_type(type_, "2.1", "observables") for type_ in MDX_SCO_TYPES
}
