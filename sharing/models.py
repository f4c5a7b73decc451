"""Organisations, access (memberships, API tokens, grants), collections and the audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from indicators.models import TLP_CHOICES, StixObject


class Organisation(models.Model):
    class Kind(models.TextChoices):
        LAB = "lab", "AI lab"
        CLOUD = "cloud", "Cloud provider"
        AUTHORITY = "authority", "Authority"
        HUB = "hub", "Hub operator"

    class ReviewPolicy(models.TextChoices):
        REVIEW = "review", "Review before publishing"
        TRUSTED = "trusted", "Publish at once"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    review_policy = models.CharField(max_length=10, choices=ReviewPolicy.choices, default=ReviewPolicy.REVIEW)
    # The organisation's STIX identity (identity_class "organization"), used as created_by_ref.
    identity = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def identity_id(self) -> str:
        return self.identity["id"]

    @property
    def is_trusted(self) -> bool:
        return self.review_policy == self.ReviewPolicy.TRUSTED


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        REVIEWER = "reviewer", "Reviewer"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organisation} ({self.role})"


class ApiToken(models.Model):
    """An organisation's API token. Only a lookup prefix and a SHA-256 digest are stored."""

    SCOPES = ("read", "write", "admin")

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=200, blank=True, default="")
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    scopes = models.CharField(max_length=50)  # comma-separated subset of SCOPES
    allowed_cidrs = models.TextField(blank=True, default="")  # comma-separated; empty = anywhere
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.organisation})"

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split(",") if s)

    def has_scope(self, scope: str) -> bool:
        # admin implies every other scope.
        return scope in self.scope_set or "admin" in self.scope_set

    @property
    def cidr_list(self) -> list[str]:
        return [c.strip() for c in self.allowed_cidrs.split(",") if c.strip()]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())


class Collection(models.Model):
    """A TAXII 2.1 collection."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    # Public collections are readable by every organisation, but only their TLP:CLEAR objects.
    is_public = models.BooleanField(default=False)
    # A feedback inbox (DOMAIN.md §4.5 "sightings-inbox"): members post sightings, opinions and
    # notes; only the node operator reads it (sharing.selectors), the hub aggregates it
    # (sharing.feedback_inbox).
    is_inbox = models.BooleanField(default=False)
    # High-water mark of date_added: the next entry gets a strictly later timestamp.
    last_added = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Grant(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="grants")
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="grants")
    can_read = models.BooleanField(default=True)
    can_write = models.BooleanField(default=False)
    tlp_ceiling = models.CharField(max_length=12, choices=TLP_CHOICES, default="amber")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "collection"], name="grant_unique")]

    def __str__(self) -> str:
        rights = ("r" if self.can_read else "") + ("w" if self.can_write else "")
        return f"{self.organisation} → {self.collection} ({rights or '-'}, ≤ {self.tlp_ceiling})"


class CollectionEntry(models.Model):
    """An object version published in a collection, with its server-assigned date_added.

    The version's id, type, version key, spec_version and TLP rank are copied here so every
    feed query (grant + TLP filter, match[...], keyset paging) runs on this one table and
    its indexes; only the page's rows join StixObject for their JSON text.
    """

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="entries")
    stix_object = models.ForeignKey(StixObject, on_delete=models.PROTECT, related_name="entries")
    date_added = models.DateTimeField()
    submitted_by = models.ForeignKey(
        Organisation, on_delete=models.SET_NULL, null=True, blank=True, related_name="entries"
    )
    stix_id = models.CharField(max_length=300)
    type = models.CharField(max_length=250)
    modified = models.DateTimeField()
    spec_version = models.CharField(max_length=8, default="2.1")
    tlp_rank = models.PositiveSmallIntegerField()
    # The newest version of this stix_id in this collection (TAXII match[version]=last).
    is_latest = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["collection", "stix_object"], name="collection_entry_unique"),
            models.UniqueConstraint(fields=["collection", "date_added"], name="collection_date_added_unique"),
        ]
        indexes = [
            # The keyset cursor of every feed: (date_added, id) inside one collection.
            models.Index(fields=["collection", "date_added", "id"], name="collection_entry_keyset"),
            models.Index(fields=["collection", "stix_id", "modified"], name="collection_entry_versions"),
        ]

    def __str__(self) -> str:
        return f"{self.collection_id}: {self.stix_id} @ {self.date_added.isoformat()}"


class Submission(models.Model):
    """One POSTed envelope. It *is* the TAXII 2.1 status resource (§4.3.1)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="submissions")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="submissions")
    token = models.ForeignKey(ApiToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"submission {self.id} by {self.organisation}"


class SubmissionItem(models.Model):
    """The fate of one object of a submission: pending review, success, or failure with a message."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    stix_id = models.CharField(max_length=300, blank=True, default="")
    version = models.CharField(max_length=40, blank=True, default="")  # modified (or created) as sent
    stix_object = models.ForeignKey(
        StixObject, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, db_index=True)
    message = models.TextField(blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["submission", "position"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "position"], name="submission_item_unique")
        ]

    def __str__(self) -> str:
        return f"{self.stix_id or '#' + str(self.position)}: {self.state}"


class AuditEvent(models.Model):
    """Who did what, when and from where. Append-only: rows are never changed or deleted."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=100, db_index=True)
    # No database constraint and no cascade: deleting a user, token or organisation must
    # neither rewrite nor remove the history of what they did.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_token = models.ForeignKey(
        ApiToken, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200, blank=True, default="")  # survives actor deletion
    target_type = models.CharField(max_length=100, blank=True, default="")
    target_id = models.CharField(max_length=300, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")


class Subscription(models.Model):
    """A pull subscription to a remote TAXII 2.1 collection (member side of federation).

    Pulled objects are submitted into ``collection`` as ``organisation`` (one organisation per
    subscription, kind hub). The token is kept either in an environment variable named by
    ``token_env`` or Fernet-encrypted in ``token_ciphertext`` (sharing.federation); never in
    plaintext. ``cursor_added_after`` is the X-TAXII-Date-Added-Last of the last page stored.
    """

    name = models.CharField(max_length=200, unique=True)
    discovery_url = models.CharField(max_length=500)
    # Resolved from the discovery resource's "default" API root at the first poll.
    api_root_url = models.CharField(max_length=500, blank=True, default="")
    remote_collection_id = models.UUIDField()
    token_env = models.CharField(max_length=200, blank=True, default="")
    token_ciphertext = models.TextField(blank=True, default="")
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="subscriptions")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="subscriptions")
    poll_interval = models.PositiveIntegerField(default=300)  # seconds
    review = models.BooleanField(default=False)
    # Where feedback about this source's indicators goes: the remote hub's inbox collection in
    # the same API root, and the identity this node's organisation has at that hub (its
    # created_by_ref / where_sighted_refs there; omitted when unknown).
    inbox_collection_id = models.UUIDField(null=True, blank=True)
    member_identity = models.CharField(max_length=300, blank=True, default="")
    cursor_added_after = models.CharField(max_length=40, blank=True, default="")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    objects_received = models.PositiveBigIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Claimed by one worker until then (conditional UPDATE in sharing.federation).
    lease_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# --- Feedback: count-only sightings and opinions (DOMAIN.md §4.4) ----------------------------------


class FeedbackReport(models.Model):
    """Member side: the exact envelope this node sends (or sent) to a source hub's inbox.

    ``payload`` is frozen when the reviewer prepares the report: the preview shows it and the
    send posts it byte for byte, so what leaves the node is exactly what a person looked at.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        FAILED = "failed", "Send failed"

    class Destination(models.TextChoices):
        INBOX = "inbox", "Hub inbox"  # sightings and opinions: only the hub reads them
        COLLECTION = "collection", "Hub collection"  # new objects, reviewed and published there

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="feedback")
    destination = models.CharField(max_length=12, choices=Destination.choices, default=Destination.INBOX)
    # Set on the reports a confirmed hydra cluster produced (sharing.cluster_report, DOMAIN §4.3.6).
    cluster = models.ForeignKey(
        "indicators.AccountCluster", on_delete=models.SET_NULL, null=True, blank=True, related_name="reports"
    )
    indicator_stix_id = models.CharField(max_length=300, db_index=True)
    review_state = models.CharField(max_length=20)
    count = models.PositiveIntegerField()
    opinion = models.CharField(max_length=20, blank=True, default="")
    payload = models.TextField()  # the TAXII envelope, JSON text
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    remote_status_id = models.CharField(max_length=100, blank=True, default="")
    remote_status = models.CharField(max_length=20, blank=True, default="")  # complete / pending
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"feedback on {self.indicator_stix_id} via {self.subscription} ({self.status})"


class ReceivedSighting(models.Model):
    """Hub side: the newest version of one member sighting posted to an inbox.

    ``organisation`` is the authenticated submitter, never a claim inside the object.
    """

    sighting_id = models.CharField(max_length=300, unique=True)
    modified = models.DateTimeField()
    indicator_stix_id = models.CharField(max_length=300, db_index=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    count = models.PositiveIntegerField()
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    review_state = models.CharField(max_length=20, blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.sighting_id} ({self.count} × {self.indicator_stix_id})"


class ReceivedOpinion(models.Model):
    """Hub side: the newest version of one member opinion about one indicator."""

    opinion_id = models.CharField(max_length=300)
    indicator_stix_id = models.CharField(max_length=300, db_index=True)
    modified = models.DateTimeField()
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    opinion = models.CharField(max_length=20)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["opinion_id", "indicator_stix_id"], name="received_opinion_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.opinion} on {self.indicator_stix_id}"


class RelayedSighting(models.Model):
    """Hub side: the summary sighting relayed to members for one indicator (DOMAIN.md §4.4).

    One row per indicator: which sighting id carries the relay and what it last said, so a new
    version is issued only when the thresholded view changes. A revoked relay cannot be
    revived (STIX 2.1 §3.6): a later relay of the same indicator gets a fresh id.
    """

    indicator_stix_id = models.CharField(max_length=300, unique=True)
    sighting_id = models.CharField(max_length=300)
    sighted_by_at_least = models.PositiveIntegerField(null=True, blank=True)  # None once revoked
    revoked = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        state = "revoked" if self.revoked else f"≥ {self.sighted_by_at_least} members"
        return f"{self.sighting_id} → {self.indicator_stix_id} ({state})"
