"""hash_identifier TYPE VALUE [--region GB] [--key-id K]: the hash partners share (DOMAIN.md §3.3)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from indicators import hashing
from indicators.hashing import HashingError
from indicators.management.base import MdxCommand

TYPES = tuple(hashing.NORMALIZATIONS)  # the identifier types, api-key included


class Command(MdxCommand):
    help = (
        "Normalise and hash one identifier as this node does on import. The lowercase hex is "
        "alone on the last line. api-key uses unkeyed SHA-256; every other type HMAC-SHA256 "
        "under a key epoch of this node's keyring."
    )

    def add_arguments(self, parser):
        parser.add_argument("identifier_type", choices=TYPES, metavar="TYPE", help=", ".join(TYPES))
        parser.add_argument("value")
        parser.add_argument("--region", help="default region for a phone number, e.g. GB")
        parser.add_argument("--key-id", help="key epoch to hash under (default: the keyring's current)")

    def handle(self, *args, **options):
        # Pure computation: no database, so not MdxCommand's transaction.
        return self.run(**options)

    def run(self, *, identifier_type: str, value: str, region: str | None, key_id: str | None, **_):
        if region and identifier_type != "phone":
            raise CommandError("--region only applies to phone")
        try:
            if identifier_type == "api-key":
                if key_id:
                    raise CommandError("api-key is hashed with unkeyed SHA-256: --key-id does not apply")
                self.stdout.write("api-key (sha256):")
                self.stdout.write(hashing.api_key_fingerprint(value))
                return
            keyring = settings.MDX_KEYRING
            if keyring is None:
                raise CommandError("this node has no keyring: set MDX_KEYRING or MDX_KEYRING_FILE")
            key = keyring.key(key_id)
            digest = hashing.hash_identifier(identifier_type, value, key=key, region=region)
        except HashingError as exc:
            raise CommandError(str(exc)) from None
        normalization = hashing.NORMALIZATIONS[identifier_type]
        self.stdout.write(
            f"{identifier_type} ({normalization}, hmac-sha256, key {key_id or keyring.current}):"
        )
        self.stdout.write(digest)
