"""Liveness checks for /healthz: the database, and the Celery broker when one is configured."""

from __future__ import annotations

from django.conf import settings
from django.db import connection


def check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the message says why
        return False, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return True, connection.vendor


def check_broker() -> tuple[bool, str] | None:
    """None when tasks run in process (no broker configured)."""
    if not settings.CELERY_BROKER_CONFIGURED:
        return None
    from config.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises many transport-specific errors
        return False, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return True, "reachable"
