"""DRF authentication with organisation API tokens (Token, Bearer, or Basic with the token as password)."""

from __future__ import annotations

import base64
import binascii

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


class ApiTokenAuthentication(BaseAuthentication):
    www_authenticate_realm = "MDX Hub"

    def authenticate(self, request):
        plaintext = presented_token(get_authorization_header(request))
        if plaintext is None:
            return None
        try:
            token = token_authenticate(plaintext=plaintext, ip_address=client_ip(request))
        except TokenRejected as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return TokenUser(token), token

    def authenticate_header(self, request) -> str:
        # Basic is offered too, so TAXII clients that only speak Basic know what to send.
        return f'Bearer realm="{self.www_authenticate_realm}", Basic realm="{self.www_authenticate_realm}"'
