"""Who may do what in the web UI: roles, sign-in, CSRF on every form, four-eyes, lockout, TOTP."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from sharing.models import ApiToken, AuditEvent, SubmissionItem
from tests.stix_builders import make_indicator
from tests.web.conftest import PASSWORD


@pytest.fixture
def pending(submit):
    """A submission of two indicators from the review-policy partner, both pending."""
    return submit([make_indicator(name="one"), make_indicator(name="two")])


def _item(submission, position=0) -> SubmissionItem:
    return submission.items.get(position=position)


# --- Roles ----------------------------------------------------------------------------------------


def test_viewer_cannot_approve_or_reject(web, pending, client_for):
    client = client_for(web.viewer)
    item = _item(pending)
    assert client.post(reverse("web:item-approve", args=[item.pk])).status_code == 403
    assert client.post(reverse("web:item-reject", args=[item.pk]), {"reason": "no"}).status_code == 403
    assert client.post(reverse("web:submission-approve", args=[pending.pk])).status_code == 403
    response = client.post(reverse("web:queue-bulk"), {"action": "approve", "items": [item.pk]})
    assert response.status_code == 403
    assert set(pending.items.values_list("state", flat=True)) == {"pending"}


def test_viewer_sees_the_queue_without_decision_buttons(web, pending, client_for):
    client = client_for(web.viewer)
    queue = client.get(reverse("web:queue"))
    assert queue.status_code == 200 and b"one" in queue.content
    assert b"Approve selected" not in queue.content
    page = client.get(reverse("web:submission", args=[pending.pk]))
    assert page.status_code == 200 and b">Approve</button>" not in page.content


def test_viewer_cannot_read_the_audit_log(web, client_for):
    assert client_for(web.viewer).get(reverse("web:audit")).status_code == 403


def test_reviewer_cannot_manage_tokens(web, client_for):
    client = client_for(web.reviewer)
    assert client.get(reverse("web:tokens")).status_code == 403
    issued = client.post(reverse("web:token-issue"), {"organisation": web.partner.pk, "scopes": ["read"]})
    assert issued.status_code == 403
    revoked = client.post(reverse("web:token-revoke", args=[web.partner_token.pk]))
    assert revoked.status_code == 403
    assert ApiToken.objects.count() == 1
    assert ApiToken.objects.get().revoked_at is None
    assert b'href="/tokens/"' not in client.get(reverse("home")).content  # not even in the navigation


def test_reviewer_cannot_manage_organisations_or_collections(web, client_for):
    client = client_for(web.reviewer)
    assert (
        client.post(
            reverse("web:organisation-create"), {"name": "X", "kind": "lab", "review_policy": "review"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("web:organisation-policy", args=[web.partner.pk]), {"review_policy": "trusted"}
        ).status_code
        == 403
    )
    assert (
        client.post(reverse("web:collection-create"), {"title": "new", "tlp_ceiling": "amber"}).status_code
        == 403
    )
    web.partner.refresh_from_db()
    assert web.partner.review_policy == "review"


def test_reviewer_can_approve_and_the_decision_is_audited(web, pending, client_for):
    client = client_for(web.reviewer)
    item = _item(pending)
    response = client.post(reverse("web:item-approve", args=[item.pk]))
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.state == "success" and item.decided_by == web.reviewer
    event = AuditEvent.objects.get(action="submission.approve")
    assert event.actor_user_id == web.reviewer.pk and event.target_id == item.stix_id


def test_admin_manages_tokens_and_the_plaintext_is_shown_once(web, client_for):
    client = client_for(web.admin_user)
    response = client.post(
        reverse("web:token-issue"),
        {"organisation": web.partner.pk, "scopes": ["read"], "name": "feed reader"},
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(name="feed reader")
    assert token.prefix.encode() in response.content
    assert AuditEvent.objects.filter(action="token.issue", actor_user=web.admin_user).exists()
    assert client.post(reverse("web:token-revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke", actor_user=web.admin_user).exists()


def test_a_user_without_membership_sees_nothing(client_for, django_user_model, db):
    client = client_for(django_user_model.objects.create_user("nobody", password=PASSWORD))
    assert b"not a member" in client.get(reverse("home")).content
    assert client.get(reverse("web:queue")).status_code == 403


def test_superusers_are_admins(web, client_for, django_user_model):
    root = django_user_model.objects.create_superuser("root", password=PASSWORD)
    assert client_for(root).get(reverse("web:tokens")).status_code == 200


def _web_urls(web, pending) -> list[tuple[str, str]]:
    """(name, url) of every route in sharing.web.urls, with sample arguments."""
    from sharing.models import Membership
    from sharing.web import urls

    item = _item(pending)
    membership = Membership.objects.filter(organisation=web.partner).first()
    args = {
        "submission": [pending.pk],
        "submission-approve": [pending.pk],
        "submission-reject": [pending.pk],
        "item-approve": [item.pk],
        "item-reject": [item.pk],
        "object-detail": [item.stix_object_id],
        "organisation": [web.partner.pk],
        "organisation-policy": [web.partner.pk],
        "organisation-member-add": [web.partner.pk],
        "organisation-member-remove": [web.partner.pk, membership.pk],
        "token-revoke": [web.partner_token.pk],
        "collection": [web.feed.pk],
        "collection-grant": [web.feed.pk],
        # Anonymous users and CSRF failures are turned away before any lookup: any pk will do.
        "alert": [1],
        "alert-decide": [1],
        "account": [1],
        "subscription-poll": [1],
        "feedback-report": [1],
        "feedback-report-send": [1],
        "feedback-report-discard": [1],
        "object-release": [1],
        "cluster": [1],
        "cluster-review": [1],
        "cluster-report": [1],
    }
    names = [p.name for p in urls.urlpatterns if isinstance(p, URLPattern)]
    return [(name, reverse(f"web:{name}", args=args.get(name, []))) for name in names]


GET_PAGES = {
    "queue",
    "submission",
    "objects",
    "object-detail",
    "organisations",
    "organisation",
    "tokens",
    "collections",
    "collection",
    "audit",
    "otp-setup",
    "otp-verify",
    "alerts",
    "alert",
    "account",
    "subscriptions",
    "feedback",
    "feedback-new",
    "feedback-originated",
    "feedback-report",
    "clusters",
    "cluster",
}
# Every route that accepts a POST (a form). A new form route must be added here, or the
# coverage check below fails: CSRF is then tested for it too.
FORM_ROUTES = {
    "queue-bulk",
    "submission-approve",
    "submission-reject",
    "item-approve",
    "item-reject",
    "organisation-create",
    "organisation-policy",
    "organisation-member-add",
    "organisation-member-remove",
    "token-issue",
    "token-revoke",
    "collection-create",
    "collection-grant",
    "otp-setup",
    "otp-verify",
    "alert-decide",
    "subscription-poll",
    "feedback-new",
    "feedback-report-send",
    "feedback-report-discard",
    "object-release",
    "cluster-review",
    "cluster-report",
}


def test_every_route_is_classified_as_a_page_or_a_form(web, pending):
    names = {name for name, _ in _web_urls(web, pending)}
    assert names == GET_PAGES | FORM_ROUTES


def test_anonymous_users_are_sent_to_sign_in(web, pending, client):
    for name, url in [("home", reverse("home"))] + _web_urls(web, pending):
        response = client.post(url) if name in FORM_ROUTES - GET_PAGES else client.get(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login") + "?next="), name


def test_every_form_enforces_csrf(web, pending):
    client = Client(enforce_csrf_checks=True)
    client.force_login(web.admin_user)
    routes = [(n, u) for n, u in _web_urls(web, pending) if n in FORM_ROUTES]
    routes += [("login", reverse("login")), ("logout", reverse("logout"))]
    for name, url in routes:
        response = client.post(url, {"reason": "r", "action": "approve", "username": "x", "password": "y"})
        assert response.status_code == 403, name
    assert set(pending.items.values_list("state", flat=True)) == {"pending"}


def test_forms_carry_a_csrf_token(web, pending, client_for):
    client = client_for(web.admin_user)
    for name in [
        "queue",
        "submission",
        "organisations",
        "organisation",
        "tokens",
        "collections",
        "collection",
        "alerts",
        "subscriptions",
        "feedback",
    ]:
        url = dict(_web_urls(web, pending))[name]
        content = client.get(url).content
        assert content.count(b'<form method="post"') <= content.count(b"csrfmiddlewaretoken"), name


# --- Four-eyes ------------------------------------------------------------------------------------


def test_four_eyes_stops_a_reviewer_approving_their_own_organisation(web, pending, client_for, settings):
    settings.MDX_FOUR_EYES = True
    client = client_for(web.partner_reviewer)
    item = _item(pending)
    page = client.get(reverse("web:submission", args=[pending.pk]))
    assert b"Four-eyes review" in page.content
    client.post(reverse("web:item-approve", args=[item.pk]))
    client.post(reverse("web:submission-approve", args=[pending.pk]))
    client.post(reverse("web:queue-bulk"), {"action": "approve", "items": [item.pk]})
    assert set(pending.items.values_list("state", flat=True)) == {"pending"}
    # Rejecting is not approving: the submitter's own reviewer may withdraw it.
    client.post(reverse("web:item-reject", args=[item.pk]), {"reason": "sent by mistake"})
    item.refresh_from_db()
    assert item.state == "failure"
    # Another organisation's reviewer may approve.
    client_for(web.reviewer).post(reverse("web:item-approve", args=[_item(pending, 1).pk]))
    assert _item(pending, 1).state == "success"


def test_without_four_eyes_a_member_may_approve_their_own(web, pending, client_for, settings):
    settings.MDX_FOUR_EYES = False
    client_for(web.partner_reviewer).post(reverse("web:submission-approve", args=[pending.pk]))
    assert set(pending.items.values_list("state", flat=True)) == {"success"}


# --- Lockout and second factor --------------------------------------------------------------------


def test_sign_in_locks_after_five_failures(web, client):
    for _ in range(5):
        response = client.post(reverse("login"), {"username": "rey", "password": "wrong"})
    assert response.status_code in (403, 429)
    locked = client.post(reverse("login"), {"username": "rey", "password": PASSWORD})
    assert locked.status_code in (403, 429) and b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in client.session
    # Another user from the same address is not locked out.
    other = client.post(reverse("login"), {"username": "ada", "password": PASSWORD})
    assert other.status_code == 302


def test_a_successful_sign_in_resets_the_failure_count(web, client):
    for _ in range(4):
        client.post(reverse("login"), {"username": "rey", "password": "wrong"})
    assert client.post(reverse("login"), {"username": "rey", "password": PASSWORD}).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        client.post(reverse("login"), {"username": "rey", "password": "wrong"})
    assert client.post(reverse("login"), {"username": "rey", "password": PASSWORD}).status_code == 302


def _totp(device) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def test_a_user_with_a_totp_device_must_enter_the_code(web, client):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=web.admin_user, name="phone", confirmed=True)
    assert client.post(reverse("login"), {"username": "ada", "password": PASSWORD}).status_code == 302
    response = client.get(reverse("web:tokens"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("web:otp-verify"))
    bad = client.post(
        reverse("web:otp-verify"), {"otp_token": "000000" if _totp(device) != "000000" else "111111"}
    )
    assert bad.status_code == 200 and b"not valid" in bad.content
    device.refresh_from_db()
    device.throttle_reset()  # django-otp delays the next try after a failure
    good = client.post(reverse("web:otp-verify"), {"otp_token": _totp(device), "next": reverse("web:tokens")})
    assert good.status_code == 302 and good["Location"] == reverse("web:tokens")
    assert client.get(reverse("web:tokens")).status_code == 200


def test_required_admin_otp_sends_admins_to_enrol(web, client_for, settings):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.MDX_REQUIRE_ADMIN_OTP = True
    client = client_for(web.admin_user)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("web:otp-setup"))
    page = client.get(reverse("web:otp-setup"))
    assert page.status_code == 200 and b"<svg" in page.content
    device = TOTPDevice.objects.get(user=web.admin_user, confirmed=False)
    assert client.post(reverse("web:otp-setup"), {"otp_token": _totp(device)}).status_code == 302
    assert client.get(reverse("home")).status_code == 200
    assert AuditEvent.objects.filter(action="account.otp.enrol").exists()
    # Reviewers are not forced to enrol.
    assert client_for(web.reviewer).get(reverse("home")).status_code == 200
