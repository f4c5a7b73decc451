"""The STIX object store: one immutable row per (stix id, modified) version."""

from __future__ import annotations

from django.db import models

from indicators.extensions import TLP_ORDER as TLP_LEVELS
from indicators.extensions import tlp_rank

__all__ = ["TLP_CHOICES", "TLP_LEVELS", "StixObject", "tlp_rank"]

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
