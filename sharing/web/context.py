"""Template context for every page: the signed-in user's role and the navigation it allows."""

from __future__ import annotations

from django.conf import settings

from sharing.review import ROLE_ORDER, user_role


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    role = user_role(user) if user is not None else None
    rank = ROLE_ORDER.get(role, 0)
    return {
        "mdx_role": role or "",
        "mdx_is_admin": rank >= 3,
        "mdx_is_reviewer": rank >= 2,
        "mdx_is_viewer": rank >= 1,
        "mdx_node_name": settings.MDX_NODE_NAME,
        "mdx_four_eyes": settings.MDX_FOUR_EYES,
    }
