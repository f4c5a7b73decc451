"""add_subscription and poll_subscriptions: success and failure paths; failures write nothing."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import CommandError, call_command

from sharing.models import AuditEvent, Organisation, Subscription
from tests.stix_builders import make_indicator

REMOTE_COLLECTION = "4b0e6c1d-9a7f-4e2b-8c3d-1f2a3b4c5d6e"


def run(*args, stdin: str | None = None, monkeypatch=None) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip().splitlines()


def counts() -> tuple[int, ...]:
    return Subscription.objects.count(), Organisation.objects.count(), AuditEvent.objects.count()


def add_args(fed_cast, **overrides) -> list[str]:
    options = {
        "--name": "Upstream Hub",
        "--discovery-url": "https://hub.example.org/taxii2/",
        "--collection": REMOTE_COLLECTION,
        "--token": "the-remote-token",
        "--into": str(fed_cast.mirror.pk),
    }
    options.update(overrides)
    args = ["add_subscription"]
    for key, value in options.items():
        if value is None:
            continue
        args += [key] if value is True else [key, value]
    return args


@pytest.mark.django_db
class TestAddSubscription:
    def test_adds_a_trusted_subscription_and_prints_its_id_last(self, fed_cast):
        lines = run(*add_args(fed_cast, **{"--interval": "120"}))
        sub = Subscription.objects.get()
        assert lines[-1] == str(sub.pk)
        assert "Upstream Hub" in lines[0]
        assert sub.discovery_url == "https://hub.example.org/taxii2/" and sub.api_root_url == ""
        assert str(sub.remote_collection_id) == REMOTE_COLLECTION and sub.collection == fed_cast.mirror
        assert sub.poll_interval == 120 and not sub.review and sub.is_active and sub.next_poll_at
        assert sub.organisation.name == "Upstream Hub" and sub.organisation.kind == "hub"
        assert sub.organisation.is_trusted
        assert sub.token_ciphertext and "the-remote-token" not in sub.token_ciphertext
        event = AuditEvent.objects.get(action="subscription.create")
        assert "the-remote-token" not in str(event.details)

    def test_review_and_token_env(self, fed_cast):
        run(*add_args(fed_cast, **{"--token": None, "--token-env": "UPSTREAM_TOKEN", "--review": True}))
        sub = Subscription.objects.get()
        assert sub.review and not sub.organisation.is_trusted
        assert sub.token_env == "UPSTREAM_TOKEN" and sub.token_ciphertext == ""

    def test_discovery_url_gets_a_trailing_slash(self, fed_cast):
        run(*add_args(fed_cast, **{"--discovery-url": "http://127.0.0.1:9/taxii2"}))
        assert Subscription.objects.get().discovery_url == "http://127.0.0.1:9/taxii2/"

    @pytest.mark.parametrize(
        "overrides, message",
        [
            ({"--discovery-url": "ftp://hub.example.org/taxii2/"}, "must be an http:// or https:// URL"),
            ({"--discovery-url": "hub.example.org/taxii2/"}, "must be an http:// or https:// URL"),
            ({"--discovery-url": "https://user:pw@hub.example.org/"}, "must not contain credentials"),
            ({"--discovery-url": "https://hub.example.org:99999/"}, "bad discovery URL"),
            ({"--collection": "not-a-uuid"}, "must be a UUID"),
            ({"--into": str(uuid.uuid4())}, "no local collection"),
            ({"--into": "nope"}, "no local collection"),
            ({"--token-env": "UPSTREAM_TOKEN"}, "exactly one of a token"),
            ({"--token": None}, "exactly one of a token"),
            ({"--token": None, "--token-env": "1BAD-NAME"}, "not a valid environment variable name"),
            ({"--token": "two words"}, "without spaces"),
            ({"--interval": "1"}, "poll interval must be between"),
            ({"--name": "  "}, "must not be empty"),
        ],
    )
    def test_rejects_bad_input_and_writes_nothing(self, fed_cast, overrides, message):
        before = counts()
        with pytest.raises(CommandError, match=message) as caught:
            run(*add_args(fed_cast, **overrides))
        assert "\n" not in str(caught.value)
        assert counts() == before

    def test_rejects_a_duplicate_name_and_writes_nothing(self, fed_cast):
        run(*add_args(fed_cast))
        before = counts()
        with pytest.raises(CommandError, match="a subscription named 'upstream hub' already exists"):
            run(*add_args(fed_cast, **{"--name": "upstream hub"}))
        assert counts() == before

    def test_rejects_a_name_taken_by_an_organisation_and_writes_nothing(self, fed_cast):
        before = counts()
        with pytest.raises(CommandError, match="an organisation named 'Member Cloud' already exists"):
            run(*add_args(fed_cast, **{"--name": "Member Cloud"}))
        assert counts() == before

    def test_a_token_can_be_read_from_standard_input(self, fed_cast, monkeypatch):
        from sharing.federation import subscription_token

        monkeypatch.setattr("sys.stdin", io.StringIO("piped-token\n"))
        run(*add_args(fed_cast, **{"--token": "-"}))
        assert subscription_token(Subscription.objects.get()) == "piped-token"


@pytest.mark.slow
class TestPollSubscriptions:
    def test_polls_every_active_subscription_and_prints_what_arrived(self, fed):
        fed.publish([make_indicator(), make_indicator()])
        fed.subscribe()
        paused = fed.subscribe(name="Paused Hub")
        Subscription.objects.filter(pk=paused.pk).update(is_active=False)

        lines = run("poll_subscriptions")

        assert lines == [
            "Upstream Hub: 2 object(s) arrived in 1 page(s) (2 published, 0 pending review, 0 rejected)"
        ]
        assert run("poll_subscriptions", "--name", "upstream hub")[0].startswith("Upstream Hub: 0 object(s)")
        assert run("poll_subscriptions", "--name", "Paused Hub")[0].startswith("Paused Hub: 2 object(s)")

    def test_a_failed_poll_prints_the_error_and_exits_non_zero(self, fed):
        fed.subscribe(token="mdx_00000000_" + "A" * 43)
        out = io.StringIO()
        with pytest.raises(CommandError, match="1 subscription poll"):
            call_command("poll_subscriptions", "--name", "Upstream Hub", stdout=out)
        assert "Upstream Hub: failed: the remote rejected the token (HTTP 401)" in out.getvalue()

    def test_an_unknown_name_is_an_error(self, fed):
        with pytest.raises(CommandError, match="no subscription named 'Nope'"):
            run("poll_subscriptions", "--name", "Nope")

    def test_a_subscription_being_polled_elsewhere_is_skipped(self, fed):
        from sharing.federation import subscription_claim

        sub = fed.subscribe()
        assert subscription_claim(sub.pk, force=True) is not None
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("poll_subscriptions", "--name", "Upstream Hub", stdout=out)
        assert "Upstream Hub: skipped: another poll holds this subscription" in out.getvalue()
