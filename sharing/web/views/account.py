"""The signed-in user's own security: TOTP enrolment and the second sign-in step (django-otp)."""

from __future__ import annotations

import base64
from io import BytesIO

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from sharing.net import client_ip
from sharing.services import audit_record
from sharing.web.forms import OtpTokenForm


def _qr_svg(data: str) -> str:
    """The otpauth:// URL as an inline SVG QR code (no image request, nothing external)."""
    try:
        import qrcode
        import qrcode.image.svg
    except ImportError:  # qrcode is optional: the secret is also shown as text
        return ""
    buffer = BytesIO()
    qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).save(buffer)
    svg = buffer.getvalue().decode()
    return svg[svg.index("<svg") :]


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/home/"


@never_cache
@login_required
def otp_verify(request: HttpRequest) -> HttpResponse:
    """Second step of sign-in: the code from the user's confirmed TOTP device."""
    if request.user.is_verified() or not user_has_device(request.user, confirmed=True):
        return redirect(_safe_next(request))
    form = OtpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for device in TOTPDevice.objects.devices_for_user(request.user, confirmed=True):
            if device.verify_token(form.cleaned_data["otp_token"]):
                otp_login(request, device)
                audit_record("account.otp.verify", user=request.user, ip_address=client_ip(request))
                return redirect(_safe_next(request))
        audit_record("account.otp.failure", user=request.user, ip_address=client_ip(request))
        form.add_error("otp_token", "That code is not valid. Try the current one.")
    return render(request, "web/otp_verify.html", {"form": form, "next": _safe_next(request)})


@never_cache
@login_required
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Enrol (or remove) a TOTP authenticator for the signed-in user."""
    user = request.user
    confirmed = TOTPDevice.objects.devices_for_user(user, confirmed=True).first()
    if request.method == "POST" and request.POST.get("action") == "remove" and confirmed is not None:
        if not user.is_verified():
            messages.error(request, "Verify with a code before removing your authenticator.")
            return redirect("web:otp-setup")
        TOTPDevice.objects.filter(user=user).delete()
        audit_record("account.otp.remove", user=user, ip_address=client_ip(request))
        messages.success(request, "The authenticator was removed; sign-in asks for your password only.")
        return redirect("web:otp-setup")
    if confirmed is not None:
        return render(request, "web/otp_setup.html", {"confirmed": confirmed})
    with transaction.atomic():
        device = TOTPDevice.objects.filter(user=user, confirmed=False).first() or TOTPDevice.objects.create(
            user=user, name="authenticator", confirmed=False
        )
    form = OtpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["otp_token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            audit_record("account.otp.enrol", user=user, ip_address=client_ip(request))
            messages.success(request, "Authenticator enrolled: sign-in will ask for a code from now on.")
            return redirect("web:otp-setup")
        form.add_error("otp_token", "That code is not valid. Check the clock of your device and try again.")
    context = {
        "form": form,
        "qr": mark_safe(_qr_svg(device.config_url)),
        "secret_b32": base64.b32encode(device.bin_key).decode().rstrip("="),
    }
    return render(request, "web/otp_setup.html", context)
