"""URL map: web UI, /healthz, Django admin, TAXII 2.1 (/taxii2/), REST API v1 (/api/v1/)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from sharing.web import views as web

urlpatterns = [
    path("", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("home/", web.home, name="home"),
    path("", include("sharing.web.urls")),
    path("healthz", web.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("taxii2/", include("sharing.taxii.urls")),
    path("api/v1/", include("sharing.api.urls")),
]
