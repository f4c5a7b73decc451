"""Two-node harness: node A is a separate hub process (gunicorn, its own database), reached from
node B (this test process and its live server) through a recording proxy on loopback.

The proxy keeps every request B sends to A — method, path and body — so a test can prove what
left node B, and can stop A in the middle of a conversation.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[3]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Node A: its own database and process ---------------------------------------------------------


def _node_a_database(tmp: Path) -> tuple[str, callable]:
    """A database for node A only: a fresh PostgreSQL database when the tests run on PostgreSQL,
    else an SQLite file. Returns (DATABASE_URL, drop)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{tmp / 'node-a.sqlite3'}", lambda: None
    import psycopg

    name = f"mdx_node_a_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return parts._replace(path=f"/{name}").geturl(), drop


SETUP_A = textwrap.dedent(
    """
    import json
    from django.contrib.auth import get_user_model
    from sharing.models import Membership
    from sharing.services import GrantSpec, collection_create, organisation_create, token_issue

    hub = organisation_create(name="Consortium Hub", kind="hub")
    lab = organisation_create(name="Review Lab", kind="lab")  # review policy: its objects wait
    cloud = organisation_create(name="Cloud B", kind="cloud")
    feed = collection_create(
        title="consortium-indicators",
        grants=[GrantSpec(lab, True, True), GrantSpec(cloud, True, False), GrantSpec(hub, True, True)],
    )
    inbox = collection_create(
        title="sightings-inbox", is_inbox=True,
        grants=[GrantSpec(lab, False, True), GrantSpec(cloud, False, True), GrantSpec(hub, True, True)],
    )
    reviewer = get_user_model().objects.create_user("reviewer-a", password="node-a-reviewer-pw")
    Membership.objects.create(user=reviewer, organisation=hub, role="reviewer")
    print(json.dumps({
        "feed": str(feed.pk), "inbox": str(inbox.pk),
        "lab_identity": lab.identity_id, "cloud_identity": cloud.identity_id,
        "lab_token": token_issue(organisation=lab, scopes="read,write")[1],
        "cloud_token": token_issue(organisation=cloud, scopes="read,write")[1],
    }))
    """
)


@dataclass
class NodeA:
    tmp: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    env: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    drop: callable = lambda: None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def setup(self) -> None:
        database_url, self.drop = _node_a_database(self.tmp)
        self.env = {
            key: value
            for key, value in os.environ.items()
            # No broker: node A runs its tasks in process, like the embedded default.
            if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        }
        self.env.update(
            DATABASE_URL=database_url,
            DJANGO_SETTINGS_MODULE="config.settings",
            SECRET_KEY="node-a-secret-key-for-tests-only-0123456789",
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            MDX_FEDERATION_RETRIES="0",
        )
        self._manage("migrate", "--noinput", "-v", "0")
        out = self._manage("shell", "-c", SETUP_A)
        self.info = json.loads(out.strip().splitlines()[-1])

    def _manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "1",
             "--threads", "4", "--timeout", "60", "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() kills the worker too
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"node A exited: {self.process.stderr.read().decode()[-3000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError("node A did not start within 60 s")

    def stop(self) -> None:
        """Stop node A's server at once (as a crash or an outage would)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # master and worker, like a machine crash
            self.process.wait(timeout=30)
        self.process = None

    def close(self) -> None:
        self.stop()
        self.drop()

    def rest(self, path: str, token: str) -> requests.Response:
        return requests.get(
            f"{self.url}/api/v1/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )


def web_session(base_url: str, username: str, password: str) -> requests.Session:
    """A browser-like signed-in session on a node's web UI (CSRF cookie + form post)."""
    session = requests.Session()
    session.get(f"{base_url}/", timeout=10)
    response = session.post(
        f"{base_url}/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base_url}/"},
        timeout=10,
    )
    assert response.status_code == 200 and "sessionid" in session.cookies, response.text[:500]
    return session


def web_post(session: requests.Session, url: str, data: dict) -> requests.Response:
    data = {**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]}
    return session.post(url, data=data, headers={"Referer": url}, timeout=30)


def hrefs(html: str, pattern: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]*' + pattern + r'[^"]*)"', html)]


# --- The recording proxy in front of node A --------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    body: bytes


class RecordingProxy:
    """Forwards HTTP requests to node A and records them. ``on_request`` (if set) is called with
    each recorded request before it is forwarded and may stop node A."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.requests: list[Recorded] = []
        self.on_request = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = Recorded(self.command, self.path, body)
                proxy.requests.append(record)
                if proxy.on_request is not None:
                    proxy.on_request(record)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    upstream = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=30)
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                except OSError:
                    # Node A is down: the client sees its connection dropped, as with a dead server.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            do_GET = do_POST = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
