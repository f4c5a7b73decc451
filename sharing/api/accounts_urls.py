"""REST API v1 routes for local accounts (node-private data; mounted under /api/v1/)."""

from django.urls import path

from sharing.api import accounts_api

urlpatterns = [
    path("accounts/import/", accounts_api.AccountImportApi.as_view(), name="account-import"),
]
