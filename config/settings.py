"""MDX Hub settings: one module, driven entirely by environment variables.

Nothing set gives the embedded default (SQLite file, eager Celery tasks, local-memory
cache) so ``make run`` works on a bare machine. DATABASE_URL, CELERY_BROKER_URL and
REDIS_URL switch on PostgreSQL, a Redis broker with real workers, and a Redis cache.
Malformed values raise ImproperlyConfigured at start-up rather than misbehaving later.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, schemes: set[str]) -> str:
    raw = env_str(name)
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ImproperlyConfigured(
            f"{name} must be a URL with scheme {' or '.join(sorted(schemes))}, got {raw!r}"
        )
    return raw


# --- Core -----------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG")
SECRET_KEY = env_str("SECRET_KEY") or ("insecure-dev-only-key-set-SECRET_KEY-in-production" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if urlsplit(_origin).scheme not in {"http", "https"}:
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS entries must start with http:// or https://: {_origin!r}"
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally, never from a CDN
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "indicators",
    "sharing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified()
    "sharing.web.middleware.SecondFactorMiddleware",  # asks for the TOTP code after the password
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: turns a lockout raised during sign-in into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "sharing.web.context.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------

DATABASE_URL = env_url("DATABASE_URL", {"postgres", "postgresql", "pgsql", "sqlite"})
SQLITE_PATH = Path(env_str("SQLITE_PATH") or BASE_DIR / "db.sqlite3")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            # Concurrent writers wait instead of failing with "database is locked", and
            # IMMEDIATE transactions serialise the date_added allocation (sharing.services).
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Celery --------------------------------------------------------------------------------

REDIS_URL = env_url("REDIS_URL", {"redis", "rediss", "unix"})
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mdx-hub"}}

CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", {"redis", "rediss", "amqp", "amqps", "memory"})
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_BROKER_CONFIGURED = not CELERY_TASK_ALWAYS_EAGER
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Run exactly one `celery -A config beat` per deployment.
CELERY_BEAT_SCHEDULE = {
    # Re-queue matching work a lost task left behind (tasks are idempotent).
    "mdx-matching-sweep": {"task": "indicators.tasks.sweep", "schedule": timedelta(minutes=5)},
    # Withdraw alerts whose indicators passed valid_until.
    "mdx-expire-indicators": {"task": "indicators.tasks.expire_indicators", "schedule": timedelta(hours=1)},
    # Hydra-cluster linking over the rolling window (DOMAIN.md §4.3, §4.5 score_and_cluster).
    "mdx-link-clusters": {"task": "indicators.tasks.link_clusters", "schedule": timedelta(hours=1)},
    # Hub: bring the relayed "sighted by >= N members" summaries up to date (a sweep; inbox posts
    # and indicator revisions also trigger it).
    "mdx-relay-feedback": {"task": "sharing.tasks.relay_feedback", "schedule": timedelta(minutes=15)},
    # Poll every due federation subscription.
    "mdx-poll-subscriptions": {
        "task": "sharing.tasks.poll_due_subscriptions",
        "schedule": timedelta(minutes=1),
    },
}

# --- Auth, i18n, static ---------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes must come first: it refuses a locked-out sign-in before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lockout after repeated failed sign-ins (django-axes). Counted per user name *and* client address,
# so an attacker cannot lock a real user out from elsewhere; a success resets the count.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "sharing.net.client_ip"  # X-Forwarded-For only from TRUSTED_PROXIES
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_VERBOSE = False
# Optional TOTP second factor (django-otp). A user with a confirmed device is always asked for the
# code after the password; with MDX_REQUIRE_ADMIN_OTP admins must enrol one before doing anything.
MDX_REQUIRE_ADMIN_OTP = env_bool("MDX_REQUIRE_ADMIN_OTP", False)
OTP_TOTP_ISSUER = env_str("MDX_NODE_NAME", "MDX Hub")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Serve assets straight from the apps' static folders, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
# HSTS is irreversible for browsers that saw it: the operator opts in once TLS is settled.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
USE_X_FORWARDED_HOST = False
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Django REST framework ------------------------------------------------------------------------

API_RATE_LIMIT = env_str("API_RATE_LIMIT", "1200/min")  # per token, shared through REDIS_URL when set
if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", API_RATE_LIMIT):
    raise ImproperlyConfigured(
        f"API_RATE_LIMIT must look like 1200/min (per second, minute, hour or day), got {API_RATE_LIMIT!r}"
    )

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["sharing.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {"token": API_RATE_LIMIT},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MDX Hub REST API",
    "DESCRIPTION": "Submissions, search and exports of model-distillation threat indicators.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- MDX Hub --------------------------------------------------------------------------------------

MDX_NODE_NAME = env_str("MDX_NODE_NAME", "MDX Hub")
# TLP assumed for objects that carry no TLP marking: the safe side, not CLEAR.
MDX_UNMARKED_TLP = env_str("MDX_UNMARKED_TLP", "amber").lower()
if MDX_UNMARKED_TLP not in {"clear", "green", "amber", "amber+strict", "red"}:
    raise ImproperlyConfigured(f"MDX_UNMARKED_TLP must be a TLP 2.0 level, got {MDX_UNMARKED_TLP!r}")
MDX_TOKEN_TOUCH_SECONDS = env_int("MDX_TOKEN_TOUCH_SECONDS", 60)
# Token guessing: after this many rejected tokens from one address within the window, requests
# from that address get 429 until the window ends (sharing/authentication.py). 0 turns it off.
MDX_AUTH_FAILURE_LIMIT = env_int("MDX_AUTH_FAILURE_LIMIT", 20)
MDX_AUTH_FAILURE_WINDOW_SECONDS = env_int("MDX_AUTH_FAILURE_WINDOW_SECONDS", 600, minimum=1)
# Four-eyes review: nobody approves objects submitted by an organisation they are a member of.
MDX_FOUR_EYES = env_bool("MDX_FOUR_EYES", False)
# Known-benign ranges flagged on review (sharing/warninglist.py); unset = the bundled list.
MDX_WARNINGLIST_FILE = env_str("MDX_WARNINGLIST_FILE") or None
TAXII_MAX_PAGE_SIZE = env_int("TAXII_MAX_PAGE_SIZE", 1000, minimum=1)
TAXII_MAX_CONTENT_LENGTH = env_int("TAXII_MAX_CONTENT_LENGTH", 10 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = TAXII_MAX_CONTENT_LENGTH + 1024

# Addresses allowed to reach /healthz details is not restricted: it reveals only up/down.
_trusted_proxies = env_list("TRUSTED_PROXIES", [])
try:
    TRUSTED_PROXIES = [ipaddress.ip_network(p, strict=False) for p in _trusted_proxies]
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from None

# Identifier-hashing keys (DOMAIN.md §3.2): consortium key epochs and the node-private pseudonym
# key, from a JSON file or inline JSON — never from the database. A hub needs none; a member
# node needs them to import and match accounts. DEBUG alone falls back to a public dev keyring.
MDX_KEYRING_FILE = env_str("MDX_KEYRING_FILE")
MDX_KEYRING_JSON = env_str("MDX_KEYRING")
try:
    from indicators.hashing import HashingError, Keyring

    if MDX_KEYRING_FILE or MDX_KEYRING_JSON:
        MDX_KEYRING: Keyring | None = Keyring.load(
            path=MDX_KEYRING_FILE or None, inline=MDX_KEYRING_JSON or None
        )
    else:
        MDX_KEYRING = Keyring.development() if DEBUG else None
except HashingError as exc:
    raise ImproperlyConfigured(f"MDX_KEYRING / MDX_KEYRING_FILE: {exc}") from None

# Local matching (DOMAIN.md §4.2–4.5).
MDX_MATCH_QUARANTINE_THRESHOLD = env_int("MDX_MATCH_QUARANTINE_THRESHOLD", 500, minimum=1)
MDX_ALERT_MIN_SCORE = env_float("MDX_ALERT_MIN_SCORE", 0.5, minimum=0.0, maximum=1.0)
MDX_MATCH_STALE_SECONDS = env_int("MDX_MATCH_STALE_SECONDS", 900, minimum=60)
MDX_MATCH_INDICATOR_BATCH = env_int("MDX_MATCH_INDICATOR_BATCH", 500, minimum=1)
MDX_MATCH_ACCOUNT_CHUNK = env_int("MDX_MATCH_ACCOUNT_CHUNK", 250_000, minimum=1000)
MDX_MATCH_PREVIEW_SCAN_LIMIT = env_int("MDX_MATCH_PREVIEW_SCAN_LIMIT", 200_000)

# Hydra-cluster linking (DOMAIN.md §4.3): a candidate needs this many accounts; an attribute value
# shared by more than the degree cap links nobody (unless an indicator matched it or it is
# ai-reseller-egress); only attributes seen in the last window days count.
MDX_CLUSTER_MIN_SIZE = env_int("MDX_CLUSTER_MIN_SIZE", 20, minimum=2)
MDX_CLUSTER_DEGREE_CAP = env_int("MDX_CLUSTER_DEGREE_CAP", 50, minimum=2)
MDX_CLUSTER_WINDOW_DAYS = env_int("MDX_CLUSTER_WINDOW_DAYS", 90, minimum=1)
# Reports after a cluster review (§4.3.6): most new indicators per report; a value leaves only
# when at least this many of the cluster's accounts share it (fewer is one person's identifier).
MDX_CLUSTER_REPORT_MAX_INDICATORS = env_int("MDX_CLUSTER_REPORT_MAX_INDICATORS", 50, minimum=0)
MDX_CLUSTER_REPORT_MIN_HOLDERS = env_int("MDX_CLUSTER_REPORT_MIN_HOLDERS", 3, minimum=2)

# Federation: pulling remote TAXII collections (sharing/federation.py).
MDX_FEDERATION_TIMEOUT = env_int("MDX_FEDERATION_TIMEOUT", 30, minimum=1)
MDX_FEDERATION_RETRIES = env_int("MDX_FEDERATION_RETRIES", 3)
MDX_FEDERATION_MAX_BACKOFF = env_int("MDX_FEDERATION_MAX_BACKOFF", 3600, minimum=60)
MDX_FEDERATION_PAGE_SIZE = env_int("MDX_FEDERATION_PAGE_SIZE", 1000, minimum=1)
# Feedback (DOMAIN.md §4.4). Members below this many sighting members are not disclosed to
# non-originators; "bucket" reports only the lower bound of a sighting's count bucket.
MDX_FEEDBACK_MIN_MEMBERS = env_int("MDX_FEEDBACK_MIN_MEMBERS", 3, minimum=2)
MDX_FEEDBACK_COUNT = env_str("MDX_FEEDBACK_COUNT") or "exact"
if MDX_FEEDBACK_COUNT not in ("exact", "bucket"):
    raise ImproperlyConfigured("MDX_FEEDBACK_COUNT must be 'exact' or 'bucket'")
# Subscription tokens are encrypted at rest with this key (url-safe base64 of 32 bytes); empty
# derives one from SECRET_KEY, which then must never rotate. Set it in production.
MDX_FIELD_ENCRYPTION_KEY = env_str("MDX_FIELD_ENCRYPTION_KEY")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    # django-axes logs every sign-in at INFO; lockouts (WARNING) are what an operator needs.
    "loggers": {"axes": {"level": "WARNING"}},
}
