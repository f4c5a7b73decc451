"""Misbehaving remotes (a tiny HTTP server on 127.0.0.1): every failure is recorded, none raises."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from sharing.models import CollectionEntry, Subscription
from sharing.tasks import poll_subscription
from tests.stix_builders import make_indicator

TAXII = "application/taxii+json;version=2.1"
COLLECTION_ID = "9f1c7a8e-2b6d-4c1e-8f3a-5d2e1b0c4a77"
INDICATOR = make_indicator(name="From a fake remote", pattern="[ipv4-addr:value = '192.0.2.77']")


class FakeRemote:
    """Answers according to ``mode``; ``ok`` is a minimal but valid TAXII 2.1 server."""

    def __init__(self):
        self.mode = "ok"
        self.retry_after = "120"
        self.failures_before_ok = 0
        self.delay = 0.0
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                fake.requests.append(self.path)
                try:
                    status, headers, body = fake.answer(self.path, len(fake.requests))
                    if fake.mode == "timeout":
                        time.sleep(fake.delay)
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def discovery_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/taxii2/"

    def answer(self, path: str, count: int) -> tuple[int, dict, bytes]:
        taxii = {"Content-Type": TAXII}
        mode = self.mode
        if mode == "flaky":
            mode = "429" if count <= self.failures_before_ok else "ok"
        if mode == "500":
            return 500, taxii, json.dumps({"title": "database unavailable"}).encode()
        if mode == "429":
            return (
                429,
                {**taxii, "Retry-After": self.retry_after},
                json.dumps({"title": "slow down"}).encode(),
            )
        if mode == "badjson":
            return 200, taxii, b'{"title": "half a resou'
        if mode == "html":
            return 200, {"Content-Type": "text/html"}, b"<html><body>Welcome to nginx!</body></html>"
        if mode == "list":
            return 200, taxii, b"[]"
        if mode == "401":
            return 401, {**taxii, "WWW-Authenticate": 'Basic realm="x"'}, json.dumps({"title": "no"}).encode()
        root = self.discovery_url + "api/"
        if path.startswith("/taxii2/api/collections/") and "/objects/" in path:
            headers = {**taxii, "X-TAXII-Date-Added-First": "2026-11-23T10:00:00.000000Z"}
            headers["X-TAXII-Date-Added-Last"] = "2026-11-23T10:00:00.000000Z"
            return 200, headers, json.dumps({"more": False, "objects": [INDICATOR]}).encode()
        if path.startswith("/taxii2/api/collections/"):
            resource = {"id": COLLECTION_ID, "title": "Fake", "can_read": True, "can_write": False}
            return 200, taxii, json.dumps(resource).encode()
        if path.startswith("/taxii2/api/"):
            return 200, taxii, json.dumps({"title": "Fake root", "versions": [TAXII]}).encode()
        return 200, taxii, json.dumps({"title": "Fake", "default": root, "api_roots": [root]}).encode()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def remote():
    fake = FakeRemote()
    yield fake
    fake.close()


@pytest.fixture
def sub(fed_cast, remote, fast_retries):
    from sharing.federation import subscription_add

    return subscription_add(
        name="Fake Remote",
        discovery_url=remote.discovery_url,
        collection_id=COLLECTION_ID,
        into=str(fed_cast.mirror.pk),
        token="sekrit-remote-token",
        interval=60,
    )


def run_task(sub) -> dict:
    result = poll_subscription(sub.pk, force=True)  # the task body, as a worker runs it
    sub.refresh_from_db()
    return result


FAILURES = [
    # mode, words in last_error, requests made (1 + MDX_FEDERATION_RETRIES=2 when transient)
    ("500", "remote server error (HTTP 500): database unavailable", 3),
    ("badjson", "malformed JSON", 1),
    ("html", "not a TAXII 2.1 response", 1),
    ("list", "not a TAXII 2.1 resource", 1),
    ("401", "rejected the token (HTTP 401)", 1),
]


@pytest.mark.parametrize("mode, message, requests_made", FAILURES)
def test_a_failing_remote_is_recorded_and_backed_off_without_raising(
    sub, remote, mode, message, requests_made
):
    remote.mode = mode
    before = timezone.now()

    result = run_task(sub)

    assert result["ok"] is False and message in result["error"]
    assert message in sub.last_error and sub.last_error_at >= before
    assert sub.consecutive_failures == 1 and sub.last_success_at is None
    assert len(remote.requests) == requests_made
    assert sub.next_poll_at >= before + timedelta(seconds=60) and sub.lease_until is None

    run_task(sub)
    assert sub.consecutive_failures == 2
    assert sub.next_poll_at >= timezone.now() + timedelta(seconds=110)  # doubled: 120 s


def test_a_timeout_is_retried_then_recorded(sub, remote, settings):
    settings.MDX_FEDERATION_TIMEOUT = 0.2
    settings.MDX_FEDERATION_RETRIES = 1
    remote.mode, remote.delay = "timeout", 1.0
    started = time.monotonic()

    result = run_task(sub)

    assert time.monotonic() - started < 3
    assert result["ok"] is False and "timed out after 0.2 s" in sub.last_error
    assert len(remote.requests) == 2 and sub.consecutive_failures == 1


def test_a_refused_connection_is_recorded(sub, remote):
    remote.close()
    result = run_task(sub)
    assert result["ok"] is False and "cannot connect" in sub.last_error and sub.consecutive_failures == 1


def test_a_long_retry_after_is_not_slept_through_but_delays_the_next_poll(sub, remote, fast_retries):
    remote.mode, remote.retry_after = "429", "900"
    before = timezone.now()

    result = run_task(sub)

    assert result["ok"] is False and "rate limited by the remote (HTTP 429)" in sub.last_error
    assert len(remote.requests) == 1 and fast_retries == []
    assert sub.next_poll_at >= before + timedelta(seconds=900)


def test_a_short_retry_after_is_honoured_in_process_and_the_poll_succeeds(sub, remote, fast_retries):
    remote.mode, remote.retry_after, remote.failures_before_ok = "flaky", "2", 2

    result = run_task(sub)

    assert result["ok"] is True and result["objects"] == 1
    assert fast_retries == [2.0, 2.0]
    assert sub.consecutive_failures == 0 and sub.cursor_added_after == "2026-11-23T10:00:00.000000Z"
    assert CollectionEntry.objects.filter(collection=sub.collection, stix_id=INDICATOR["id"]).exists()


def test_success_after_failures_resets_the_failure_count_and_keeps_the_last_error(sub, remote):
    remote.mode = "500"
    run_task(sub)
    remote.mode = "ok"

    result = run_task(sub)

    assert result["ok"] is True and sub.consecutive_failures == 0
    assert "HTTP 500" in sub.last_error and sub.last_success_at > sub.last_error_at
    assert sub.api_root_url == remote.discovery_url + "api/"


def test_an_unexpected_error_is_recorded_not_raised(sub, remote, monkeypatch):
    from sharing import federation

    def boom(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(federation, "submission_create", boom)
    result = run_task(sub)
    assert result["ok"] is False and "unexpected error: RuntimeError: disk on fire" in sub.last_error
    assert Subscription.objects.get(pk=sub.pk).cursor_added_after == ""
