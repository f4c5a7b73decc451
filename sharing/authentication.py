"""DRF authentication with organisation API tokens (Token, Bearer, or Basic with the token as password)."""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from sharing.models import ApiToken
from sharing.net import client_ip
from sharing.services import TokenRejected, token_authenticate


class TokenUser:
    """The request.user of a token-authenticated request: the token's organisation."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, token: ApiToken):
        self.token = token
        self.organisation = token.organisation
        self.pk = None

    def __str__(self) -> str:
        return f"{self.organisation.name} ({self.token.prefix})"


def presented_token(header: bytes) -> str | None:
    """The token carried by an Authorization header, or None when there is none.

    Accepts ``Token <t>``, ``Bearer <t>``, and HTTP Basic with the token as the password
    (any user name), because taxii2-client and many TAXII tools only speak Basic.
    """
    parts = header.split()
    if not parts:
        return None
    scheme = parts[0].lower()
    if scheme not in (b"token", b"bearer", b"basic"):
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed("malformed Authorization header")
    if scheme == b"basic":
        try:
            decoded = base64.b64decode(parts[1], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("malformed Basic credentials") from None
        _, sep, password = decoded.partition(":")
        if not sep:
            raise exceptions.AuthenticationFailed("malformed Basic credentials")
        return password
    try:
        return parts[1].decode()
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("malformed token") from None


# Token guessing: rejected tokens are counted per client address in Django's cache (Redis in
# production, so every web worker shares the count). The per-token rate limit cannot see these
# requests — they never get a token — so without this an attacker could try tokens at full speed.
_FAILURES_KEY = "mdx:auth-failures:{address}"


def _failure_limit() -> tuple[int, int]:
    """(rejected tokens allowed per address, window in seconds); a limit of 0 turns it off."""
    return settings.MDX_AUTH_FAILURE_LIMIT, settings.MDX_AUTH_FAILURE_WINDOW_SECONDS


def _refuse_while_guessing(address: str | None) -> None:
    limit, window = _failure_limit()
    if limit and address and (cache.get(_FAILURES_KEY.format(address=address)) or 0) >= limit:
        raise exceptions.Throttled(
            wait=window, detail="too many rejected tokens from this address; try again later"
        )


def _count_failure(address: str | None) -> None:
    limit, window = _failure_limit()
    if not limit or not address:
        return
    key = _FAILURES_KEY.format(address=address)
    cache.add(key, 0, timeout=window)  # the window starts at the first failure
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)


class ApiTokenAuthentication(BaseAuthentication):
    www_authenticate_realm = "MDX Hub"

    def authenticate(self, request):
        header = get_authorization_header(request)
        if not header:
            return None
        address = client_ip(request)
        _refuse_while_guessing(address)
        try:
            plaintext = presented_token(header)
            if plaintext is None:
                return None
            token = token_authenticate(plaintext=plaintext, ip_address=address)
        except exceptions.AuthenticationFailed:
            _count_failure(address)
            raise
        except TokenRejected as exc:
            _count_failure(address)
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return TokenUser(token), token

    def authenticate_header(self, request) -> str:
        # Basic is offered too, so TAXII clients that only speak Basic know what to send.
        return f'Bearer realm="{self.www_authenticate_realm}", Basic realm="{self.www_authenticate_realm}"'
