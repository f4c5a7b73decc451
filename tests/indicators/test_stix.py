"""The STIX boundary (indicators.stix) and the mdx-* registrations; plain pytest, no Django, no DB."""

from __future__ import annotations

import copy
import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from indicators import extensions
from indicators.extensions import EXTENSION_IDS, TLP1_IDS, TLP_IDS, TLP_ORDER, tlp_rank
from indicators.stix import (
    TLP_MARKING_OBJECTS,
    StixError,
    canonical_json,
    load_json,
    objects_from_envelope,
    parse_object,
    parse_objects,
    tlp_level,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
EXAMPLES = json.loads((DATA / "examples-bundle.json").read_text(encoding="utf-8"))
SEED = json.loads((DATA / "seed-knowledge-pack.json").read_text(encoding="utf-8"))
ALL_OBJECTS = EXAMPLES["objects"] + SEED["objects"]


def example(type_: str) -> dict:
    """A deep copy of the first object of ``type_`` in the two data bundles."""
    return copy.deepcopy(next(o for o in ALL_OBJECTS if o["type"] == type_))


def changed(type_: str, **props: object) -> dict:
    """An example object with properties replaced; ``...`` removes the property."""
    obj = example(type_)
    for name, value in props.items():
        if value is ...:
            obj.pop(name, None)
        else:
            obj[name] = value
    return obj


def with_ip_context(**props: object) -> dict:
    obj = example("ipv4-addr")
    obj["extensions"] = {EXTENSION_IDS["mdx-ip-context"]: {"extension_type": "property-extension", **props}}
    return obj


UUID = "6f0e2b1c-5a3d-4e8f-9b7a-1c2d3e4f5a6b"
BANDS = example("mdx-prompt-signature")["lsh_bands"]


# --- Valid input comes back unchanged --------------------------------------------------------


@pytest.mark.parametrize("obj", ALL_OBJECTS, ids=lambda o: o["id"])
def test_every_object_of_the_data_bundles_is_accepted_and_returned_equal(obj):
    sent = copy.deepcopy(obj)
    result = parse_object(obj)
    assert result == sent
    assert obj == sent  # the input is not mutated
    assert type(result) is dict
    json.dumps(result)  # plain JSON values only, no stix2 objects


def test_bundles_decode_through_load_json_and_objects_from_envelope():
    raw = (DATA / "examples-bundle.json").read_bytes()
    objects = objects_from_envelope(load_json(raw))
    accepted, errors = parse_objects(objects)
    assert errors == []
    assert accepted == EXAMPLES["objects"]


def test_timestamps_keep_their_precision():
    obj = changed("indicator", created="2026-11-23T00:00:00.123456Z", modified="2026-11-23T00:00:01Z")
    assert parse_object(obj)["created"] == "2026-11-23T00:00:00.123456Z"
    assert parse_object(obj)["modified"] == "2026-11-23T00:00:01Z"


def test_shipped_seed_pack_is_a_byte_copy_of_the_fixture():
    shipped = ROOT / "indicators" / "data" / "seed-knowledge-pack.json"
    assert shipped.read_bytes() == (DATA / "seed-knowledge-pack.json").read_bytes()


def test_tlp_marking_objects_are_the_official_tlp_2_0_definitions_and_pass_validation():
    assert [m["id"] for m in TLP_MARKING_OBJECTS] == [TLP_IDS[level] for level in TLP_ORDER]
    amber_strict = TLP_MARKING_OBJECTS[3]
    assert amber_strict == {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        "created": "2022-10-01T00:00:00.000Z",
        "name": "TLP:AMBER+STRICT",
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": "amber+strict",
            }
        },
    }
    for marking in TLP_MARKING_OBJECTS:
        assert parse_object(copy.deepcopy(marking)) == marking


def test_an_indicator_without_pattern_version_is_checked_with_the_2_1_grammar():
    # EXISTS exists only in the STIX 2.1 pattern grammar (STIX 2.1 §4.7: the default version).
    pattern = "[EXISTS mdx-ai-account:signup_ip_ref AND mdx-ai-account:account_tier = 'education-program']"
    obj = changed("indicator", pattern=pattern, pattern_version=...)
    assert parse_object(obj) == obj
    with pytest.raises(StixError, match="property 'pattern'"):
        parse_object(changed("indicator", pattern=pattern, pattern_version="2.0"))


@pytest.mark.parametrize(
    "obj", [o for o in EXAMPLES["objects"] if o["type"] in extensions.MDX_SCO_TYPES], ids=lambda o: o["id"]
)
def test_registered_id_contributing_properties_reproduce_the_example_ids(obj):
    # STIX 2.1 §6: SCO ids are UUIDv5 over id_contrib_props, so every member derives the same id.
    props = {k: v for k, v in obj.items() if k not in ("type", "id", "spec_version")}
    assert extensions.MDX_SCO_CLASSES[obj["type"]](**props)["id"] == obj["id"]


def test_registration_is_idempotent_on_reimport():
    importlib.reload(extensions)
    assert parse_object(example("mdx-ai-account")) == example("mdx-ai-account")


# --- Invalid input is rejected with a message naming the problem ------------------------------

INVALID: dict[str, tuple[Callable[[], dict], list[str]]] = {
    "id with the wrong type prefix": (
        lambda: changed("indicator", id=f"identity--{UUID}"),
        ["property 'id'", "must start with 'indicator--'"],
    ),
    "id that is not a UUID": (
        lambda: changed("indicator", id="indicator--1234"),
        ["property 'id'", "not a valid STIX identifier"],
    ),
    "spec_version 2.0": (
        lambda: changed("indicator", spec_version="2.0"),
        ["spec_version '2.0' is not supported"],
    ),
    "spec_version missing on an SDO": (
        lambda: changed("campaign", spec_version=...),
        ["missing 'spec_version'"],
    ),
    "missing required property": (
        lambda: changed("indicator", pattern=...),
        ["missing required property 'pattern'"],
    ),
    "missing id (stix2 would invent one)": (
        lambda: changed("campaign", id=...),
        ["missing required property 'id'"],
    ),
    "missing id on an SCO": (
        lambda: changed("mdx-hashed-identifier", id=...),
        ["missing required property 'id'"],
    ),
    "missing created (stix2 would use the current time)": (
        lambda: changed("identity", created=...),
        ["missing required property 'created'"],
    ),
    "missing valid_from": (
        lambda: changed("indicator", valid_from=...),
        ["missing required property 'valid_from'"],
    ),
    "type that is not a string": (
        lambda: changed("indicator", type=["indicator"]),
        ["'type' must be a string"],
    ),
    "extensions that are not an object": (
        lambda: changed("campaign", extensions="mdx"),
        ["property 'extensions'", "must be a JSON object"],
    ),
    "bad timestamp": (
        lambda: changed("indicator", valid_from="2026-13-45T00:00:00Z"),
        ["property 'valid_from'"],
    ),
    "timestamp without time or Z": (
        lambda: changed("identity", created="2026-11-23"),
        ["property 'created'"],
    ),
    "modified before created": (
        lambda: changed("campaign", modified="2026-11-22T23:59:59.999Z"),
        ["'modified' must not be earlier than 'created'"],
    ),
    "valid_until before valid_from": (
        lambda: changed("indicator", valid_until="2026-11-01T00:00:00Z"),
        ["'valid_until' must be greater"],
    ),
    "invalid pattern": (
        lambda: changed("indicator", pattern="[ipv4-addr:value = '198.51.100.1'"),
        ["property 'pattern'", "invalid STIX pattern"],
    ),
    "unregistered custom type x-foo": (
        lambda: {"type": "x-foo", "spec_version": "2.1", "id": f"x-foo--{UUID}", "name": "foo"},
        ["unknown object type 'x-foo'"],
    ),
    "made-up mdx type with a new-sco extension": (
        lambda: {
            "type": "mdx-unknown",
            "id": f"mdx-unknown--{UUID}",
            "value": "x",
            "extensions": {f"extension-definition--{UUID}": {"extension_type": "new-sco"}},
        },
        ["unknown object type 'mdx-unknown'"],
    ),
    "unknown custom property on a standard object": (
        lambda: changed("identity", x_internal_note="secret"),
        ["unknown property 'x_internal_note'"],
    ),
    "created_by_ref pointing at an indicator": (
        lambda: changed("campaign", created_by_ref=f"indicator--{UUID}"),
        ["property 'created_by_ref'", "'indicator'", "identity"],
    ),
    "official TLP 2.0 id with the wrong tlp_2_0 value": (
        lambda: {
            **copy.deepcopy(TLP_MARKING_OBJECTS[1]),
            "extensions": {
                extensions.TLP_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": "clear"}
            },
        },
        ["TLP definition wrong", "TLP:GREEN", "extensions"],
    ),
    "official TLP 2.0 id with the wrong name": (
        lambda: {**copy.deepcopy(TLP_MARKING_OBJECTS[0]), "name": "TLP:WHITE"},
        ["TLP definition wrong", "name"],
    ),
    "TLP 2.0 extension under a home-made id": (
        lambda: {**copy.deepcopy(TLP_MARKING_OBJECTS[4]), "id": f"marking-definition--{UUID}"},
        ["TLP definition wrong", "official ids"],
    ),
    "legacy TLP definition_type for clear": (
        lambda: {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": f"marking-definition--{UUID}",
            "created": "2022-10-01T00:00:00.000Z",
            "definition_type": "tlp",
            "definition": {"tlp": "clear"},
        },
        ["legacy TLP definition_type 'tlp' cannot express TLP:CLEAR", TLP_IDS["clear"]],
    ),
    "legacy TLP definition_type for amber+strict": (
        lambda: {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": f"marking-definition--{UUID}",
            "created": "2022-10-01T00:00:00.000Z",
            "definition_type": "tlp",
            "definition": {"tlp": "amber+strict"},
        },
        ["cannot express TLP:AMBER+STRICT"],
    ),
    "TLP 1.0 id carrying another definition": (
        lambda: {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": TLP1_IDS["white"],
            "created": "2017-01-20T00:00:00.000Z",
            "definition_type": "statement",
            "definition": {"statement": "anything goes"},
        },
        ["TLP definition wrong", "'white'"],
    ),
    "hashed identifier value not hex": (
        lambda: changed("mdx-hashed-identifier", value="z" * 64),
        ["property 'value'", "64 lowercase hex characters"],
    ),
    "hashed identifier value in uppercase hex": (
        lambda: changed("mdx-hashed-identifier", value="D5" * 32),
        ["property 'value'", "lowercase hex"],
    ),
    "unkeyed sha256 of an email": (
        lambda: changed("mdx-hashed-identifier", scheme="sha256"),
        ["'scheme'", "only allowed for identifier_type 'api-key'"],
    ),
    "hmac without key_id": (lambda: changed("mdx-hashed-identifier", key_id=...), ["'key_id' is required"]),
    "15 LSH bands": (
        lambda: changed("mdx-prompt-signature", lsh_bands=BANDS[:15]),
        ["'lsh_bands'", "exactly 16", "got 15"],
    ),
    "LSH band key with the wrong band number": (
        lambda: changed("mdx-prompt-signature", lsh_bands=[BANDS[1]] + BANDS[1:]),
        ["'lsh_bands'", "item 0"],
    ),
    "minhash value outside uint32": (
        lambda: changed(
            "mdx-prompt-signature", minhash=[2**32] + example("mdx-prompt-signature")["minhash"][1:]
        ),
        ["property 'minhash'"],
    ),
    "card_iin of 4 digits": (
        lambda: changed("mdx-payment-fingerprint", card_iin="4242"),
        ["property 'card_iin'", "6-8 digit"],
    ),
    "iat_histogram of 15 floats": (
        lambda: changed("mdx-timing-fingerprint", iat_histogram=[1 / 15] * 15),
        ["'iat_histogram'", "exactly 16"],
    ),
    "hour_of_day_histogram of 16 floats": (
        lambda: changed("mdx-timing-fingerprint", hour_of_day_histogram=[1 / 16] * 16),
        ["'hour_of_day_histogram'", "exactly 24"],
    ),
    "account_created not truncated to the day": (
        lambda: changed("mdx-ai-account", account_created="2026-09-14T10:11:12Z"),
        ["'account_created'", "truncated to the day"],
    ),
    "account ref to the wrong SCO type": (
        lambda: changed("mdx-ai-account", payment_refs=[example("mdx-hashed-identifier")["id"]]),
        ["property 'payment_refs'", "mdx-payment-fingerprint"],
    ),
    "mdx SCO without its extension entry": (
        lambda: changed("mdx-hashed-identifier", extensions=...),
        ["must declare its extension definition", EXTENSION_IDS["mdx-hashed-identifier"]],
    ),
    "ip context with an unknown proxy_type": (
        lambda: with_ip_context(proxy_type="satellite"),
        ["proxy_type", "'satellite'", "mdx-ip-context"],
    ),
    "ip context last_seen before first_seen": (
        lambda: with_ip_context(first_seen="2026-10-02T00:00:00Z", last_seen="2026-10-01T00:00:00Z"),
        ["'last_seen' must not be earlier than 'first_seen'"],
    ),
    "indicator matching extension on a campaign": (
        lambda: changed(
            "campaign",
            extensions={
                EXTENSION_IDS["mdx-indicator-matching"]: {"extension_type": "toplevel-property-extension"}
            },
            mdx_indicator_kind="composite",
        ),
        ["mdx-indicator-matching", "applies only to indicator"],
    ),
    "unknown mdx_indicator_kind": (
        lambda: changed("indicator", mdx_indicator_kind="vibes"),
        ["property 'mdx_indicator_kind'", "'vibes'"],
    ),
    "unknown mdx_action_hint": (
        lambda: changed("indicator", mdx_action_hint="ban"),
        ["property 'mdx_action_hint'", "'ban'"],
    ),
    "mdx_min_accounts of 0": (
        lambda: changed("indicator", mdx_min_accounts=0),
        ["property 'mdx_min_accounts'", "minimum value is 1"],
    ),
    "mdx_match that is not a dict": (
        lambda: changed("indicator", mdx_match=["jaccard_min", 0.8]),
        ["property 'mdx_match'"],
    ),
    "unknown mdx_count_bucket": (
        lambda: changed("sighting", mdx_count_bucket="3"),
        ["property 'mdx_count_bucket'", "'3'"],
    ),
    "unknown mdx_review_state": (
        lambda: changed("sighting", mdx_review_state="done"),
        ["property 'mdx_review_state'", "'done'"],
    ),
    "mdx property without its extension declared": (
        lambda: changed("indicator", extensions=...),
        ["unknown propert", "mdx_"],
    ),
    "number sent as a string": (
        lambda: changed("indicator", confidence="70"),
        ["property 'confidence'", "must be a JSON integer"],
    ),
    "boolean sent as a string": (
        lambda: changed("mdx-payment-fingerprint", is_virtual="true"),
        ["property 'is_virtual'", "JSON boolean"],
    ),
    "null value": (
        lambda: changed("indicator", description=None),
        ["property 'description'", "must not be null"],
    ),
    "empty list": (
        lambda: changed("indicator", indicator_types=[]),
        ["property 'indicator_types'", "empty list"],
    ),
    "nested bundle": (
        lambda: {"type": "bundle", "id": f"bundle--{UUID}", "objects": []},
        ["a bundle cannot be an object"],
    ),
}


@pytest.mark.parametrize(("build", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid_object_is_rejected_with_a_message_naming_the_problem(build, expected):
    obj = build()
    with pytest.raises(StixError) as caught:
        parse_object(obj, index=7)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message, message
    # The message starts by naming the object.
    assert message.startswith((f"{obj['type']} {obj.get('id')}: ", "object #7: "))
    assert caught.value.index == 7


def test_an_object_without_a_usable_id_is_named_by_its_index():
    obj = changed("indicator", id=["not", "a", "string"])
    with pytest.raises(StixError, match=r"^object #3: ") as caught:
        parse_object(obj, index=3)
    assert caught.value.prop == "id"
    assert caught.value.object_id is None


def test_error_attributes_name_the_object_and_property():
    obj = changed("mdx-hashed-identifier", value="ABC")
    with pytest.raises(StixError) as caught:
        parse_object(obj)
    assert caught.value.object_id == obj["id"]
    assert caught.value.prop == "value"
    assert caught.value.index is None


@pytest.mark.parametrize(
    "obj",
    [
        {"id": f"indicator--{UUID}"},
        {"type": ["indicator"], "id": f"indicator--{UUID}"},
        changed("indicator", spec_version=2.1),
        changed("indicator", pattern=42),
        changed("indicator", extensions="nope"),
        changed("indicator", created={"when": "now"}),
        changed("indicator", external_references=[{"source_name": "x", "hashes": {"SHA-256": 12}}]),
        changed("indicator", granular_markings=[{"selectors": ["name"]}]),
        changed("mdx-timing-fingerprint", iat_histogram=["x"] * 16),
        changed("mdx-prompt-signature", lsh_bands=[1] * 16),
        changed("ipv4-addr", extensions={EXTENSION_IDS["mdx-ip-context"]: "residential"}),
        {**copy.deepcopy(TLP_MARKING_OBJECTS[0]), "id": 7},
    ],
    ids=lambda o: canonical_json(o)[:60],
)
def test_malformed_values_never_escape_as_raw_exceptions(obj):
    with pytest.raises(StixError):
        parse_object(obj, index=0)


def test_non_object_is_rejected():
    with pytest.raises(StixError, match=r"^object #2: must be a JSON object, got an array"):
        parse_object(["indicator"], index=2)  # type: ignore[arg-type]


# --- JSON and envelopes ----------------------------------------------------------------------


@pytest.mark.parametrize("text", [b"{", "not json", b"\xff\xfe\x00", '{"confidence": NaN}', "[Infinity]"])
def test_non_json_text_is_rejected(text):
    with pytest.raises(StixError, match=r"^not valid JSON: "):
        load_json(text)


def test_envelope_shapes_are_accepted():
    objects = [example("identity")]
    assert objects_from_envelope({"type": "bundle", "id": f"bundle--{UUID}", "objects": objects}) == objects
    assert objects_from_envelope({"objects": objects, "more": True, "next": "abc"}) == objects
    assert objects_from_envelope(objects) == objects
    assert objects_from_envelope({"more": False}) == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"type": "bundle", "id": f"bundle--{UUID}", "objects": {"0": {}}}, "'objects' must be a JSON array"),
        ({"objects": "[]"}, "'objects' must be a JSON array, got a string"),
        ([example("identity"), 42], "object #1: must be a JSON object, got a number"),
        (
            {"type": "bundle", "id": f"bundle--{UUID}", "objects": [None]},
            "object #0: must be a JSON object, got null",
        ),
        (example("identity"), "got a single 'identity' object"),
        ({"type": "bundle", "id": "bundle--x", "objects": []}, "'id' must be 'bundle--<UUID>'"),
        ({"items": []}, "no 'objects' member"),
        ("objects", "got a string"),
    ],
)
def test_bad_envelopes_are_rejected(payload, expected):
    with pytest.raises(StixError) as caught:
        objects_from_envelope(payload)
    assert expected in str(caught.value)


def test_parse_objects_keeps_order_and_reports_each_failure_with_its_index():
    good_a, good_b = example("identity"), example("campaign")
    bad = changed("indicator", pattern="[broken")
    accepted, errors = parse_objects([good_a, bad, good_b, 5])  # type: ignore[list-item]
    assert accepted == [good_a, good_b]
    assert [e.index for e in errors] == [1, 3]
    assert str(errors[0]).startswith(f"indicator {bad['id']}: property 'pattern'")


# --- TLP -------------------------------------------------------------------------------------


def test_tlp_1_0_refs_are_mapped_to_tlp_2_0():
    obj = changed(
        "note",
        object_marking_refs=[TLP1_IDS["white"]],
        granular_markings=[{"marking_ref": TLP1_IDS["red"], "selectors": ["content"]}],
    )
    sent = copy.deepcopy(obj)
    result = parse_object(obj)
    assert result["object_marking_refs"] == [TLP_IDS["clear"]]
    assert result["granular_markings"] == [{"marking_ref": TLP_IDS["red"], "selectors": ["content"]}]
    assert obj == sent  # mapping works on a copy
    assert {k: v for k, v in result.items() if "marking" not in k} == {
        k: v for k, v in sent.items() if "marking" not in k
    }


def test_tlp_1_0_and_its_2_0_twin_collapse_into_one_ref():
    obj = changed("note", object_marking_refs=[TLP1_IDS["amber"], TLP_IDS["amber"]])
    assert parse_object(obj)["object_marking_refs"] == [TLP_IDS["amber"]]


def test_tlp1_to_tlp2_mapping_follows_domain_policy():
    assert {
        TLP1_IDS["white"]: TLP_IDS["clear"],
        TLP1_IDS["green"]: TLP_IDS["green"],
        TLP1_IDS["amber"]: TLP_IDS["amber"],
        TLP1_IDS["red"]: TLP_IDS["red"],
    } == extensions.TLP1_TO_TLP2


def test_the_official_tlp_1_0_definition_is_still_accepted():
    white = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP1_IDS["white"],
        "created": "2017-01-20T00:00:00.000Z",
        "name": "TLP:WHITE",
        "definition_type": "tlp",
        "definition": {"tlp": "white"},
    }
    assert parse_object(copy.deepcopy(white)) == white


def test_tlp_level_picks_the_most_restrictive_marking():
    refs = [TLP_IDS["green"], TLP_IDS["amber+strict"], TLP_IDS["amber"]]
    assert tlp_level({"object_marking_refs": refs}) == "amber+strict"
    assert tlp_level({"object_marking_refs": [TLP1_IDS["white"], TLP1_IDS["red"]]}) == "red"
    assert tlp_level({"object_marking_refs": [TLP1_IDS["white"]]}) == "clear"
    statement = f"marking-definition--{UUID}"
    assert tlp_level({"object_marking_refs": [statement, TLP_IDS["green"]]}) == "green"
    assert tlp_level({"object_marking_refs": [statement]}) is None
    assert tlp_level({"type": "ipv4-addr"}) is None


def test_tlp_order_and_rank():
    assert TLP_ORDER == ("clear", "green", "amber", "amber+strict", "red")
    assert [tlp_rank(level) for level in TLP_ORDER] == [0, 1, 2, 3, 4]
    assert extensions.TLP_LEVEL_BY_ID[TLP_IDS["amber+strict"]] == "amber+strict"
    with pytest.raises(ValueError, match="unknown TLP level 'white'"):
        tlp_rank("white")


# --- canonical_json --------------------------------------------------------------------------


def test_canonical_json_is_stable_and_compact():
    a = {"b": [2, {"y": 1, "x": "é"}], "a": 1}
    b = {"a": 1, "b": [2, {"x": "é", "y": 1}]}
    assert canonical_json(a) == canonical_json(b) == '{"a":1,"b":[2,{"x":"é","y":1}]}'
    obj = example("indicator")
    assert canonical_json(obj) == canonical_json(parse_object(obj))
    assert json.loads(canonical_json(obj)) == obj


def test_extension_ids_are_the_normative_ones():
    assert EXTENSION_IDS["mdx-ai-account"] == "extension-definition--744616a0-5fc2-4979-8aba-20cd64b1763e"
    assert (
        EXTENSION_IDS["mdx-sighting-context"] == "extension-definition--326ca5be-47c7-41f1-bf75-faa80bf68915"
    )
    definitions = {o["name"]: o["id"] for o in EXAMPLES["objects"] if o["type"] == "extension-definition"}
    assert definitions == EXTENSION_IDS


def test_the_boundary_modules_do_not_import_django():
    code = "import sys, indicators.stix; assert not any(m.split('.')[0] == 'django' for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
