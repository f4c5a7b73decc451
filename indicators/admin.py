"""Admin for the STIX store and local accounts: read-only (versions are immutable, accounts imported)."""

from django.contrib import admin

from indicators.models import (
    Account,
    AccountApiKey,
    AccountClient,
    AccountIdentifier,
    AccountIp,
    AccountLshBand,
    AccountPayment,
    AccountPromptSignature,
    AccountTiming,
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
