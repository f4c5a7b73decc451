"""The STIX object store (immutable versions) and this node's local account data."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from indicators.extensions import TLP_ORDER as TLP_LEVELS
from indicators.extensions import tlp_rank as tlp_rank  # re-exported for the sharing app

TLP_CHOICES = [(level, f"TLP:{level.upper()}") for level in TLP_LEVELS]


class StixObject(models.Model):
    """One version of one STIX object, exactly as accepted at the boundary.

    ``json_text`` is the canonical JSON served to clients byte for byte; the other columns
    are denormalised from it for indexed filtering. Rows are never updated: a new version
    is a new row. Visibility is not a property of the row — objects are reachable only
    through collection entries (sharing.selectors), so a stored-but-pending object is
    invisible to every feed.
    """

    stix_id = models.CharField(max_length=300)
    type = models.CharField(max_length=250, db_index=True)
    spec_version = models.CharField(max_length=8, default="2.1")
    created = models.DateTimeField(null=True, blank=True)
    # The version key. SCOs carry no created/modified; they are stored under the epoch so
    # (stix_id, modified) stays a total key — see indicators.services.version_of().
    modified = models.DateTimeField()
    has_modified = models.BooleanField(default=True)
    revoked = models.BooleanField(default=False)
    created_by_ref = models.CharField(max_length=300, blank=True, default="", db_index=True)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True, db_index=True)
    tlp = models.CharField(max_length=12, choices=TLP_CHOICES)
    tlp_rank = models.PositiveSmallIntegerField(db_index=True)
    name = models.CharField(max_length=500, blank=True, default="")
    # "|label1|label2|" so a label filter is a portable substring match on SQLite and PostgreSQL.
    labels_text = models.TextField(blank=True, default="")
    pattern_type = models.CharField(max_length=50, blank=True, default="")
    content_hash = models.CharField(max_length=64)
    json_text = models.TextField()
    data = models.JSONField()
    stored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stix_id", "modified"], name="stix_object_version_unique")
        ]
        indexes = [models.Index(fields=["stix_id", "-modified"], name="stix_object_latest")]
        ordering = ["stix_id", "modified"]

    def __str__(self) -> str:
        return f"{self.stix_id} @ {self.modified.isoformat()}"

    @property
    def description(self) -> str:
        return str(self.data.get("description", ""))


# --- Local account data (DOMAIN.md §4.1). Never leaves the node. ----------------------------------
#
# Identifier values are keyed HMACs (hex); raw e-mails and phone numbers are never stored.
# IP addresses are stored as 16-byte big-endian values, IPv4 mapped into ::ffff:0:0/96, so
# "address inside a CIDR block" is an indexed range query on SQLite and PostgreSQL alike.


class Account(models.Model):
    """One of this node's own customer accounts."""

    account_id = models.CharField(max_length=200)  # the provider's internal id; unique (Meta)
    pseudonym = models.CharField(max_length=64)  # HMAC(node-private key, account_id), for outbound refs
    created_at = models.DateTimeField()
    status = models.CharField(max_length=20, blank=True, default="")
    tier = models.CharField(max_length=40, blank=True, default="")
    org_category = models.CharField(max_length=40, blank=True, default="")
    access_channel = models.CharField(max_length=40, blank=True, default="")
    signup_country = models.CharField(max_length=2, blank=True, default="")
    # Bumped on every (re-)import: incremental matching picks up accounts changed since its last run.
    changed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["pk"]
        # A constraint rather than unique=True: on PostgreSQL a unique CharField also gets a
        # varchar_pattern_ops index for LIKE, which nothing uses and every import writes to.
        constraints = [models.UniqueConstraint(fields=["account_id"], name="account_account_id_unique")]

    def __str__(self) -> str:
        return self.account_id


# Account attribute rows are written only by indicators.accounts.accounts_import, which writes
# each account's rows in the transaction that upserts the account and deletes the old ones.
# Their foreign keys have no database constraint (db_constraint=False): a constraint costs a
# trigger and a lookup of the account per inserted row (~40% of PostgreSQL's work in an
# import) and checks nothing the importer does not already guarantee. Deleting an Account
# through the ORM still deletes its attribute rows (on_delete=CASCADE is applied by Django, not
# by the database; nothing deletes accounts in raw SQL). The account_id columns stay indexed:
# loading candidate accounts and the re-import's delete look rows up by account.


class AccountIdentifier(models.Model):
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="identifiers", db_constraint=False
    )
    identifier_type = models.CharField(max_length=30)
    key_id = models.CharField(max_length=64, blank=True, default="")
    value = models.CharField(max_length=64)  # lowercase hex HMAC-SHA256
    normalization = models.CharField(max_length=40)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Lookups are `value IN (...)`: the hash alone is selective. On PostgreSQL this is a
            # hash index (migration 0005): it is written in random order by every import.
            models.Index(fields=["value"], name="account_identifier_value"),
        ]

    def __str__(self) -> str:
        return f"{self.identifier_type}:{self.key_id}:{self.value[:12]}…"


class AccountPayment(models.Model):
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="payments", db_constraint=False
    )
    instrument_type = models.CharField(max_length=20, default="card")
    basis = models.CharField(max_length=20)
    key_id = models.CharField(max_length=64)
    value = models.CharField(max_length=64)
    card_iin = models.CharField(max_length=8, blank=True, default="")
    card_network = models.CharField(max_length=30, blank=True, default="")
    card_funding = models.CharField(max_length=10, blank=True, default="")
    is_virtual = models.BooleanField(null=True, blank=True)
    issuer_country = models.CharField(max_length=2, blank=True, default="")
    first_used = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["value"], name="account_payment_value")]  # hash on PostgreSQL (0005)

    def __str__(self) -> str:
        return f"{self.basis}:{self.key_id}:{self.value[:12]}…"


class AccountIp(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="ips", db_constraint=False)
    ip = models.CharField(max_length=50)  # canonical text (RFC 5952 for IPv6); may be a CIDR block
    ip_low = models.BinaryField(max_length=16)  # first address, 16 bytes big-endian, IPv4 mapped
    ip_high = models.BinaryField(max_length=16)  # last address (== ip_low for a single address)
    asn = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)  # 4-byte ASNs exceed 2**31
    proxy_type = models.CharField(max_length=30, blank=True, default="")
    is_signup = models.BooleanField(default=False)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    request_count = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["ip_low"], name="account_ip_range")]

    def __str__(self) -> str:
        return self.ip


class AccountApiKey(models.Model):
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="api_keys", db_constraint=False
    )
    key_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["key_sha256"], name="account_api_key_sha256")]

    def __str__(self) -> str:
        return f"api key {self.key_sha256[:12]}…"


class AccountClient(models.Model):
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="clients", db_constraint=False
    )
    user_agent = models.CharField(max_length=500, blank=True, default="")
    sdk_name = models.CharField(max_length=100, blank=True, default="")
    sdk_version = models.CharField(max_length=50, blank=True, default="")
    http_library = models.CharField(max_length=100, blank=True, default="")
    ja4 = models.CharField(max_length=100, blank=True, default="")
    ja4h = models.CharField(max_length=100, blank=True, default="")
    header_order_sha256 = models.CharField(max_length=64, blank=True, default="")
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    request_count = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["sdk_name", "sdk_version"], name="account_client_sdk"),
            models.Index(fields=["ja4"], name="account_client_ja4"),
            models.Index(fields=["ja4h"], name="account_client_ja4h"),
        ]

    def __str__(self) -> str:
        return self.ja4 or self.user_agent or f"{self.sdk_name} {self.sdk_version}"


class AccountPromptSignature(models.Model):
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="prompt_signatures", db_constraint=False
    )
    key_id = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    minhash = models.JSONField()  # 128 uint32
    template_hmac = models.CharField(max_length=64, blank=True, default="")
    simhash64 = models.CharField(max_length=16, blank=True, default="")
    capability_tags = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=20, blank=True, default="")
    sample_size = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"prompts {self.window_start:%Y-%m-%d}–{self.window_end:%Y-%m-%d}"


class AccountLshBand(models.Model):
    """One LSH band key of a prompt signature: the candidate join of prompt-similarity matching."""

    signature = models.ForeignKey(
        AccountPromptSignature, on_delete=models.CASCADE, related_name="bands", db_constraint=False
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    band_key = models.CharField(max_length=20)

    class Meta:
        # Meta indexes rather than db_index=True: no varchar_pattern_ops twin (nothing uses LIKE).
        indexes = [models.Index(fields=["band_key"], name="account_lsh_band_key")]

    def __str__(self) -> str:
        return self.band_key


class AccountTiming(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="timing", db_constraint=False)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    method = models.CharField(max_length=40, default="mdx-iat-log2x16+hod24-v1")
    request_count = models.PositiveIntegerField()
    iat_histogram = models.JSONField()  # 16 floats
    hour_of_day_histogram = models.JSONField()  # 24 floats
    median_iat_ms = models.FloatField(null=True, blank=True)
    iat_cv = models.FloatField(null=True, blank=True)
    max_concurrency = models.PositiveIntegerField(null=True, blank=True)
    release_switch_latency_h = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"timing {self.window_start:%Y-%m-%d}–{self.window_end:%Y-%m-%d}"


# --- Local matching results (DOMAIN.md §4.4). Node-private: never exported or shared. -------------


class IndicatorMatchState(models.Model):
    """Matching bookkeeping for one indicator version: the claim point of its match task.

    A task claims the row with a conditional UPDATE (pending → running), so a re-delivered
    or duplicated task is a no-op. ``quarantined`` flags an indicator that matched more
    accounts than MDX_MATCH_QUARANTINE_THRESHOLD: its matches are kept but raise no alert
    until a reviewer looks at it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        NOT_EVALUABLE = "not-evaluable", "Not evaluable"
        QUARANTINED = "quarantined", "Quarantined (over-match)"
        RELEASED = "released", "Released by a reviewer (over-match accepted)"
        SUPERSEDED = "superseded", "Superseded by a newer version"
        WITHDRAWN = "withdrawn", "Withdrawn (revoked or expired)"

    indicator = models.OneToOneField(StixObject, on_delete=models.PROTECT, related_name="match_state")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    matched_count = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.indicator_id}: {self.status}"


class MatchJob(models.Model):
    """One unit of batch matching work (retro-hunt chunk or changed accounts), claimable by a task.

    ``indicator_pks`` empty means every active indicator; ``account_pks`` set means exactly those
    accounts, otherwise the account pk range [low_pk, high_pk] (open ends when null).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    label = models.CharField(max_length=100, blank=True, default="")
    indicator_pks = models.JSONField(default=list, blank=True)
    account_pks = models.JSONField(null=True, blank=True)
    low_pk = models.BigIntegerField(null=True, blank=True)
    high_pk = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"match job {self.pk} ({self.label or 'batch'}): {self.status}"


class MatchingCursor(models.Model):
    """A named high-water mark, e.g. the Account.changed_at incremental matching has covered."""

    name = models.CharField(max_length=50, unique=True)
    value = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} = {self.value.isoformat()}"


class Match(models.Model):
    """An indicator version matched a local account (DOMAIN §4.4 match_events). Never leaves the node.

    ``evidence`` says which table/column or similarity measure matched — never raw identifiers.
    """

    indicator = models.ForeignKey(StixObject, on_delete=models.PROTECT, related_name="matches")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="matches")
    kind = models.CharField(max_length=30)
    evidence = models.JSONField(default=dict, blank=True)
    weight = models.FloatField()
    matched_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["indicator", "account"], name="match_unique")]
        indexes = [models.Index(fields=["account", "indicator"], name="match_by_account")]
        ordering = ["-matched_at", "pk"]

    def __str__(self) -> str:
        return f"{self.indicator_id} ~ account {self.account_id} ({self.kind})"


class Alert(models.Model):
    """One per account: the noisy-OR score over its active matches (DOMAIN §4.2) and the review state."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        TRIAGED = "triaged", "Triaged"
        CONFIRMED = "confirmed", "Confirmed"
        FALSE_POSITIVE = "false-positive", "False positive"
        WITHDRAWN = "withdrawn", "Withdrawn"

    OPEN = (Status.NEW, Status.TRIAGED)

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="alert")
    score = models.FloatField(db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW, db_index=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-score", "pk"]

    def __str__(self) -> str:
        return f"alert {self.pk}: account {self.account_id} ({self.score:.2f}, {self.status})"


# --- Hydra clusters (DOMAIN.md §4.3). Node-private: never exported or shared. ---------------------


class AccountCluster(models.Model):
    """A hydra cluster: a connected component of ≥ 2 linked local accounts (DOMAIN §4.3).

    Rewritten by every linking run (indicators.cluster_service.clusters_link), which keeps a
    cluster's id, first_seen and review across runs by carrying them over to the new component
    with the largest member overlap. Only a reviewed, rounded count may ever leave the node
    (§4.3.6); the member list never does.
    """

    class Status(models.TextChoices):
        NEW = "new", "New"
        CONFIRMED = "confirmed", "Confirmed"
        DISMISSED = "dismissed", "Dismissed"

    size = models.PositiveIntegerField(db_index=True)
    # link type (indicators.clustering.LINK_TYPES) -> member accounts tied to another member by it
    link_counts = models.JSONField(default=dict, blank=True)
    indicator_hits = models.PositiveIntegerField(default=0)  # members matched by a supporting indicator
    max_alert_score = models.FloatField(null=True, blank=True)
    narrow_score_median = models.FloatField(null=True, blank=True)
    top_template_share = models.FloatField(null=True, blank=True)
    is_candidate = models.BooleanField(default=False, db_index=True)
    candidate_reason = models.CharField(max_length=300, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW, db_index=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True, default="")
    # cluster_service.members_digest at the decision: a relink may change the members later.
    reviewed_members = models.CharField(max_length=64, blank=True, default="")
    first_seen = models.DateTimeField()  # the linking run that first found it
    updated_at = models.DateTimeField()  # last change by a linking run or a review

    class Meta:
        ordering = ["-is_candidate", "-size", "pk"]

    def __str__(self) -> str:
        return f"cluster {self.pk}: {self.size} accounts ({self.status})"


class AccountClusterMember(models.Model):
    """An account's cluster: at most one per account."""

    cluster = models.ForeignKey(AccountCluster, on_delete=models.CASCADE, related_name="members")
    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="cluster_membership")

    def __str__(self) -> str:
        return f"account {self.account_id} in cluster {self.cluster_id}"
