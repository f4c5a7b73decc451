"""TOTP second factor for the web UI (django-otp).

After the password, a user with a confirmed TOTP device is sent to the code page until the
session is verified; with ``MDX_REQUIRE_ADMIN_OTP`` an admin without a device is sent to
enrol one. Only sign-out, the code and enrolment pages and static files stay reachable.
Token-authenticated TAXII and REST requests carry no session user and pass straight through.
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django_otp import user_has_device

from sharing.review import role_at_least

EXEMPT_PREFIXES = ("/static/", "/taxii2/", "/api/", "/healthz")


class SecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.path.startswith(EXEMPT_PREFIXES):
            target = self._redirect_for(request, user)
            if target and request.path not in {target, reverse("logout")}:
                return redirect(
                    f"{target}?next={request.get_full_path()}" if request.method == "GET" else target
                )
        return self.get_response(request)

    @staticmethod
    def _redirect_for(request, user) -> str | None:
        if user.is_verified():
            return None
        if user_has_device(user, confirmed=True):
            return reverse("web:otp-verify")
        if settings.MDX_REQUIRE_ADMIN_OTP and role_at_least(user, "admin"):
            return reverse("web:otp-setup")
        return None
