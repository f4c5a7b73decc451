"""Helpers for the TAXII 2.1 conformance tests: media types, error shape, timestamps, a raw client."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
ROOT = "/taxii2/api/"


# --- Small pure helpers --------------------------------------------------------------------------


def ts(value: str) -> datetime:
    """A TAXII/STIX timestamp (RFC 3339, 'Z', any sub-second precision) as an aware datetime.

    Comparing datetimes, not strings, keeps the tests independent of how many fraction digits the
    server prints; microseconds are kept (TAXII 2.1 §3.4.1 paging needs them).
    """
    assert isinstance(value, str) and value.endswith("Z"), value
    head, _, fraction = value[:-1].partition(".")
    text = head + ("." + (fraction + "000000")[:6] if fraction else "")
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def media_type_is_taxii21(content_type: str | None) -> bool:
    """TAXII 2.1 §1.6.8.1 / §3.1: application/taxii+json;version=2.1 (whitespace, a charset tolerated)."""
    if not content_type:
        return False
    parts = [p.strip().lower() for p in content_type.split(";")]
    params = {p.replace(" ", "") for p in parts[1:]}
    return (
        parts[0] == "application/taxii+json"
        and "version=2.1" in params
        and all(p == "version=2.1" or p.startswith("charset=") for p in params)
    )


def assert_taxii_response(response, status: int):
    """Status and TAXII 2.1 content type; returns the parsed body (or None when the body is empty)."""
    body = response.content
    assert response.status_code == status, (response.status_code, body[:600])
    content_type = response.headers.get("Content-Type")
    assert media_type_is_taxii21(content_type), f"Content-Type {content_type!r} on a {status} response"
    return json.loads(body) if body else None


def assert_taxii_error(response, status: int | tuple[int, ...]) -> dict:
    """An error response: TAXII 2.1 §3.6 error message with a title and http_status as a string."""
    allowed = status if isinstance(status, tuple) else (status,)
    assert response.status_code in allowed, (response.status_code, response.content[:600])
    body = assert_taxii_response(response, response.status_code)
    assert isinstance(body, dict), body
    assert isinstance(body.get("title"), str) and body["title"].strip(), body
    assert body.get("http_status") == str(response.status_code), body
    assert isinstance(body.get("description"), str) and body["description"].strip(), body
    return body


def objects_of(body: dict) -> list[dict]:
    """TAXII 2.1 §3.7: ``objects`` is optional in an envelope; absent means none."""
    return body.get("objects", [])


def ids_of(body: dict) -> list[str]:
    return [o["id"] for o in objects_of(body)]


def bearer(plaintext: str) -> str:
    return f"Bearer {plaintext}"


def basic(plaintext: str, user: str = "anyone") -> str:
    return "Basic " + base64.b64encode(f"{user}:{plaintext}".encode()).decode()


# --- The cast ------------------------------------------------------------------------------------


@dataclass
class Member:
    org: object
    token: object
    plaintext: str
    extra: dict = field(default_factory=dict)

    @property
    def auth(self) -> str:
        return bearer(self.plaintext)


@dataclass
class Cast:
    feed: object
    lab: Member
    lab_ro: Member
    cloud: Member
    reader: Member
    writer: Member
    outsider: Member
    admin: Member

    @property
    def feed_url(self) -> str:
        return f"{ROOT}collections/{self.feed.pk}/"

    @property
    def objects_url(self) -> str:
        return f"{self.feed_url}objects/"

    @property
    def manifest_url(self) -> str:
        return f"{self.feed_url}manifest/"

    def object_url(self, stix_id: str) -> str:
        return f"{self.objects_url}{stix_id}/"

    def versions_url(self, stix_id: str) -> str:
        return f"{self.objects_url}{stix_id}/versions/"


# --- Raw HTTP through Django's test client -------------------------------------------------------


_MISSING = object()


class RawTaxii:
    """Requests as a TAXII client would send them; every header is explicit and overridable."""

    def __init__(self, client):
        self.client = client

    @staticmethod
    def _headers(auth, accept) -> dict:
        headers = {}
        if auth is not None:
            headers["HTTP_AUTHORIZATION"] = auth.auth if isinstance(auth, Member) else auth
        if accept is not _MISSING and accept is not None:
            headers["HTTP_ACCEPT"] = accept
        return headers

    def get(self, path: str, auth=None, *, accept=TAXII, params: dict | None = None, **extra):
        return self.client.get(path, data=params or {}, **self._headers(auth, accept), **extra)

    def post(
        self,
        path: str,
        auth=None,
        *,
        body=None,
        raw: bytes | str | None = None,
        content_type: str = TAXII,
        accept=TAXII,
        **extra,
    ):
        payload = raw if raw is not None else json.dumps(body)
        return self.client.post(
            path, data=payload, content_type=content_type, **self._headers(auth, accept), **extra
        )

    def delete(self, path: str, auth=None, *, accept=TAXII, **extra):
        return self.client.delete(path, **self._headers(auth, accept), **extra)

    def method(self, verb: str, path: str, auth=None, *, accept=TAXII, body=b"{}", content_type=TAXII):
        call = getattr(self.client, verb.lower())
        if verb.upper() in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return call(path, **self._headers(auth, accept))
        return call(path, data=body, content_type=content_type, **self._headers(auth, accept))

    # Convenience: the usual successful calls, already checked.

    def ok(self, path: str, auth, *, params: dict | None = None) -> dict:
        return assert_taxii_response(self.get(path, auth, params=params), 200)

    def submit(self, cast: Cast, objects: list[dict], auth=None) -> dict:
        response = self.post(cast.objects_url, auth or cast.lab, body={"objects": objects})
        return assert_taxii_response(response, 202)


def envelope_pages(taxii: RawTaxii, path: str, auth, params: dict | None = None, key: str = "objects"):
    """Follow ``next`` until ``more`` is false; returns the list of page bodies (TAXII 2.1 §3.4.2)."""
    params = dict(params or {})
    pages = []
    for _ in range(10_000):
        body = taxii.ok(path, auth, params=params)
        pages.append(body)
        if not body.get("more", False):
            return pages
        assert body.get("next"), "more is true but there is no next"
        params["next"] = body["next"]
    raise AssertionError("paging did not terminate")


def new_id(kind: str = "indicator") -> str:
    return f"{kind}--{uuid.uuid4()}"
