"""Federation, member side: subscriptions to remote TAXII 2.1 collections, pulled on a schedule.

A poll resolves the remote collection with taxii2-client (discovery → API root → collection),
then pages through ``GET …/objects/`` with ``added_after`` = the persisted cursor and ``next``.
After each page, one transaction submits the page's objects (``submission_create``: validated
at the STIX boundary, published or held for review like any submission) and moves the cursor to
the page's ``X-TAXII-Date-Added-Last``. TAXII 2.1 §3.4.2 makes ``added_after`` exclusive, so
resuming from the last stored page neither loses nor repeats an object, and an identical
(id, modified) re-add is a no-op in the store anyway. No network I/O happens inside a
transaction, and a poll never raises: failures are recorded on the subscription.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import requests
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from taxii2client import exceptions as taxii_exceptions
from taxii2client.common import _HTTPConnection
from taxii2client.v21 import Collection as TaxiiCollection
from taxii2client.v21 import Server as TaxiiServer

from sharing.models import Collection, Organisation, SubmissionItem, Subscription
from sharing.numbers import natural_number
from sharing.services import ServiceError, audit_record, organisation_create
from sharing.submissions import submission_create

logger = logging.getLogger(__name__)

TAXII_USER = "mdx"  # our TAXII server (and most others) ignore the user name; the token is the password
HKDF_INFO = b"mdx:subscription-token:v1"
USER_AGENT = "mdx-hub-federation/1 (taxii2-client)"
MIN_INTERVAL = 10
MAX_INTERVAL = 7 * 24 * 3600
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IDENTITY_RE = re.compile(r"^identity--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MESSAGE_LIMIT = 1000


def _setting(name: str, default):
    return getattr(settings, name, default)


# --- Token storage --------------------------------------------------------------------------------


class TokenUnavailable(Exception):
    """The subscription's token cannot be produced (env var unset, key changed)."""


@lru_cache(maxsize=8)
def _fernet_for(secret_key: str, explicit_key: str) -> Fernet:
    if explicit_key:
        try:
            raw = base64.urlsafe_b64decode(explicit_key.encode())
        except (ValueError, TypeError):
            raw = b""
        if len(raw) != 32:
            raise TokenUnavailable("MDX_FIELD_ENCRYPTION_KEY must be 32 bytes in url-safe base64")
        return Fernet(explicit_key.encode())
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet() -> Fernet:
    return _fernet_for(settings.SECRET_KEY, _setting("MDX_FIELD_ENCRYPTION_KEY", "") or "")


def token_encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def token_decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenUnavailable(
            "the stored token cannot be decrypted (SECRET_KEY or MDX_FIELD_ENCRYPTION_KEY changed?); "
            "set it again"
        ) from None


def subscription_token(subscription: Subscription) -> str:
    """The plaintext token, from the environment or decrypted; TokenUnavailable otherwise."""
    if subscription.token_env:
        value = os.environ.get(subscription.token_env, "").strip()
        if not value:
            raise TokenUnavailable(f"environment variable {subscription.token_env} is not set")
        return value
    if not subscription.token_ciphertext:
        raise TokenUnavailable("the subscription has no token")
    return token_decrypt(subscription.token_ciphertext)


# --- Creating subscriptions -----------------------------------------------------------------------


def validate_discovery_url(url: str) -> str:
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        raise ServiceError(f"bad discovery URL {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError(f"the discovery URL must be an http:// or https:// URL, got {url!r}")
    if parts.username or parts.password:
        # Credentials in a URL would be stored in plaintext: use --token / --token-env.
        raise ServiceError("the discovery URL must not contain credentials; pass the token separately")
    if any(c.isspace() for c in url) or len(url) > 500:
        raise ServiceError(f"bad discovery URL {url!r}")
    return url if url.endswith("/") else url + "/"


def subscription_poll_request(
    *, subscription: Subscription, user=None, token=None, ip_address: str | None = None
) -> None:
    """Audit an operator's "poll now" and enqueue one forced poll after commit.

    A poll already running is not doubled: the queued one finds the subscription claimed.
    """
    from sharing.tasks import poll_subscription  # the tasks module imports this one

    pk = subscription.pk
    with transaction.atomic():
        audit_record(
            "subscription.poll", user=user, token=token, target_type="subscription", target_id=pk,
            ip_address=ip_address,
        )  # fmt: skip
        transaction.on_commit(lambda: poll_subscription.delay(pk, force=True))


def subscription_add(
    *,
    name: str,
    discovery_url: str,
    collection_id: str,
    into: str,
    token: str | None = None,
    token_env: str | None = None,
    review: bool = False,
    interval: int = 300,
    inbox: str | None = None,
    identity: str | None = None,
    user=None,
) -> Subscription:
    """Create a subscription and the organisation its objects are attributed to.

    Validates everything, contacts no network (the first poll resolves the API root) and
    raises ServiceError on bad input, having written nothing.
    """
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError("the subscription name must not be empty")
    if len(name) > 200:
        raise ServiceError("the subscription name is longer than 200 characters")
    url = validate_discovery_url(discovery_url)
    try:
        remote_id = uuid.UUID(str(collection_id).strip())
    except ValueError:
        raise ServiceError(f"the remote collection id must be a UUID, got {collection_id!r}") from None
    try:
        local = Collection.objects.get(pk=uuid.UUID(str(into).strip()))
    except (ValueError, Collection.DoesNotExist):
        raise ServiceError(f"no local collection with id {into!r}") from None
    if (token is None) == (token_env is None):
        raise ServiceError("give exactly one of a token or the name of an environment variable holding it")
    if token is not None:
        token = token.strip()
        if not token or len(token) > 4096 or any(c.isspace() for c in token):
            raise ServiceError("the token must be non-empty, without spaces, at most 4096 characters")
    if token_env is not None:
        token_env = token_env.strip()
        if not _ENV_NAME_RE.match(token_env):
            raise ServiceError(f"{token_env!r} is not a valid environment variable name")
    if not MIN_INTERVAL <= int(interval) <= MAX_INTERVAL:
        raise ServiceError(f"the poll interval must be between {MIN_INTERVAL} and {MAX_INTERVAL} seconds")
    inbox_id = None
    if inbox:
        try:
            inbox_id = uuid.UUID(str(inbox).strip())
        except ValueError:
            raise ServiceError(f"the remote inbox collection id must be a UUID, got {inbox!r}") from None
    identity = (identity or "").strip()
    if identity and not _IDENTITY_RE.match(identity):
        raise ServiceError(
            f"the member identity must be a STIX identity id (identity--<uuid>), got {identity!r}"
        )
    if Subscription.objects.filter(name__iexact=name).exists():
        raise ServiceError(f"a subscription named {name!r} already exists")
    try:
        with transaction.atomic():
            organisation = organisation_create(
                name=name, kind=Organisation.Kind.HUB, trusted=not review, user=user
            )
            subscription = Subscription.objects.create(
                name=name,
                discovery_url=url,
                remote_collection_id=remote_id,
                token_env=token_env or "",
                token_ciphertext=token_encrypt(token) if token is not None else "",
                collection=local,
                organisation=organisation,
                poll_interval=int(interval),
                review=review,
                inbox_collection_id=inbox_id,
                member_identity=identity,
                next_poll_at=timezone.now(),
            )
            audit_record(
                "subscription.create",
                user=user,
                organisation=organisation,
                target_type="subscription",
                target_id=subscription.pk,
                details={
                    "discovery_url": url,
                    "remote_collection": str(remote_id),
                    "collection": str(local.pk),
                    "review": review,
                    "inbox": str(inbox_id) if inbox_id else None,
                    "token": f"env:{token_env}" if token_env else "encrypted",
                },
            )
    except IntegrityError:
        raise ServiceError(f"a subscription named {name!r} already exists") from None
    return subscription


# --- Talking to the remote ------------------------------------------------------------------------


class PollError(Exception):
    """A poll failed. ``retry_after`` (seconds) is the remote's own Retry-After, if it sent one."""

    def __init__(self, message: str, *, transient: bool = False, retry_after: float | None = None):
        super().__init__(message[:_MESSAGE_LIMIT])
        self.transient = transient
        self.retry_after = retry_after


class _LeaseLost(Exception):
    """Another worker took the subscription over (our lease expired): stop without writing."""


class _TimeoutSession(requests.Session):
    """Every request gets a timeout; the last response is kept for its TAXII headers."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout
        self.last_response: requests.Response | None = None

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        response = super().request(method, url, **kwargs)
        self.last_response = response
        return response


class _Connection(_HTTPConnection):
    """taxii2-client's connection with a timeout on every call and access to response headers."""

    def __init__(self, token: str, timeout: float):
        super().__init__(user=TAXII_USER, password=token, version="2.1", user_agent=USER_AGENT)
        session = _TimeoutSession(timeout)
        session.auth, session.verify = self.session.auth, self.session.verify
        self.session.close()
        self.session = session

    def close(self) -> None:
        # urllib3 2 leaves cleared pools to the garbage collector; close their sockets now.
        for adapter in self.session.adapters.values():
            pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
            for key in list(pools.keys()) if pools is not None else []:
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
        self.session.last_response = None
        self.session.close()

    @property
    def last_headers(self):
        return self.session.last_response.headers if self.session.last_response is not None else {}


def _retry_after_seconds(response: requests.Response | None) -> float | None:
    raw = response.headers.get("Retry-After") if response is not None else None
    if not raw:
        return None
    raw = raw.strip()
    seconds = natural_number(raw)
    if seconds is not None:
        return float(seconds)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _error_detail(response: requests.Response) -> str:
    """The title/description of a TAXII error resource (§3.6.1), if the body is one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    text = " — ".join(str(body[k]) for k in ("title", "description") if body.get(k))
    return f": {text[:300]}" if text else ""


def _classify(exc: Exception, url: str) -> PollError:
    """Turn what requests / taxii2-client raised into a PollError with a clear message."""
    if isinstance(exc, requests.Timeout):
        return PollError(f"timed out after {_setting('MDX_FEDERATION_TIMEOUT', 30)} s: {url}", transient=True)
    if isinstance(exc, requests.ConnectionError):
        return PollError(f"cannot connect to {url}: {exc.__class__.__name__}", transient=True)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        response = exc.response
        status = response.status_code
        where = response.url or url
        if status == 429:
            return PollError(
                f"rate limited by the remote (HTTP 429): {where}",
                transient=True,
                retry_after=_retry_after_seconds(response),
            )
        if status >= 500:
            return PollError(
                f"remote server error (HTTP {status}){_error_detail(response)}: {where}",
                transient=True,
                retry_after=_retry_after_seconds(response),
            )
        if status == 401:
            return PollError(f"the remote rejected the token (HTTP 401){_error_detail(response)}: {where}")
        if status == 403:
            return PollError(
                f"the token may not read this collection (HTTP 403){_error_detail(response)}: {where}"
            )
        if status == 404:
            return PollError(
                f"not found (HTTP 404) — check the discovery URL and collection id{_error_detail(response)}: "
                f"{where}"
            )
        return PollError(f"the remote refused the request (HTTP {status}){_error_detail(response)}: {where}")
    if isinstance(exc, taxii_exceptions.InvalidJSONError):
        return PollError(f"malformed JSON from the remote: {url}")
    if isinstance(exc, taxii_exceptions.AccessError):
        return PollError(f"the remote collection does not allow reading with this token: {url}")
    if isinstance(exc, taxii_exceptions.TAXIIServiceException):
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        return PollError(f"not a TAXII 2.1 response ({first}): {url}")
    if isinstance(exc, requests.RequestException):
        return PollError(f"bad request to {url}: {exc}")
    if isinstance(exc, (TypeError, KeyError, AttributeError)):
        # taxii2-client unpacks resources with **kwargs: a JSON list or odd keys end up here.
        return PollError(f"not a TAXII 2.1 resource: {url}")
    raise exc


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def with_retries(call: Callable, url: str):
    """Run one remote call, retrying network errors, timeouts, 5xx and 429 a few times.

    Waits retry_delay × 2^attempt, or the remote's Retry-After when it sent one. A Retry-After
    longer than MDX_FEDERATION_MAX_RETRY_WAIT is not slept through here: the poll gives up and
    the next one is scheduled after it.
    """
    retries = int(_setting("MDX_FEDERATION_RETRIES", 3))
    delay = float(_setting("MDX_FEDERATION_RETRY_DELAY", 1.0))
    max_wait = float(_setting("MDX_FEDERATION_MAX_RETRY_WAIT", 60))
    attempt = 0
    while True:
        try:
            return call()
        except (
            requests.RequestException,
            taxii_exceptions.TAXIIServiceException,
            TypeError,
            KeyError,
            AttributeError,
        ) as exc:
            error = _classify(exc, url)
        if not error.transient or attempt >= retries:
            raise error
        wait = error.retry_after if error.retry_after is not None else delay * 2**attempt
        if wait > max_wait:
            raise error
        logger.info("federation: %s; retrying in %.1f s", str(error), wait)
        _sleep(wait)
        attempt += 1


# --- Polling --------------------------------------------------------------------------------------


@dataclass
class PollResult:
    """What one poll did. ``ok`` False with ``skipped`` True: another poll held the subscription."""

    subscription_id: int
    name: str
    ok: bool = True
    skipped: bool = False
    pages: int = 0
    objects: int = 0  # objects received
    published: int = 0
    pending: int = 0
    rejected: int = 0
    truncated: bool = False  # stopped at MDX_FEDERATION_MAX_PAGES; the next poll is due at once
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _envelope_objects(envelope, url: str) -> tuple[list, bool, str | None]:
    """(objects, more, next) of a TAXII 2.1 envelope (§3.7), or PollError if it is not one."""
    if not isinstance(envelope, dict):
        raise PollError(f"not a TAXII 2.1 envelope (expected a JSON object): {url}")
    objects = envelope.get("objects", [])
    more = envelope.get("more", False)
    next_token = envelope.get("next")
    if not isinstance(objects, list) or not isinstance(more, bool):
        raise PollError(f"not a TAXII 2.1 envelope (objects must be a list, more a boolean): {url}")
    if next_token is not None and not isinstance(next_token, (str, int)):
        raise PollError(f"not a TAXII 2.1 envelope (bad next): {url}")
    return objects, more, (str(next_token) if next_token is not None else None)


def _valid_timestamp(raw: str | None) -> str:
    if not raw or len(raw) > 40:
        return ""
    try:
        datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return ""
    return raw.strip()


def _backoff(subscription: Subscription, failures: int, retry_after: float | None) -> timedelta:
    cap = float(_setting("MDX_FEDERATION_MAX_BACKOFF", 3600))
    seconds = min(cap, subscription.poll_interval * 2 ** min(failures - 1, 20))
    if retry_after is not None:
        seconds = max(seconds, min(retry_after, 86400))
    return timedelta(seconds=seconds)


def subscription_claim(subscription_id: int, *, force: bool = False) -> Subscription | None:
    """Claim a subscription for one poll with a conditional UPDATE (a lease), or None.

    Two workers never poll the same subscription at once: only one UPDATE matches a free
    lease. Without ``force`` only a due subscription (next_poll_at passed) is claimed, so a
    duplicate enqueue is harmless. A crashed worker's lease simply expires.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=int(_setting("MDX_FEDERATION_LEASE_SECONDS", 900)))
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    query = Subscription.objects.filter(free, pk=subscription_id)
    if not force:
        query = query.filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now), is_active=True)
    if query.update(lease_until=lease) != 1:
        return None
    subscription = Subscription.objects.select_related("collection", "organisation").get(pk=subscription_id)
    return subscription


def subscription_poll(subscription: Subscription, *, force: bool = True) -> PollResult:
    """Poll one subscription now: pull every new object page by page. Never raises.

    Claims the subscription first (see subscription_claim); when another poll holds it the
    result is ``skipped``. Failures are recorded on the subscription (last_error,
    consecutive_failures, a backed-off next_poll_at) and returned, not raised.
    """
    result = PollResult(subscription_id=subscription.pk, name=subscription.name)
    try:
        claimed = subscription_claim(subscription.pk, force=force)
    except DatabaseError as exc:  # e.g. the database is restarting: the next beat tries again
        logger.exception("federation: cannot claim %s", subscription.name)
        result.ok, result.error = False, f"database error: {exc.__class__.__name__}"
        return result
    if claimed is None:
        result.ok, result.skipped = False, True
        result.error = "another poll holds this subscription" if force else "not due or already being polled"
        return result
    try:
        _poll(claimed, result)
    except _LeaseLost:
        result.ok = False
        result.error = "the lease expired and another poll took over; this poll stopped"
        logger.warning("federation: %s: %s", claimed.name, result.error)
        return result
    except PollError as exc:
        result.ok, result.error = False, str(exc)
        _record_failure(claimed, exc)
        return result
    except Exception as exc:  # the worker must never crash; record and report
        logger.exception("federation: unexpected error polling %s", claimed.name)
        error = PollError(f"unexpected error: {exc.__class__.__name__}: {exc}")
        result.ok, result.error = False, str(error)
        _record_failure(claimed, error)
        return result
    now = timezone.now()
    try:
        Subscription.objects.filter(pk=claimed.pk, lease_until=claimed.lease_until).update(
            last_success_at=now,
            consecutive_failures=0,
            next_poll_at=now if result.truncated else now + timedelta(seconds=claimed.poll_interval),
            lease_until=None,
        )
    except DatabaseError:  # the pages are stored; the lease expires and the next poll finds nothing new
        logger.exception("federation: cannot record the success of %s", claimed.name)
    return result


def _record_failure(subscription: Subscription, error: PollError) -> None:
    now = timezone.now()
    try:
        fresh = Subscription.objects.get(pk=subscription.pk)
        failures = fresh.consecutive_failures + 1
        Subscription.objects.filter(pk=subscription.pk, lease_until=subscription.lease_until).update(
            last_error=str(error),
            last_error_at=now,
            consecutive_failures=failures,
            next_poll_at=now + _backoff(fresh, failures, error.retry_after),
            lease_until=None,
        )
    except Exception:  # a database outage must not crash the worker either
        logger.exception("federation: cannot record the failure of %s", subscription.name)
    logger.warning("federation: %s failed: %s", subscription.name, str(error))


def _resolve_api_root(subscription: Subscription, conn: _Connection) -> str:
    url = subscription.discovery_url

    def discover():
        server = TaxiiServer(url, conn=conn)
        server.refresh()
        if server.default is not None:
            return server.default.url
        roots = server._raw.get("api_roots") or []
        if len(roots) == 1 and isinstance(roots[0], str):
            return urljoin(url, roots[0])
        raise PollError(f"the discovery resource names no default API root (and not exactly one): {url}")

    root = with_retries(discover, url)
    root = root if root.endswith("/") else root + "/"
    parts = urlsplit(root)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(root) > 500:
        raise PollError(f"the discovery resource names a bad API root {root[:200]!r}: {url}")
    Subscription.objects.filter(pk=subscription.pk).update(api_root_url=root)
    subscription.api_root_url = root
    return root


@contextmanager
def remote_collection(
    subscription: Subscription, collection_id
) -> Iterator[tuple[TaxiiCollection, _Connection]]:
    """A refreshed taxii2-client Collection at the subscription's remote API root, and its
    connection (closed on exit). Raises PollError for every failure, with a clear message."""
    try:
        token = subscription_token(subscription)
    except TokenUnavailable as exc:
        raise PollError(str(exc)) from None
    conn = _Connection(token, float(_setting("MDX_FEDERATION_TIMEOUT", 30)))
    try:
        root = subscription.api_root_url or _resolve_api_root(subscription, conn)
        url = f"{root}collections/{collection_id}/"
        remote = TaxiiCollection(url, conn=conn)
        with_retries(remote.refresh, url)
        yield remote, conn
    finally:
        conn.close()


def _poll(subscription: Subscription, result: PollResult) -> None:
    """Pull pages until the remote has no more (or MDX_FEDERATION_MAX_PAGES)."""
    page_size = int(_setting("MDX_FEDERATION_PAGE_SIZE", 1000))
    max_pages = int(_setting("MDX_FEDERATION_MAX_PAGES", 10000))
    lease_seconds = int(_setting("MDX_FEDERATION_LEASE_SECONDS", 900))
    with remote_collection(subscription, subscription.remote_collection_id) as (remote, conn):
        collection_url = remote.url
        if not remote.can_read:
            raise PollError(f"the remote collection does not allow reading with this token: {collection_url}")
        cursor = subscription.cursor_added_after
        next_token: str | None = None
        objects_url = remote.objects_url
        while True:
            params: dict = {"limit": page_size}
            if cursor:
                params["added_after"] = cursor
            if next_token:
                params["next"] = next_token
            envelope = with_retries(lambda params=params: remote.get_objects(**params), objects_url)
            objects, more, next_token = _envelope_objects(envelope, objects_url)
            last = _valid_timestamp(conn.last_headers.get("X-TAXII-Date-Added-Last"))
            _store_page(subscription, lease_seconds, objects, last or cursor, result)
            result.pages += 1
            if last:
                cursor = last
            if not more:
                break
            if result.pages >= max_pages:
                result.truncated = True
                break
            # Without next, continue statelessly: the cursor is exactly where the next page starts.
            if not next_token and not last:
                raise PollError(
                    f"the remote says more=true but sends neither next nor X-TAXII-Date-Added-Last: "
                    f"{objects_url}"
                )


def _store_page(
    subscription: Subscription, lease_seconds: int, objects: list, cursor: str, result: PollResult
):
    """One transaction per page: submit the objects, move the cursor, renew the lease.

    The lease held is ``subscription.lease_until``; if it no longer matches the row, another
    worker took over and the page is rolled back (_LeaseLost).
    """
    new_lease = timezone.now() + timedelta(seconds=lease_seconds)
    states: list[str] = []
    with transaction.atomic():
        if objects:
            submission = submission_create(
                collection=subscription.collection, organisation=subscription.organisation, objects=objects
            )
            states = list(submission.items.values_list("state", flat=True))
        updated = Subscription.objects.filter(
            pk=subscription.pk, lease_until=subscription.lease_until
        ).update(
            cursor_added_after=cursor or "",
            objects_received=F("objects_received") + len(objects),
            lease_until=new_lease,
        )
        if updated != 1:
            raise _LeaseLost()
    result.objects += len(objects)
    result.published += states.count(SubmissionItem.State.SUCCESS)
    result.pending += states.count(SubmissionItem.State.PENDING)
    result.rejected += states.count(SubmissionItem.State.FAILURE)
    subscription.lease_until = new_lease


def subscriptions_due(now: datetime | None = None) -> list[int]:
    """Ids of active subscriptions whose next poll is due and that nobody is polling."""
    now = now or timezone.now()
    return list(
        Subscription.objects.filter(is_active=True)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_poll_at", "pk")
        .values_list("pk", flat=True)
    )
