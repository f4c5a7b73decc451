"""Forms of the web UI. Views validate with these, then call a service."""

from __future__ import annotations

from django import forms

from indicators.models import TLP_CHOICES
from sharing.models import ApiToken, Membership, Organisation

AGE_CHOICES = [("", "Any age"), ("1d", "Under a day"), ("7d", "1–7 days"), ("old", "Over 7 days")]


class QueueFilterForm(forms.Form):
    organisation = forms.ModelChoiceField(
        queryset=Organisation.objects.all(), required=False, empty_label="All organisations"
    )
    type = forms.ChoiceField(required=False)
    tlp = forms.ChoiceField(choices=[("", "Any TLP")] + TLP_CHOICES, required=False, label="TLP")
    age = forms.ChoiceField(choices=AGE_CHOICES, required=False)

    def __init__(self, *args, types: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [("", "All types")] + [(t, t) for t in types]


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=1000, strip=True)


class BulkDecisionForm(forms.Form):
    action = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    items = forms.TypedMultipleChoiceField(coerce=int, choices=())
    reason = forms.CharField(max_length=1000, required=False, strip=True)

    def __init__(self, *args, item_ids: list[int] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["items"].choices = [(i, i) for i in item_ids]

    def clean(self):
        data = super().clean()
        if data.get("action") == "reject" and not data.get("reason"):
            self.add_error("reason", "A reason is required to reject.")
        return data


class ObjectFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    type = forms.ChoiceField(required=False)
    tlp = forms.ChoiceField(choices=[("", "Any TLP")] + TLP_CHOICES, required=False, label="TLP")

    def __init__(self, *args, types: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [("", "All types")] + [(t, t) for t in types]


class OrganisationCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=Organisation.Kind.choices)
    review_policy = forms.ChoiceField(choices=Organisation.ReviewPolicy.choices)


class PolicyForm(forms.Form):
    review_policy = forms.ChoiceField(choices=Organisation.ReviewPolicy.choices)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, label="User name")
    role = forms.ChoiceField(choices=Membership.Role.choices)


class TokenIssueForm(forms.Form):
    organisation = forms.ModelChoiceField(queryset=Organisation.objects.all())
    name = forms.CharField(max_length=200, required=False)
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in ApiToken.SCOPES], widget=forms.CheckboxSelectMultiple, initial=["read"]
    )
    expires_days = forms.IntegerField(
        min_value=1, max_value=3650, required=False, label="Expires after (days)"
    )
    allowed_cidrs = forms.CharField(required=False, max_length=2000, label="Allowed CIDRs (comma-separated)")


class CollectionCreateForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tlp_ceiling = forms.ChoiceField(choices=TLP_CHOICES, initial="amber", label="TLP ceiling")
    is_public = forms.BooleanField(required=False, label="Public (TLP:CLEAR readable by everyone)")
    is_inbox = forms.BooleanField(
        required=False, label="Feedback inbox (members post sightings and opinions; only the hub reads)"
    )


class GrantForm(forms.Form):
    organisation = forms.ModelChoiceField(queryset=Organisation.objects.all())
    can_read = forms.BooleanField(required=False, initial=True, label="Read")
    can_write = forms.BooleanField(required=False, label="Write")
    tlp_ceiling = forms.ChoiceField(choices=TLP_CHOICES, initial="amber", label="TLP ceiling")


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False)
    actor = forms.CharField(required=False, max_length=200)
    organisation = forms.ModelChoiceField(
        queryset=Organisation.objects.all(), required=False, empty_label="All organisations"
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, actions: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "All actions")] + [(a, a) for a in actions]


class OtpTokenForm(forms.Form):
    otp_token = forms.RegexField(
        regex=r"^\d{6,8}$",
        label="Code",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        error_messages={"invalid": "Enter the 6-digit code from your authenticator app."},
    )
