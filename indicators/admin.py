"""Admin for the STIX store and local accounts: read-only (versions are immutable, accounts imported)."""

from django.contrib import admin

from indicators.models import (
    Account,
    AccountApiKey,
    AccountClient,
    AccountCluster,
    AccountClusterMember,
    AccountIdentifier,
    AccountIp,
    AccountLshBand,
    AccountPayment,
    AccountPromptSignature,
    AccountTiming,
    Alert,
    IndicatorMatchState,
    Match,
    MatchingCursor,
    MatchJob,
    StixObject,
)


@admin.register(StixObject)
class StixObjectAdmin(admin.ModelAdmin):
    list_display = ("stix_id", "type", "modified", "tlp", "revoked", "created_by_ref")
    list_filter = ("type", "tlp", "revoked")
    search_fields = ("stix_id", "name")
    date_hierarchy = "modified"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class _AttributeInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


class IdentifierInline(_AttributeInline):
    model = AccountIdentifier


class PaymentInline(_AttributeInline):
    model = AccountPayment


class IpInline(_AttributeInline):
    model = AccountIp
    exclude = ("ip_low", "ip_high")


class ClientInline(_AttributeInline):
    model = AccountClient


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    """Local customer accounts: imported with `import_accounts`, so read-only here."""

    list_display = ("account_id", "tier", "status", "signup_country", "created_at", "changed_at")
    list_filter = ("tier", "status", "access_channel")
    search_fields = ("account_id", "pseudonym")
    inlines = [IdentifierInline, PaymentInline, IpInline, ClientInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(
    AccountIdentifier,
    AccountPayment,
    AccountApiKey,
    AccountClient,
    AccountPromptSignature,
    AccountLshBand,
    AccountTiming,
)
class AccountAttributeAdmin(admin.ModelAdmin):
    raw_id_fields = ("account",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AccountIp)
class AccountIpAdmin(AccountAttributeAdmin):
    list_display = ("ip", "account", "asn", "proxy_type", "is_signup", "last_seen")
    exclude = ("ip_low", "ip_high")


# --- Local matching results: written by the matcher, decided through the review UI / API. -----


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Match)
class MatchAdmin(_ReadOnlyAdmin):
    list_display = ("indicator", "account", "kind", "weight", "matched_at")
    list_filter = ("kind",)
    raw_id_fields = ("indicator", "account")
    list_select_related = ("indicator", "account")


@admin.register(Alert)
class AlertAdmin(_ReadOnlyAdmin):
    list_display = ("pk", "account", "score", "status", "reviewer", "updated_at")
    list_filter = ("status",)
    raw_id_fields = ("account", "reviewer")
    list_select_related = ("account", "reviewer")


@admin.register(IndicatorMatchState)
class IndicatorMatchStateAdmin(_ReadOnlyAdmin):
    list_display = ("indicator", "status", "matched_count", "last_run_at")
    list_filter = ("status",)
    raw_id_fields = ("indicator",)
    list_select_related = ("indicator",)


@admin.register(MatchJob)
class MatchJobAdmin(_ReadOnlyAdmin):
    list_display = ("pk", "label", "status", "low_pk", "high_pk", "attempts", "matched", "finished_at")
    list_filter = ("status",)


@admin.register(MatchingCursor)
class MatchingCursorAdmin(_ReadOnlyAdmin):
    list_display = ("name", "value")


@admin.register(AccountCluster)
class AccountClusterAdmin(_ReadOnlyAdmin):
    list_display = ("pk", "size", "is_candidate", "status", "indicator_hits", "reviewer", "updated_at")
    list_filter = ("is_candidate", "status")
    raw_id_fields = ("reviewer",)
    list_select_related = ("reviewer",)


@admin.register(AccountClusterMember)
class AccountClusterMemberAdmin(_ReadOnlyAdmin):
    list_display = ("cluster", "account")
    raw_id_fields = ("cluster", "account")
    list_select_related = ("cluster", "account")
