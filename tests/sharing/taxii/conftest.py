"""The TAXII 2.1 conformance cast: one collection, organisations with every kind of access, and clients.

Cast (all on the collection ``feed`` unless said otherwise):

* ``lab``      – Alice Lab, trusted (publishes at once), grant read+write; tokens ``rw`` and ``ro``
                 (read scope only).
* ``cloud``    – Bob Cloud, review policy (submissions wait for review), grant read+write.
* ``reader``   – Dana Reader, grant read only.
* ``writer``   – Erin Writer, grant write only.
* ``outsider`` – Charlie Outsider, no grant anywhere.
* ``admin``    – Hub Operator, grant read+write, token with the ``admin`` scope.

Every token has the ``read,write`` scopes unless said otherwise, so a 403 is about the grant.
"""

from __future__ import annotations

import pytest

from tests.sharing.taxii.helpers import Cast, Member, RawTaxii


@pytest.fixture
def cast(db, alice_lab, bob_cloud, charlie_outsider, make_org) -> Cast:
    from sharing.services import GrantSpec, collection_create, token_issue

    reader_org = make_org("Dana Reader", "cloud")
    writer_org = make_org("Erin Writer", "lab")
    hub_org = make_org("Hub Operator", "hub")
    feed = collection_create(
        title="Distillation campaigns",
        description="Indicators of model-distillation campaigns",
        grants=[
            GrantSpec(alice_lab, True, True),
            GrantSpec(bob_cloud, True, True),
            GrantSpec(reader_org, True, False),
            GrantSpec(writer_org, False, True),
            GrantSpec(hub_org, True, True),
        ],
    )

    def member(org, scopes="read,write") -> Member:
        token, plaintext = token_issue(organisation=org, scopes=scopes)
        return Member(org, token, plaintext)

    return Cast(
        feed=feed,
        lab=member(alice_lab),
        lab_ro=member(alice_lab, "read"),
        cloud=member(bob_cloud),
        reader=member(reader_org),
        writer=member(writer_org),
        outsider=member(charlie_outsider),
        admin=member(hub_org, "admin"),
    )


@pytest.fixture
def publish(cast):
    """Publish validated objects straight into the feed (fast seeding, no HTTP)."""
    from sharing.services import objects_publish

    def do(objects: list[dict], *, by=None, collection=None):
        stored, errors = objects_publish(
            collection=collection or cast.feed, objects=objects, submitted_by=(by or cast.lab).org
        )
        assert not errors, errors
        return stored

    return do


@pytest.fixture
def taxii(client) -> RawTaxii:
    return RawTaxii(client)


# --- taxii2-client against a live server ---------------------------------------------------------


class Live:
    """taxii2-client endpoints for one cast member, against pytest-django's live server.

    taxii2-client speaks HTTP Basic only; the token is the password, the user name is ignored.
    """

    def __init__(self, base_url: str, cast: Cast):
        self.base = base_url.rstrip("/")
        self.cast = cast

    @property
    def discovery_url(self) -> str:
        return f"{self.base}/taxii2/"

    @property
    def root_url(self) -> str:
        return f"{self.base}/taxii2/api/"

    def collection_url(self, collection=None) -> str:
        return f"{self.root_url}collections/{(collection or self.cast.feed).pk}/"

    def server(self, who: Member | None = None):
        from taxii2client.v21 import Server

        return Server(self.discovery_url, user="taxii2-client", password=(who or self.cast.lab).plaintext)

    def api_root(self, who: Member | None = None):
        from taxii2client.v21 import ApiRoot

        return ApiRoot(self.root_url, user="taxii2-client", password=(who or self.cast.lab).plaintext)

    def collection(self, who: Member | None = None, collection=None):
        from taxii2client.v21 import Collection

        return Collection(
            self.collection_url(collection), user="taxii2-client", password=(who or self.cast.lab).plaintext
        )

    def raw_get(self, path_or_url: str, who: Member | None = None, params: dict | None = None):
        """A plain requests GET (for response headers, which taxii2-client does not expose)."""
        import requests

        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        return requests.get(
            url,
            params=params,
            timeout=30,
            headers={
                "Accept": "application/taxii+json;version=2.1",
                "Authorization": (who or self.cast.lab).auth,
            },
        )


@pytest.fixture
def live(live_server, cast) -> Live:
    return Live(live_server.url, cast)
