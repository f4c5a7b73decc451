"""Role checks for the web UI: admin (everything), reviewer (queue, objects, audit), viewer (read-only)."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from sharing.models import Membership
from sharing.review import role_at_least

ADMIN = Membership.Role.ADMIN
REVIEWER = Membership.Role.REVIEWER
VIEWER = Membership.Role.VIEWER


def role_required(role: str):
    """Signed-in users with at least ``role``; anonymous users go to sign-in, others get 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not role_at_least(request.user, role):
                raise PermissionDenied(f"this page needs the {role} role")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
