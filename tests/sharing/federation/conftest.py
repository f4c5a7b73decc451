"""Federation cast: one database, two roles.

* The REMOTE hub is this app under pytest-django's live server: collection ``upstream``
  ("Upstream feed"), published into by Alice Lab, readable by ``Member Cloud`` whose read token
  the subscription uses.
* The LOCAL side is the same database: collection ``mirror`` ("Local mirror"), into which the
  subscription's own organisation (created by subscription_add, kind hub) submits what it pulls.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest


@dataclass
class Fed:
    upstream: object
    mirror: object
    publisher: object
    member: object
    member_token: str
    discovery_url: str = ""

    def publish(self, objects: list[dict]) -> list:
        from sharing.services import objects_publish

        stored, problems = objects_publish(
            collection=self.upstream, objects=objects, submitted_by=self.publisher
        )
        assert not problems, problems
        return stored

    def subscribe(self, name: str = "Upstream Hub", **kwargs):
        from sharing.federation import subscription_add

        kwargs.setdefault("token", self.member_token)
        return subscription_add(
            name=name,
            discovery_url=self.discovery_url,
            collection_id=str(self.upstream.pk),
            into=str(self.mirror.pk),
            **kwargs,
        )


@pytest.fixture
def fast_retries(settings, monkeypatch):
    """No real sleeping between in-process retries; the waits asked for are recorded."""
    from sharing import federation

    waits: list[float] = []
    monkeypatch.setattr(federation, "_sleep", waits.append)
    settings.MDX_FEDERATION_RETRIES = 2
    settings.MDX_FEDERATION_RETRY_DELAY = 0.01
    return waits


@pytest.fixture
def fed_cast(alice_lab, make_org) -> Fed:
    from sharing.services import GrantSpec, collection_create, token_issue

    member = make_org("Member Cloud", "cloud")
    upstream = collection_create(
        title="Upstream feed",
        grants=[GrantSpec(alice_lab, True, True), GrantSpec(member, True, False)],
        tlp_ceiling="red",
    )
    mirror = collection_create(
        title="Local mirror", grants=[GrantSpec(member, True, False)], tlp_ceiling="red"
    )
    _, plaintext = token_issue(organisation=member, scopes="read")
    return Fed(upstream=upstream, mirror=mirror, publisher=alice_lab, member=member, member_token=plaintext)


@pytest.fixture
def fed(live_server, fed_cast, fast_retries) -> Fed:
    fed_cast.discovery_url = f"{live_server.url}/taxii2/"
    yield fed_cast
    # Let the live server's request threads finish closing their (shared, in-memory SQLite)
    # connections, so none is still closing when the session ends and the sharing is undone.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(
        "process_request_thread" in t.name for t in threading.enumerate()
    ):
        time.sleep(0.01)
