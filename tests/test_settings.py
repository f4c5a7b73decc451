"""Settings fail loudly on malformed environment values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = {"SECRET_KEY": "x", "DEBUG": "false"}


def boot(**env) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}
    }
    clean.update(env)
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean | {"DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
    )


def test_defaults_boot_on_sqlite():
    result = boot(**BASE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_database_url_selects_postgresql():
    result = boot(**BASE, DATABASE_URL="postgres://u@127.0.0.1:5432/db")
    assert result.stdout.strip() == "django.db.backends.postgresql"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DEBUG": "false"}, "SECRET_KEY is required"),
        ({**BASE, "DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({**BASE, "DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL must be a URL"),
        ({**BASE, "CELERY_BROKER_URL": "127.0.0.1:6379"}, "CELERY_BROKER_URL must be a URL"),
        ({**BASE, "REDIS_URL": "http://cache"}, "REDIS_URL must be a URL"),
        ({**BASE, "TAXII_MAX_PAGE_SIZE": "lots"}, "TAXII_MAX_PAGE_SIZE must be an integer"),
        ({**BASE, "TAXII_MAX_PAGE_SIZE": "0"}, "TAXII_MAX_PAGE_SIZE must be at least 1"),
        ({**BASE, "MDX_UNMARKED_TLP": "white"}, "MDX_UNMARKED_TLP"),
        ({**BASE, "TRUSTED_PROXIES": "10.0.0.0/8,nope"}, "TRUSTED_PROXIES"),
    ],
)
def test_malformed_values_fail_at_start(env, message):
    result = boot(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
