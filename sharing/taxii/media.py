"""TAXII 2.1 media types (§1.6.8) and the one Accept / Content-Type policy of every endpoint."""

from __future__ import annotations

import json

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
_TAXII_BASE = "application/taxii+json"


def is_taxii_21(media_range: str, *, allow_wildcards: bool) -> bool:
    """True for application/taxii+json with no version or version 2.1 (and */* when allowed)."""
    base, params = parse_header_parameters(media_range)
    base = base.strip().lower()
    if allow_wildcards and base in ("*/*", "application/*"):
        return True
    if base != _TAXII_BASE:
        return False
    version = params.get("version")
    return version is None or version.strip() == "2.1"


class TaxiiRenderer(BaseRenderer):
    media_type = TAXII_MEDIA_TYPE
    format = "taxii"
    charset = None  # TAXII §1.6.8 names the media type without a charset parameter

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


class TaxiiParser(BaseParser):
    """Hands the raw body to the view, which validates it as a TAXII envelope itself.

    Reads at most one byte more than max_content_length, so a body sent without a
    Content-Length (chunked) cannot exhaust memory; the view answers 413 for it.
    """

    media_type = _TAXII_BASE

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        if stream is None:
            return b""
        return stream.read(settings.TAXII_MAX_CONTENT_LENGTH + 1)


class TaxiiNegotiation(BaseContentNegotiation):
    """Accept: application/taxii+json with version 2.1 or none, */*, or no header at all."""

    def select_parser(self, request, parsers):
        content_type = request.content_type or ""
        if is_taxii_21(content_type, allow_wildcards=False):
            return parsers[0]
        return None  # DRF answers 415 Unsupported Media Type

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "").strip()
        if not accept:
            return renderers[0], TAXII_MEDIA_TYPE
        for media_range in accept.split(","):
            _, params = parse_header_parameters(media_range)
            try:
                quality = float(params.get("q", "1"))
            except ValueError:
                quality = 0.0
            if quality > 0 and is_taxii_21(media_range, allow_wildcards=True):
                return renderers[0], TAXII_MEDIA_TYPE
        raise exceptions.NotAcceptable(f"this server speaks {TAXII_MEDIA_TYPE}; Accept was {accept!r}")
