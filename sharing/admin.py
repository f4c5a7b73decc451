"""Admin registrations for every sharing model. Token secrets are never shown (they are not stored)."""

from django.contrib import admin

from sharing.models import (
    ApiToken,
    AuditEvent,
    Collection,
    CollectionEntry,
    FeedbackReport,
    Grant,
    Membership,
    Organisation,
    ReceivedOpinion,
    ReceivedSighting,
    RelayedSighting,
    Submission,
    SubmissionItem,
    Subscription,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


class GrantInline(admin.TabularInline):
    model = Grant
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "review_policy", "created_at")
    list_filter = ("kind", "review_policy")
    search_fields = ("name",)
    readonly_fields = ("identity",)
    inlines = [MembershipInline, GrantInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organisation", "role")
    list_filter = ("role", "organisation")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "organisation", "name", "scopes", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("organisation", "revoked_at")
    search_fields = ("prefix", "name")
    # Issue tokens with `issue_token` (or the web UI): only there is the secret shown, once.
    readonly_fields = ("prefix", "digest", "last_used_at", "last_used_ip", "created_at", "created_by")

    def has_add_permission(self, request):
        return False


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("title", "id", "is_public", "is_inbox", "last_added")
    search_fields = ("title",)
    readonly_fields = ("id", "last_added")
    inlines = [GrantInline]


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ("organisation", "collection", "can_read", "can_write", "tlp_ceiling")
    list_filter = ("collection", "tlp_ceiling")


@admin.register(CollectionEntry)
class CollectionEntryAdmin(admin.ModelAdmin):
    list_display = ("collection", "stix_object", "date_added", "submitted_by")
    list_filter = ("collection",)
    raw_id_fields = ("stix_object",)

    def has_change_permission(self, request, obj=None):
        return False


class SubmissionItemInline(admin.TabularInline):
    model = SubmissionItem
    extra = 0
    raw_id_fields = ("stix_object",)
    readonly_fields = ("position", "stix_id", "version", "state", "message", "decided_by", "decided_at")


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "organisation", "collection", "created_at", "completed_at")
    list_filter = ("organisation", "collection")
    inlines = [SubmissionItemInline]


@admin.register(SubmissionItem)
class SubmissionItemAdmin(admin.ModelAdmin):
    list_display = ("submission", "position", "stix_id", "state")
    list_filter = ("state",)
    raw_id_fields = ("stix_object", "submission")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_label", "action", "target_type", "target_id", "ip_address")
    list_filter = ("action",)
    search_fields = ("action", "actor_label", "target_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Created with `add_subscription`; here an operator pauses, re-times or re-schedules one.

    The token is never shown: neither its ciphertext nor (for token_env) the variable's value.
    """

    list_display = (
        "name",
        "collection",
        "is_active",
        "review",
        "last_success_at",
        "consecutive_failures",
        "objects_received",
        "next_poll_at",
    )
    list_filter = ("is_active", "review")
    search_fields = ("name", "discovery_url")
    exclude = ("token_ciphertext",)
    readonly_fields = (
        "name",
        "discovery_url",
        "api_root_url",
        "remote_collection_id",
        "token_env",
        "collection",
        "organisation",
        "review",
        "cursor_added_after",
        "last_success_at",
        "last_error",
        "last_error_at",
        "consecutive_failures",
        "objects_received",
        "lease_until",
        "created_at",
    )

    def has_add_permission(self, request):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by services only (the outbound payload is what was previewed and sent)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(FeedbackReport)
class FeedbackReportAdmin(ReadOnlyAdmin):
    list_display = (
        "indicator_stix_id",
        "subscription",
        "review_state",
        "count",
        "opinion",
        "status",
        "created_at",
    )
    list_filter = ("status", "review_state")
    search_fields = ("indicator_stix_id",)


@admin.register(ReceivedSighting)
class ReceivedSightingAdmin(ReadOnlyAdmin):
    list_display = ("indicator_stix_id", "organisation", "count", "last_seen", "review_state", "received_at")
    list_filter = ("review_state",)
    search_fields = ("indicator_stix_id", "sighting_id")


@admin.register(ReceivedOpinion)
class ReceivedOpinionAdmin(ReadOnlyAdmin):
    list_display = ("indicator_stix_id", "organisation", "opinion", "modified")
    list_filter = ("opinion",)
    search_fields = ("indicator_stix_id",)


@admin.register(RelayedSighting)
class RelayedSightingAdmin(ReadOnlyAdmin):
    list_display = ("indicator_stix_id", "sighting_id", "sighted_by_at_least", "revoked", "updated_at")
    list_filter = ("revoked",)
    search_fields = ("indicator_stix_id", "sighting_id")
