"""TAXII 2.1 media types (§1.6.8, §3.1), authentication, and every error code (§3.6), over raw HTTP.

Every response, errors included, is ``application/taxii+json;version=2.1``; every error body is
a TAXII error message with a ``title`` and ``http_status`` as a string.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.sharing.taxii.helpers import (
    ROOT,
    TAXII,
    assert_taxii_error,
    assert_taxii_response,
    basic,
    bearer,
    new_id,
)
from tests.stix_builders import make_indicator

# --- Discovery and API root ----------------------------------------------------------------------


def test_discovery_names_the_one_api_root_as_default(taxii, cast):
    body = assert_taxii_response(taxii.get("/taxii2/", cast.lab), 200)
    assert isinstance(body["title"], str) and body["title"]
    roots = body["api_roots"]
    assert len(roots) == 1 and roots[0].endswith("/taxii2/api/")
    assert body["default"] == roots[0]


def test_api_root_advertises_taxii_21_and_its_max_content_length(taxii, cast, settings):
    body = assert_taxii_response(taxii.get(ROOT, cast.lab), 200)
    assert body["title"]
    assert TAXII in body["versions"]
    assert body["max_content_length"] == settings.TAXII_MAX_CONTENT_LENGTH

    settings.TAXII_MAX_CONTENT_LENGTH = 4096
    assert assert_taxii_response(taxii.get(ROOT, cast.lab), 200)["max_content_length"] == 4096


@pytest.mark.parametrize(
    "path",
    [
        "/taxii2/nope/",
        "/taxii2/nope/collections/",
        f"/taxii2/nope/status/{uuid.uuid4()}/",
    ],
)
def test_unknown_api_root_is_a_taxii_404(taxii, cast, path):
    assert_taxii_error(taxii.get(path, cast.lab), 404)


# --- Accept and Content-Type ---------------------------------------------------------------------

ACCEPTABLE = [
    TAXII,
    "application/taxii+json",
    "application/taxii+json; version=2.1",
    "*/*",
    None,
    "application/json, application/taxii+json;version=2.1",  # RFC 7231 §5.3.2: one acceptable range suffices
]
UNACCEPTABLE = [
    "application/json",
    "application/taxii+json;version=2.0",
    "text/html",
    "application/stix+json;version=2.1",
    "application/vnd.oasis.taxii+json; version=2.0",
]


@pytest.mark.parametrize("accept", ACCEPTABLE)
def test_taxii_accept_headers_and_a_missing_accept_are_served(taxii, cast, accept):
    for path in ("/taxii2/", ROOT, f"{ROOT}collections/", cast.feed_url, cast.objects_url, cast.manifest_url):
        assert_taxii_response(taxii.get(path, cast.lab, accept=accept), 200)


@pytest.mark.parametrize("accept", UNACCEPTABLE)
def test_other_accept_headers_get_406_in_taxii_form(taxii, cast, accept):
    for path in ("/taxii2/", ROOT, f"{ROOT}collections/", cast.objects_url, cast.manifest_url):
        assert_taxii_error(taxii.get(path, cast.lab, accept=accept), 406)


def test_posting_with_an_unacceptable_accept_gets_406(taxii, cast):
    response = taxii.post(
        cast.objects_url, cast.lab, body={"objects": [make_indicator()]}, accept="application/json"
    )
    assert_taxii_error(response, 406)


@pytest.mark.parametrize(
    "content_type", [TAXII, "application/taxii+json", "application/taxii+json; version=2.1"]
)
def test_taxii_content_types_are_accepted_for_posts(taxii, cast, content_type):
    response = taxii.post(
        cast.objects_url, cast.lab, body={"objects": [make_indicator()]}, content_type=content_type
    )
    assert assert_taxii_response(response, 202)["success_count"] == 1


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "application/taxii+json;version=2.0",
        "application/stix+json;version=2.1",
        "application/x-www-form-urlencoded",
    ],
)
def test_other_content_types_get_415(taxii, cast, content_type):
    obj = make_indicator()
    response = taxii.post(cast.objects_url, cast.lab, body={"objects": [obj]}, content_type=content_type)
    assert_taxii_error(response, 415)
    assert taxii.get(cast.object_url(obj["id"]), cast.lab).status_code == 404  # nothing was stored


# --- Authentication ------------------------------------------------------------------------------


def _revoked(cast):
    from sharing.services import token_issue, token_revoke

    token, plaintext = token_issue(organisation=cast.lab.org, scopes="read,write")
    token_revoke(token=token)
    return bearer(plaintext)


def _expired(cast):
    from sharing.models import ApiToken
    from sharing.services import token_issue

    token, plaintext = token_issue(organisation=cast.lab.org, scopes="read,write", expires_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return bearer(plaintext)


def _elsewhere(cast):
    from sharing.services import token_issue

    # The test client connects from 127.0.0.1.
    _, plaintext = token_issue(organisation=cast.lab.org, scopes="read,write", allowed_cidrs="192.0.2.0/24")
    return bearer(plaintext)


BAD_CREDENTIALS = {
    "none": lambda cast: None,
    "unknown token": lambda cast: bearer("mdx_00000000_" + "A" * 43),
    "garbage token": lambda cast: bearer("hunter2"),
    "wrong secret": lambda cast: bearer(
        cast.lab.plaintext[:-1] + ("A" if cast.lab.plaintext[-1] != "A" else "B")
    ),
    "basic with a wrong password": lambda cast: basic("not-the-token"),
    "unknown scheme": lambda cast: f"Digest {cast.lab.plaintext}",
    "bearer without a token": lambda cast: "Bearer",
    "basic that is not base64": lambda cast: "Basic !!not-base64!!",
    "basic without a colon": lambda cast: "Basic " + base64.b64encode(b"no-colon").decode(),
    "revoked": _revoked,
    "expired": _expired,
    "outside the CIDR allowlist": _elsewhere,
}


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_missing_or_rejected_credentials_get_401_with_www_authenticate(taxii, cast, credentials):
    auth = credentials(cast)
    responses = [
        taxii.get(f"{ROOT}collections/", auth),
        taxii.get(cast.objects_url, auth),
        taxii.get(cast.manifest_url, auth),
        taxii.post(cast.objects_url, auth, body={"objects": [make_indicator()]}),
        taxii.get(f"{ROOT}status/{uuid.uuid4()}/", auth),
    ]
    for response in responses:
        assert_taxii_error(response, 401)
        assert response.headers.get("WWW-Authenticate", "").strip(), (
            "401 without WWW-Authenticate (RFC 7235 §3.1)"
        )


@pytest.mark.parametrize(
    "scheme", ["Bearer", "Token", "Basic", "Basic with an empty user name", "lower-case bearer"]
)
def test_the_token_is_accepted_as_bearer_token_or_basic_password(taxii, cast, scheme):
    plaintext = cast.lab.plaintext
    auth = {
        "Bearer": f"Bearer {plaintext}",
        "Token": f"Token {plaintext}",
        "Basic": basic(plaintext, "taxii-client"),
        "Basic with an empty user name": basic(plaintext, ""),
        "lower-case bearer": f"bearer {plaintext}",  # RFC 7235 §2.1: schemes are case-insensitive
    }[scheme]
    body = assert_taxii_response(taxii.get(f"{ROOT}collections/", auth), 200)
    assert str(cast.feed.pk) in [c["id"] for c in body["collections"]]


def test_a_token_used_inside_its_cidr_allowlist_is_accepted(taxii, cast):
    from sharing.services import token_issue

    _, plaintext = token_issue(
        organisation=cast.lab.org, scopes="read", allowed_cidrs="127.0.0.0/8,192.0.2.0/24"
    )
    assert_taxii_response(taxii.get(cast.objects_url, bearer(plaintext)), 200)


def test_a_spoofed_x_forwarded_for_does_not_satisfy_the_cidr_allowlist(taxii, cast):
    from sharing.services import token_issue

    _, plaintext = token_issue(organisation=cast.lab.org, scopes="read", allowed_cidrs="192.0.2.0/24")
    response = taxii.get(cast.objects_url, bearer(plaintext), HTTP_X_FORWARDED_FOR="192.0.2.5")
    assert_taxii_error(response, 401)


def test_x_forwarded_for_from_a_trusted_proxy_satisfies_the_cidr_allowlist(taxii, cast, settings):
    import ipaddress

    from sharing.services import token_issue

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.0/8")]
    _, plaintext = token_issue(organisation=cast.lab.org, scopes="read", allowed_cidrs="192.0.2.0/24")
    response = taxii.get(cast.objects_url, bearer(plaintext), HTTP_X_FORWARDED_FOR="192.0.2.5")
    assert_taxii_response(response, 200)


# --- 404 -----------------------------------------------------------------------------------------


def test_unknown_and_malformed_collection_ids_are_404_on_every_endpoint(taxii, cast):
    some_id = new_id()
    for collection_id in (str(uuid.uuid4()), "not-a-uuid"):
        base = f"{ROOT}collections/{collection_id}/"
        for path in (
            base,
            f"{base}objects/",
            f"{base}manifest/",
            f"{base}objects/{some_id}/",
            f"{base}objects/{some_id}/versions/",
        ):
            assert_taxii_error(taxii.get(path, cast.lab), 404)
        assert_taxii_error(taxii.post(f"{base}objects/", cast.lab, body={"objects": [make_indicator()]}), 404)
        assert_taxii_error(taxii.delete(f"{base}objects/{some_id}/", cast.lab), 404)


def test_an_object_not_in_the_collection_is_404(taxii, cast, publish):
    publish([make_indicator()])
    missing = new_id()
    assert_taxii_error(taxii.get(cast.object_url(missing), cast.lab), 404)
    assert_taxii_error(taxii.get(cast.versions_url(missing), cast.lab), 404)
    assert_taxii_error(taxii.delete(cast.object_url(missing), cast.lab), 404)


@pytest.mark.parametrize("status_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_unknown_or_malformed_status_ids_are_404(taxii, cast, status_id):
    assert_taxii_error(taxii.get(f"{ROOT}status/{status_id}/", cast.lab), 404)


# --- 405 -----------------------------------------------------------------------------------------

WRONG_METHODS = [
    ("PUT", "objects"),
    ("PATCH", "objects"),
    ("POST", "manifest"),
    ("DELETE", "manifest"),
    ("PUT", "object"),
    ("POST", "object"),
    ("POST", "versions"),
    ("DELETE", "versions"),
    ("POST", "collection"),
    ("DELETE", "collection"),
    ("POST", "collections"),
    ("POST", "discovery"),
    ("POST", "root"),
    ("POST", "status"),
]


@pytest.mark.parametrize("verb, where", WRONG_METHODS, ids=[f"{v} {w}" for v, w in WRONG_METHODS])
def test_wrong_methods_get_405_in_taxii_form(taxii, cast, publish, verb, where):
    obj = make_indicator()
    publish([obj])
    status = taxii.submit(cast, [make_indicator()])
    path = {
        "objects": cast.objects_url,
        "manifest": cast.manifest_url,
        "object": cast.object_url(obj["id"]),
        "versions": cast.versions_url(obj["id"]),
        "collection": cast.feed_url,
        "collections": f"{ROOT}collections/",
        "discovery": "/taxii2/",
        "root": ROOT,
        "status": f"{ROOT}status/{status['id']}/",
    }[where]
    response = taxii.method(verb, path, cast.lab, body=json.dumps({"objects": [make_indicator()]}))
    assert_taxii_error(response, 405)
    # RFC 7231 §6.5.5: a 405 MUST say which methods are allowed.
    allowed = {m.strip().upper() for m in response.headers.get("Allow", "").split(",")}
    assert "GET" in allowed and verb not in allowed


# --- 413 -----------------------------------------------------------------------------------------


def _envelope_of_exact_size(size: int) -> bytes:
    obj = make_indicator(name="x")
    base = len(json.dumps({"objects": [obj]}).encode())
    obj["name"] = "x" * (1 + size - base)
    raw = json.dumps({"objects": [obj]}).encode()
    assert len(raw) == size
    return raw


def test_a_body_of_exactly_max_content_length_is_accepted_and_one_byte_more_is_413(taxii, cast, settings):
    settings.TAXII_MAX_CONTENT_LENGTH = 2048
    assert assert_taxii_response(taxii.get(ROOT, cast.lab), 200)["max_content_length"] == 2048

    fits = taxii.post(cast.objects_url, cast.lab, raw=_envelope_of_exact_size(2048))
    assert assert_taxii_response(fits, 202)["success_count"] == 1

    too_big = _envelope_of_exact_size(2049)
    assert_taxii_error(taxii.post(cast.objects_url, cast.lab, raw=too_big), 413)
    stored_id = json.loads(too_big)["objects"][0]["id"]
    assert taxii.get(cast.object_url(stored_id), cast.lab).status_code == 404


def test_max_content_length_counts_octets_not_characters(taxii, cast, settings):
    settings.TAXII_MAX_CONTENT_LENGTH = 2048
    obj = make_indicator(name="")
    room = 2048 - len(json.dumps({"objects": [obj]}, ensure_ascii=False).encode())
    obj["name"] = "東" * (room // 3 + 1)  # 3 octets each: fewer characters than the limit, more octets
    raw = json.dumps({"objects": [obj]}, ensure_ascii=False)
    assert len(raw) <= 2048 < len(raw.encode())
    assert_taxii_error(taxii.post(cast.objects_url, cast.lab, raw=raw.encode()), 413)


def test_a_body_over_the_default_ten_mib_is_413(taxii, cast, settings):
    assert settings.TAXII_MAX_CONTENT_LENGTH == 10 * 1024 * 1024
    # Bigger than Django's own upload limit too: that must not turn into a 400.
    raw = _envelope_of_exact_size(10 * 1024 * 1024 + 64 * 1024)
    assert_taxii_error(taxii.post(cast.objects_url, cast.lab, raw=raw), 413)


# --- 400 / 422: bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ['{"objects": [', "", "not json", '{"objects": [}]}', "{'objects': []}"],
    ids=["truncated", "empty", "text", "broken", "single quotes"],
)
def test_malformed_json_is_400(taxii, cast, raw):
    assert_taxii_error(taxii.post(cast.objects_url, cast.lab, raw=raw), 400)


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        json.dumps([make_indicator()]),
        '{"foo": 1}',
        '{"objects": {}}',
        '{"objects": "indicator"}',
        '{"objects": null}',
        '"objects"',
        "42",
        "null",
        json.dumps(make_indicator()),
    ],
    ids=[
        "empty list",
        "list of objects",
        "no objects member",
        "objects is a dict",
        "objects is a string",
        "objects is null",
        "a string",
        "a number",
        "null",
        "a bare STIX object",
    ],
)
def test_json_that_is_not_an_envelope_is_400_or_422(taxii, cast, raw):
    # TAXII 2.1 §5.5: the request body is an envelope; §5.5 lists both 400 and 422.
    assert_taxii_error(taxii.post(cast.objects_url, cast.lab, raw=raw), (400, 422))
    assert taxii.ok(cast.objects_url, cast.lab).get("objects", []) == []


# --- 400: query parameters -----------------------------------------------------------------------

BAD_PARAMS = [
    {"limit": "0"},
    {"limit": "-1"},
    {"limit": "abc"},
    {"limit": "1.5"},
    {"added_after": "yesterday"},
    {"added_after": "2026-13-45T00:00:00Z"},
    {"match[version]": "newest"},
    {"next": "garbage"},
]
ENDPOINTS = ["objects", "manifest", "object", "versions"]


# TAXII 2.1 §5.8: the versions endpoint has no match[version] filter.
BAD_CASES = [(e, p) for e in ENDPOINTS for p in BAD_PARAMS if not (e == "versions" and "match[version]" in p)]


@pytest.mark.parametrize(
    "endpoint, params",
    BAD_CASES,
    ids=[f"{e} " + "&".join(f"{k}={v}" for k, v in p.items()) for e, p in BAD_CASES],
)
def test_malformed_filters_and_paging_parameters_are_400(taxii, cast, publish, endpoint, params):
    obj = make_indicator()
    publish([obj])
    path = {
        "objects": cast.objects_url,
        "manifest": cast.manifest_url,
        "object": cast.object_url(obj["id"]),
        "versions": cast.versions_url(obj["id"]),
    }[endpoint]
    assert_taxii_error(taxii.get(path, cast.lab, params=params), 400)
