"""The STIX boundary: untrusted JSON in, stix2-validated plain dicts out (no stix2 objects leak)."""

from __future__ import annotations

import copy
import functools
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import stix2
import stix2.v21.sdo
from stix2.base import _STIXBase
from stix2.exceptions import (
    ExtraPropertiesError,
    InvalidObjRefError,
    InvalidValueError,
    MissingPropertiesError,
    PropertyPresenceError,
    TLPMarkingDefinitionError,
)
from stix2.registry import class_for_type
from stix2patterns.validator import run_validator

from indicators.extensions import (
    EXTENSION_APPLIES_TO,
    EXTENSION_IDS,
    EXTENSION_NAME_BY_ID,
    MDX_SCO_TYPES,
    TLP1_IDS,
    TLP1_TO_TLP2,
    TLP_DEFINITIONS,
    TLP_EXTENSION_ID,
    TLP_IDS,
    TLP_LEVEL_BY_ID,
    TLP_ORDER,
    ExtensionConstraintError,
)
from indicators.matching.fastparse import parse_pattern_fast
from indicators.matching.parser import PatternError

__all__ = [
    "TLP_MARKING_OBJECTS",
    "StixError",
    "canonical_json",
    "load_json",
    "objects_from_envelope",
    "parse_object",
    "parse_objects",
    "tlp_level",
]

# Shipped in every bundle the hub emits (DOMAIN.md §1.3). A copy, so that a caller mutating
# it cannot change what parse_object compares incoming TLP definitions against.
TLP_MARKING_OBJECTS: list[dict] = [copy.deepcopy(TLP_DEFINITIONS[level]) for level in TLP_ORDER]

# STIX 2.1 §2.13: RFC 3339, UTC, "Z" suffix, optional fractional seconds.
_TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z")
_LABEL_TYPE_RE = re.compile(r"[a-z0-9-]{1,250}")
_LABEL_ID_RE = re.compile(r"[a-z0-9-]{1,250}--[^\s]{1,100}")
# stix2 constraint messages look like "<id> 'valid_until' must be greater than 'valid_from'".
_PROP_IN_MESSAGE_RE = re.compile(r"'([a-z0-9_]+)' must")
# Classes stix2 embeds in list properties, mapped to the property that holds them.
_EMBEDDED_IN = {
    "ExternalReference": "external_references",
    "KillChainPhase": "kill_chain_phases",
    "GranularMarking": "granular_markings",
}
_TLP_RANK = {level: rank for rank, level in enumerate(TLP_ORDER)}
_TLP1_COLOUR_BY_ID = {marking_id: colour for colour, marking_id in TLP1_IDS.items()}
_ENVELOPE_ONLY_KEYS = {"more", "next"}
# Required by STIX 2.1 (§3.2, §4.7 valid_from) but given defaults by stix2 3.0.2.
_REQUIRED_BUT_DEFAULTED = ("id", "created", "modified", "valid_from")


class StixError(ValueError):
    """Rejected input.

    message: human readable, names the object (type and id, or its index in the envelope) and
    the property. ``index``, ``object_id`` and ``prop`` carry the same facts for callers.
    """

    def __init__(
        self, message: str, *, index: int | None = None, object_id: str | None = None, prop: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.object_id = object_id
        self.prop = prop


class _Problem(Exception):
    """A rule broken inside parse_object; turned into a labelled StixError there."""

    def __init__(self, reason: str, prop: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.prop = prop


# --- Pattern validation ----------------------------------------------------------------------
# stix2 validates every indicator's pattern with the stix2-patterns ANTLR parser: ~0.6 ms, the
# larger part of an indicator's validation. For STIX 2.1 patterns we use our own parser instead
# (indicators/matching/fastparse.py, ~16 µs), which accepts exactly what stix2-patterns accepts
# apart from a few spec-backed stricter cases, tested against it on thousands of mutants. Other
# pattern versions keep the ANTLR validator. The patch applies to every stix2 user in the process.


@functools.lru_cache(maxsize=8192)
def _pattern_errors(pattern: str, stix_version: str) -> tuple[str, ...]:
    if stix_version != "2.1":
        return tuple(run_validator(pattern, stix_version))
    try:
        parse_pattern_fast(pattern)
    except (PatternError, RecursionError, OverflowError) as exc:
        return (str(exc),)
    return ()


stix2.v21.sdo.run_validator = _pattern_errors


# --- JSON and envelopes ----------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def load_json(raw: bytes | str) -> object:
    """Decode JSON text; NaN/Infinity (which Python accepts) are rejected. Raises StixError."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, TypeError, RecursionError) as exc:
        raise StixError(f"not valid JSON: {exc}") from None


def objects_from_envelope(payload: object) -> list[dict]:
    """The objects of a STIX bundle, a TAXII 2.1 envelope or a bare JSON list; StixError if none of those."""
    if isinstance(payload, list):
        objects: object = payload
    elif isinstance(payload, dict):
        kind = payload.get("type")
        if kind is not None and kind != "bundle":
            raise StixError(
                f"expected a STIX bundle, a TAXII envelope or a list of objects, got a single {kind!r} object"
            )
        if kind is None and "objects" not in payload and not payload.keys() <= _ENVELOPE_ONLY_KEYS:
            raise StixError(
                "expected a STIX bundle, a TAXII envelope or a list of objects: no 'objects' member"
            )
        if kind == "bundle" and not _is_bundle_id(payload.get("id")):
            raise StixError(f"bundle: 'id' must be 'bundle--<UUID>' (STIX 2.1 §8), got {payload.get('id')!r}")
        # STIX 2.1 §8 and TAXII 2.1 §3.7: "objects" is optional; absent means empty.
        objects = payload.get("objects", [])
        if not isinstance(objects, list):
            raise StixError(f"'objects' must be a JSON array, got {_json_kind(objects)}")
    else:
        raise StixError(
            f"expected a STIX bundle, a TAXII envelope or a list of objects, got {_json_kind(payload)}"
        )
    for index, item in enumerate(objects):
        if not isinstance(item, dict):
            raise StixError(f"object #{index}: must be a JSON object, got {_json_kind(item)}", index=index)
    return objects


def _is_bundle_id(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith("bundle--"):
        return False
    try:
        uuid.UUID(value[len("bundle--") :])
    except ValueError:
        return False
    return True


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --- One object ------------------------------------------------------------------------------


def parse_object(raw: dict, *, index: int | None = None) -> dict:
    """Validate one STIX 2.1 object; return it as a plain dict with TLP 1.0 refs mapped to TLP 2.0.

    Every failure, whichever stix2 exception caused it, is raised as a StixError whose message
    starts with "<type> <id>: " (or "object #<index>: ").
    """
    if not isinstance(raw, dict):
        where = f"object #{index}" if index is not None else "object"
        raise StixError(f"{where}: must be a JSON object, got {_json_kind(raw)}", index=index)
    label, object_id = _label(raw, index)
    cls: type | None = None
    try:
        cls = _check_basics(raw)
        if raw["type"] == "marking-definition":
            _check_marking_definition(raw)
        # _check_basics admits registered types only: stix2.parse returns unregistered new-sco
        # types as plain dicts, unvalidated.
        parsed = stix2.parse(raw, allow_custom=False, version="2.1")
        _check_json_values(raw, parsed, "")
        _check_created_modified(parsed)
        _check_extension_use(raw)
    except _Problem as problem:
        raise _error(label, problem.reason, problem.prop, index, object_id) from None
    except Exception as exc:  # the boundary: no stix2 (or other) exception may escape raw
        prop, reason = _describe(exc, cls)
        raise _error(label, reason, prop, index, object_id) from exc
    return _map_tlp1_refs(raw)


def parse_objects(raws: list[dict]) -> tuple[list[dict], list[StixError]]:
    """Validate many objects: (accepted objects, errors), each list in input order; errors carry ``index``."""
    accepted: list[dict] = []
    errors: list[StixError] = []
    for index, raw in enumerate(raws):
        try:
            accepted.append(parse_object(raw, index=index))
        except StixError as exc:
            errors.append(exc)
    return accepted, errors


def _label(raw: dict, index: int | None) -> tuple[str, str | None]:
    """How messages name the object: its type and id when plausible, else its index."""
    type_, id_ = raw.get("type"), raw.get("id")
    if (
        isinstance(type_, str)
        and isinstance(id_, str)
        and _LABEL_TYPE_RE.fullmatch(type_)
        and _LABEL_ID_RE.fullmatch(id_)
    ):
        return f"{type_} {id_}", id_
    return (f"object #{index}" if index is not None else "object"), None


def _error(label: str, reason: str, prop: str | None, index: int | None, object_id: str | None) -> StixError:
    where = f"property '{prop}': " if prop and f"'{prop}'" not in reason else ""
    return StixError(f"{label}: {where}{reason}", index=index, object_id=object_id, prop=prop)


def _check_basics(raw: dict) -> type:
    """Type, spec_version and the required properties stix2 would silently invent; returns the stix2 class."""
    type_ = raw.get("type")
    if type_ is None:
        raise _Problem("missing required property 'type'", "type")
    if not isinstance(type_, str):
        raise _Problem(f"'type' must be a string, got {_json_kind(type_)}", "type")
    if type_ == "bundle":
        raise _Problem("a bundle cannot be an object of an envelope or another bundle", "type")
    cls = class_for_type(type_, "2.1", "objects")
    is_sco = cls is None and class_for_type(type_, "2.1", "observables") is not None
    if cls is None and not is_sco:
        raise _Problem(
            f"unknown object type {type_!r}: only STIX 2.1 types and the registered mdx-* extension types "
            f"({', '.join(MDX_SCO_TYPES)}) are accepted",
            "type",
        )
    cls = cls or class_for_type(type_, "2.1", "observables")
    spec_version = raw.get("spec_version")
    # STIX 2.1 §3.2: spec_version is required on SDOs, SROs and meta objects, optional on SCOs.
    if spec_version is None and not is_sco:
        raise _Problem(
            "missing 'spec_version': STIX 2.1 objects must declare spec_version '2.1'", "spec_version"
        )
    if spec_version is not None and not isinstance(spec_version, str):
        raise _Problem(
            f"'spec_version' must be the string '2.1', got {_json_kind(spec_version)}", "spec_version"
        )
    if spec_version is not None and spec_version != "2.1":
        raise _Problem(
            f"spec_version {spec_version!r} is not supported; only STIX 2.1 ('2.1') is accepted",
            "spec_version",
        )
    # stix2 fills these with a fresh UUID or the current time when absent; the spec requires them.
    for name in _REQUIRED_BUT_DEFAULTED:
        if name in cls._properties and name not in raw:
            raise _Problem(f"missing required property '{name}'", name)
    if not isinstance(raw["id"], str):
        raise _Problem(f"'id' must be a string, got {_json_kind(raw['id'])}", "id")
    extensions = raw.get("extensions")
    if extensions is not None and not (
        isinstance(extensions, dict) and all(isinstance(entry, dict) for entry in extensions.values())
    ):
        raise _Problem("must be a JSON object mapping extension ids to JSON objects", "extensions")
    return cls


def _check_marking_definition(raw: dict) -> None:
    """TLP rules of DOMAIN.md §1.3 that stix2 3.0.2 does not enforce (or enforces with a poor message)."""
    marking_id = raw.get("id")
    if not isinstance(marking_id, str):
        return  # stix2 reports the malformed id
    level = TLP_LEVEL_BY_ID.get(marking_id)
    if level is not None:
        official = TLP_DEFINITIONS[level]
        if raw != official:
            differing = sorted(k for k in raw.keys() | official.keys() if raw.get(k) != official.get(k))
            raise _Problem(
                f"TLP definition wrong: {marking_id} is the official TLP:{level.upper()} (TLP 2.0) marking "
                f"and must equal the published definition; differs in {', '.join(differing)}",
                differing[0],
            )
        return
    extensions = raw.get("extensions")
    if isinstance(extensions, dict) and TLP_EXTENSION_ID in extensions:
        raise _Problem(
            "TLP definition wrong: a TLP 2.0 marking must use one of the official ids "
            f"({', '.join(TLP_IDS.values())}); refer to them instead of redefining TLP",
            "id",
        )
    definition = raw.get("definition")
    colour = definition.get("tlp") if isinstance(definition, dict) else None
    if marking_id in _TLP1_COLOUR_BY_ID:
        # stix2 checks 'created' of these; it does not check that the content is TLP at all.
        expected = _TLP1_COLOUR_BY_ID[marking_id]
        if raw.get("definition_type") != "tlp" or definition != {"tlp": expected}:
            raise _Problem(
                f"TLP definition wrong: {marking_id} is the TLP 1.0 '{expected}' marking and must have "
                f'definition_type \'tlp\' and definition {{"tlp": "{expected}"}}',
                "definition",
            )
        return
    if raw.get("definition_type") != "tlp":
        return
    if colour in ("clear", "amber+strict"):
        raise _Problem(
            f"legacy TLP definition_type 'tlp' cannot express TLP:{colour.upper()} (TLP 1.0 has no such "
            f"level); refer to the TLP 2.0 marking {TLP_IDS[colour]} instead",
            "definition",
        )
    if colour in TLP1_IDS:
        raise _Problem(
            f"TLP definition wrong: a TLP 1.0 '{colour}' marking must have the official id "
            f"{TLP1_IDS[colour]}",
            "id",
        )
    raise _Problem(f"TLP definition wrong: unknown TLP colour {colour!r}", "definition")


def _check_json_values(raw: Any, clean: Any, path: str) -> None:
    """Compare the input with stix2's cleaned values so that only well-typed JSON passes.

    stix2 coerces ("70" -> 70, "true" -> True, 5 -> "5") and silently drops null values and
    empty lists; since the caller gets the *input* back, those must be rejected here.
    """
    if raw is None:
        raise _Problem("must not be null (STIX has no null values)", path)
    if isinstance(clean, datetime):
        if not (isinstance(raw, str) and _TIMESTAMP_RE.fullmatch(raw)):
            raise _Problem(
                f"must be an RFC 3339 UTC timestamp such as 2026-01-31T12:00:00.000Z, got {raw!r}", path
            )
    elif isinstance(clean, bool):
        if not isinstance(raw, bool):
            raise _Problem(f"must be a JSON boolean, got {_json_kind(raw)}", path)
    elif isinstance(clean, int):
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise _Problem(f"must be a JSON integer, got {_json_kind(raw)}", path)
    elif isinstance(clean, float):
        if not isinstance(raw, (int, float)) or isinstance(raw, bool):
            raise _Problem(f"must be a JSON number, got {_json_kind(raw)}", path)
    elif isinstance(clean, str):
        if not isinstance(raw, str):
            raise _Problem(f"must be a JSON string, got {_json_kind(raw)}", path)
    elif isinstance(clean, list):
        if not isinstance(raw, list):
            raise _Problem(f"must be a JSON array, got {_json_kind(raw)}", path)
        for i, (raw_item, clean_item) in enumerate(zip(raw, clean, strict=True)):
            _check_json_values(raw_item, clean_item, f"{path}[{i}]")
    elif isinstance(clean, Mapping):
        if not isinstance(raw, dict):
            raise _Problem(f"must be a JSON object, got {_json_kind(raw)}", path)
        for key, value in raw.items():
            sub = f"{path}.{key}" if path else key
            if key in clean:
                _check_json_values(value, clean[key], sub)
            elif value is None:
                raise _Problem("must not be null (STIX has no null values)", sub)
            elif value == []:
                raise _Problem("must not be an empty list (STIX 2.1 forbids empty lists)", sub)
            else:
                # stix2 renamed the key, e.g. hash "sha256" -> "SHA-256".
                raise _Problem(
                    "is not spelled as STIX 2.1 defines it (e.g. hash names are 'SHA-256', 'MD5')", sub
                )


def _check_created_modified(parsed: _STIXBase) -> None:
    created, modified = parsed.get("created"), parsed.get("modified")
    # STIX 2.1 §3.2: modified MUST be later than or equal to created; stix2 does not check it.
    if created is not None and modified is not None and modified < created:
        raise _Problem("'modified' must not be earlier than 'created'", "modified")


def _check_extension_use(raw: dict) -> None:
    type_ = raw["type"]
    extensions = raw.get("extensions") or {}
    if type_ in MDX_SCO_TYPES and EXTENSION_IDS[type_] not in extensions:
        # STIX 2.1 §7.3: an extension-defined SCO names its definition; stix2 would add it silently.
        raise _Problem(
            f"must declare its extension definition: extensions.{EXTENSION_IDS[type_]} = "
            '{"extension_type": "new-sco"}',
            "extensions",
        )
    for ext_id in extensions:
        name = EXTENSION_NAME_BY_ID.get(ext_id)
        if name is None:
            continue
        allowed = EXTENSION_APPLIES_TO.get(name, (name,))
        if type_ not in allowed:
            raise _Problem(f"extension {name} ({ext_id}) applies only to {', '.join(allowed)}", "extensions")


def _describe(exc: Exception, top_cls: type | None) -> tuple[str | None, str]:
    """(property, reason) for any exception raised while stix2 validated an object."""
    if isinstance(exc, (InvalidValueError, InvalidObjRefError)):
        prop, reason = exc.prop_name, exc.reason
        cause = exc.__cause__
        if isinstance(cause, ExtensionConstraintError) and prop == "extensions":
            # A rule of a property extension (e.g. mdx-ip-context): point inside the extension.
            return f"extensions.{EXTENSION_IDS[cause.extension]}.{cause.prop}", str(cause)
        nested_cls = exc.cls if isinstance(exc.cls, type) else type(exc.cls)
        if top_cls is not None and nested_cls is not top_cls:
            ext_id = getattr(nested_cls, "_type", "")
            if ext_id in EXTENSION_NAME_BY_ID:
                prop = f"extensions.{ext_id}.{prop}"
                reason = f"{reason} ({EXTENSION_NAME_BY_ID[ext_id]} extension)"
            elif nested_cls.__name__ in _EMBEDDED_IN:
                prop = f"{_EMBEDDED_IN[nested_cls.__name__]}.{prop}"
        return prop, reason
    if isinstance(exc, ExtensionConstraintError):
        return exc.prop, str(exc)
    if isinstance(exc, MissingPropertiesError):
        names = ", ".join(f"'{name}'" for name in exc.properties)
        noun = "property" if len(exc.properties) == 1 else "properties"
        return exc.properties[0], f"missing required {noun} {names}"
    if isinstance(exc, ExtraPropertiesError):
        names = ", ".join(f"'{name}'" for name in exc.properties)
        noun = "property" if len(exc.properties) == 1 else "properties"
        return exc.properties[0], (
            f"unknown {noun} {names} (custom properties are not accepted; use a registered extension)"
        )
    if isinstance(exc, TLPMarkingDefinitionError):
        return None, f"TLP definition wrong: {exc}"
    if isinstance(exc, PropertyPresenceError):
        return None, str(exc)
    message = str(exc) or type(exc).__name__
    match = _PROP_IN_MESSAGE_RE.search(message)
    return (match.group(1) if match else None), message


def _map_tlp1_refs(raw: dict) -> dict:
    """A copy of ``raw`` with TLP 1.0 marking refs replaced by their TLP 2.0 ids (DOMAIN.md §1.3 policy)."""
    result = dict(raw)
    refs = raw.get("object_marking_refs")
    if refs and any(ref in TLP1_TO_TLP2 for ref in refs):
        result["object_marking_refs"] = _dedupe([TLP1_TO_TLP2.get(ref, ref) for ref in refs])
    granular = raw.get("granular_markings")
    if granular and any(m.get("marking_ref") in TLP1_TO_TLP2 for m in granular):
        result["granular_markings"] = [
            {**m, "marking_ref": TLP1_TO_TLP2[m["marking_ref"]]}
            if m.get("marking_ref") in TLP1_TO_TLP2
            else m
            for m in granular
        ]
    return result


def _dedupe(items: list[str]) -> list[str]:
    # A TLP 1.0 and its TLP 2.0 twin on one object would otherwise become a duplicate ref.
    return list(dict.fromkeys(items))


# --- Helpers for consumers -------------------------------------------------------------------


def canonical_json(obj: dict) -> str:
    """Stable text form: sorted keys, no whitespace, UTF-8 kept (what the store serves byte for byte)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tlp_level(obj: dict) -> str | None:
    """Most restrictive TLP 2.0 level in ``object_marking_refs`` (TLP 1.0 ids mapped); None if unmarked."""
    best: str | None = None
    for ref in obj.get("object_marking_refs") or ():
        level = TLP_LEVEL_BY_ID.get(TLP1_TO_TLP2.get(ref, ref))
        if level is not None and (best is None or _TLP_RANK[level] > _TLP_RANK[best]):
            best = level
    return best
