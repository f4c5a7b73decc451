"""Administration pages: organisations and members, API tokens, collections and grants, audit log."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from sharing.models import ApiToken, AuditEvent, Collection, Membership, Organisation
from sharing.selectors import collections_visible_to
from sharing.services import (
    ServiceError,
    collection_create,
    grant_set,
    organisation_create,
    token_issue,
    token_revoke,
)
from sharing.web.forms import (
    AuditFilterForm,
    CollectionCreateForm,
    GrantForm,
    MemberForm,
    OrganisationCreateForm,
    PolicyForm,
    TokenIssueForm,
)
from sharing.web.permissions import ADMIN, REVIEWER, VIEWER, role_required
from sharing.web.services import membership_remove, membership_set, organisation_policy_set

AUDIT_PAGE = 50


def _form_errors(request: HttpRequest, form) -> None:
    for field, errors in form.errors.items():
        label = (form.fields[field].label or field.replace("_", " ")) if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label.capitalize()}: {error}" if label else error)


# --- Organisations --------------------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def organisations(request: HttpRequest) -> HttpResponse:
    orgs = Organisation.objects.annotate(
        member_count=Count("memberships", distinct=True),
        token_count=Count("tokens", filter=Q(tokens__revoked_at=None), distinct=True),
        submission_count=Count("submissions", distinct=True),
    )
    return render(
        request, "web/organisations.html", {"organisations": orgs, "form": OrganisationCreateForm()}
    )


@require_POST
@role_required(ADMIN)
def organisation_create_view(request: HttpRequest) -> HttpResponse:
    form = OrganisationCreateForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("web:organisations")
    try:
        org = organisation_create(
            name=form.cleaned_data["name"],
            kind=form.cleaned_data["kind"],
            trusted=form.cleaned_data["review_policy"] == Organisation.ReviewPolicy.TRUSTED,
            user=request.user,
        )
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("web:organisations")
    messages.success(request, f"Created {org.name}.")
    return redirect("web:organisation", org.pk)


@require_GET
@role_required(VIEWER)
def organisation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    org = get_object_or_404(Organisation, pk=pk)
    context = {
        "org": org,
        "members": org.memberships.select_related("user").order_by("user__username"),
        "access": collections_visible_to(org),
        "tokens": org.tokens.all()[:20],
        "policy_form": PolicyForm(initial={"review_policy": org.review_policy}),
        "member_form": MemberForm(initial={"role": Membership.Role.VIEWER}),
        "recent_submissions": org.submissions.select_related("collection")[:10],
    }
    return render(request, "web/organisation.html", context)


@require_POST
@role_required(ADMIN)
def organisation_policy(request: HttpRequest, pk: int) -> HttpResponse:
    org = get_object_or_404(Organisation, pk=pk)
    form = PolicyForm(request.POST)
    if form.is_valid():
        organisation_policy_set(
            organisation=org, review_policy=form.cleaned_data["review_policy"], user=request.user
        )
        messages.success(request, f"{org.name}: {org.get_review_policy_display().lower()}.")
    else:
        _form_errors(request, form)
    return redirect("web:organisation", org.pk)


@never_cache
@require_POST
@role_required(ADMIN)
def organisation_member_add(request: HttpRequest, pk: int) -> HttpResponse:
    org = get_object_or_404(Organisation, pk=pk)
    form = MemberForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("web:organisation", org.pk)
    try:
        membership, password = membership_set(
            organisation=org,
            username=form.cleaned_data["username"],
            role=form.cleaned_data["role"],
            user=request.user,
        )
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("web:organisation", org.pk)
    if password:
        # Rendered, not redirected: the new user's password is shown this once and stored nowhere.
        return render(
            request,
            "web/secret_once.html",
            {
                "title": f"New user {membership.user.get_username()}",
                "lead": (
                    f"{membership.user.get_username()} is now a "
                    f"{membership.get_role_display().lower()} of {org.name}."
                ),
                "secret_label": "Initial password",
                "secret": password,
                "back": ("web:organisation", org.pk),
            },
        )
    messages.success(
        request, f"{membership.user.get_username()} is now a {membership.get_role_display().lower()}."
    )
    return redirect("web:organisation", org.pk)


@require_POST
@role_required(ADMIN)
def organisation_member_remove(request: HttpRequest, pk: int, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related("user", "organisation"), pk=membership_id, organisation_id=pk
    )
    membership_remove(membership=membership, user=request.user)
    messages.success(
        request, f"Removed {membership.user.get_username()} from {membership.organisation.name}."
    )
    return redirect("web:organisation", pk)


# --- Tokens ---------------------------------------------------------------------------------------


@require_GET
@role_required(ADMIN)
def tokens(request: HttpRequest) -> HttpResponse:
    rows = ApiToken.objects.select_related("organisation", "created_by").order_by("revoked_at", "-created_at")
    return render(request, "web/tokens.html", {"tokens": rows, "form": TokenIssueForm()})


@never_cache
@require_POST
@role_required(ADMIN)
def token_issue_view(request: HttpRequest) -> HttpResponse:
    form = TokenIssueForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("web:tokens")
    data = form.cleaned_data
    try:
        token, plaintext = token_issue(
            organisation=data["organisation"],
            scopes=list(data["scopes"]),
            expires_days=data.get("expires_days"),
            allowed_cidrs=data.get("allowed_cidrs") or "",
            name=data.get("name") or "",
            user=request.user,
        )
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("web:tokens")
    return render(
        request,
        "web/secret_once.html",
        {
            "title": "Token issued",
            "lead": f"Token {token.prefix}… for {token.organisation.name} (scopes: {token.scopes}).",
            "secret_label": "Token",
            "secret": plaintext,
            "back": ("web:tokens",),
        },
    )


@require_POST
@role_required(ADMIN)
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken.objects.select_related("organisation"), pk=pk)
    token_revoke(token=token, user=request.user)
    messages.success(request, f"Revoked token {token.prefix}… of {token.organisation.name}.")
    return redirect("web:tokens")


# --- Collections and grants -----------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def collections(request: HttpRequest) -> HttpResponse:
    rows = Collection.objects.annotate(
        entry_count=Count("entries", distinct=True), grant_count=Count("grants", distinct=True)
    ).prefetch_related("grants__organisation")
    return render(request, "web/collections.html", {"collections": rows, "form": CollectionCreateForm()})


@require_POST
@role_required(ADMIN)
def collection_create_view(request: HttpRequest) -> HttpResponse:
    form = CollectionCreateForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("web:collections")
    data = form.cleaned_data
    try:
        collection = collection_create(
            title=data["title"],
            description=data.get("description") or "",
            tlp_ceiling=data["tlp_ceiling"],
            is_public=data.get("is_public", False),
            is_inbox=data.get("is_inbox", False),
            grants=[],
            user=request.user,
        )
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("web:collections")
    messages.success(request, f"Created collection {collection.title}. Now grant organisations access.")
    return redirect("web:collection", collection.pk)


@require_GET
@role_required(VIEWER)
def collection_detail(request: HttpRequest, pk) -> HttpResponse:
    collection = get_object_or_404(Collection, pk=pk)
    context = {
        "collection": collection,
        "grants": collection.grants.select_related("organisation").order_by("organisation__name"),
        "entry_count": collection.entries.count(),
        "recent_entries": collection.entries.select_related("stix_object", "submitted_by").order_by(
            "-date_added"
        )[:15],
        "form": GrantForm(),
    }
    return render(request, "web/collection.html", context)


@require_POST
@role_required(ADMIN)
def collection_grant(request: HttpRequest, pk) -> HttpResponse:
    collection = get_object_or_404(Collection, pk=pk)
    form = GrantForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("web:collection", collection.pk)
    data = form.cleaned_data
    try:
        grant_set(
            organisation=data["organisation"],
            collection=collection,
            can_read=data["can_read"],
            can_write=data["can_write"],
            tlp_ceiling=data["tlp_ceiling"],
            user=request.user,
        )
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Grant for {data['organisation'].name} saved.")
    return redirect("web:collection", collection.pk)


# --- Audit log ------------------------------------------------------------------------------------


@require_GET
@role_required(REVIEWER)
def audit_log(request: HttpRequest) -> HttpResponse:
    actions = list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())
    form = AuditFilterForm(request.GET or None, actions=actions)
    events = AuditEvent.objects.all()
    if form.is_valid():
        data = form.cleaned_data
        if data.get("action"):
            events = events.filter(action=data["action"])
        if data.get("actor"):
            events = events.filter(actor_label__icontains=data["actor"])
        if data.get("organisation"):
            events = events.filter(organisation=data["organisation"])
        if data.get("since"):
            events = events.filter(created_at__date__gte=data["since"])
        if data.get("until"):
            events = events.filter(created_at__date__lte=data["until"])
    orgs = dict(Organisation.objects.values_list("pk", "name"))
    page = Paginator(events, AUDIT_PAGE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    rows = [(event, orgs.get(event.organisation_id, "")) for event in page]
    return render(
        request, "web/audit.html", {"form": form, "page": page, "rows": rows, "query": params.urlencode()}
    )
