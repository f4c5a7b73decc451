"""Admin for the STIX store: read-only, because versions are immutable."""

from django.contrib import admin

from indicators.models import StixObject


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
