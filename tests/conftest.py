"""Shared fixtures: a small cast of organisations and tokens, and auto-skips for real services."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("django"):
        return  # pure-Python suites (matching, hashing, stix) may run with -p no:django
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    has_redis = bool(os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL"))
    for item in items:
        if "requires_postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL pointing at PostgreSQL"))
        if "requires_redis" in item.keywords and not has_redis:
            item.add_marker(pytest.mark.skip(reason="needs REDIS_URL / CELERY_BROKER_URL"))


@pytest.fixture(autouse=True)
def _no_token_guessing_limit(request):
    """Many tests present bad tokens on purpose from one address; the per-address limit on
    rejected tokens is tested on its own (tests/sharing/api/test_token_guessing.py)."""
    if request.config.pluginmanager.hasplugin("django"):
        request.getfixturevalue("settings").MDX_AUTH_FAILURE_LIMIT = 0


def load_bundle(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
def make_org(db):
    from sharing.services import organisation_create

    def make(name: str, kind: str = "lab", trusted: bool = False):
        return organisation_create(name=name, kind=kind, trusted=trusted)

    return make


@pytest.fixture
def alice_lab(make_org):
    """A trusted lab: publishes without review."""
    return make_org("Alice Lab", "lab", trusted=True)


@pytest.fixture
def bob_cloud(make_org):
    """A cloud provider whose submissions wait for review."""
    return make_org("Bob Cloud", "cloud")


@pytest.fixture
def charlie_outsider(make_org):
    """An organisation with no grants at all."""
    return make_org("Charlie Outsider", "authority")


@pytest.fixture
def eager_tasks(monkeypatch):
    """Run Celery tasks in process for this test, even when CI configures a real broker."""
    from config.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    monkeypatch.setattr(app.conf, "task_eager_propagates", True)
