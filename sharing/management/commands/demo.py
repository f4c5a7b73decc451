"""demo: everything `make run` needs — migrations, organisations, tokens, collections, seed pack,
users for each web role, and sample submissions waiting for review."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from indicators.cluster_service import LinkSummary, clusters_link
from indicators.models import Account
from sharing.demo_local import demo_local_data_load
from sharing.demo_submissions import demo_submissions_create
from sharing.knowledge_pack import knowledge_pack_load
from sharing.models import ApiToken, Collection, Membership, Organisation
from sharing.services import GrantSpec, collection_create, organisation_create, token_issue, token_revoke

DEMO_ORGS = [
    # (name, kind, trusted, scopes of its demo token)
    ("MDX Consortium Hub", "hub", True, "read,write,admin"),
    ("Aurora AI Lab", "lab", True, "read,write"),
    ("Borealis Research", "lab", False, "read,write"),
    ("Nimbus Cloud", "cloud", False, "read,write"),
]
MEMBERS = ["Aurora AI Lab", "Borealis Research", "Nimbus Cloud"]
DEMO_TOKEN_NAME = "demo"
# (user name, organisation, role) of the demo web users besides "admin".
DEMO_USERS = [
    ("reviewer", "MDX Consortium Hub", Membership.Role.REVIEWER),
    ("viewer", "MDX Consortium Hub", Membership.Role.VIEWER),
]


def _link_clusters() -> LinkSummary:
    """Hydra-cluster linking after the demo indicators have matched, so the planted cluster is a
    candidate on the first run (with a real broker, matching runs on the workers and the hourly
    link_clusters task marks it later).

    The synthetic accounts are dated (indicators.demo_accounts): linking runs as of the newest
    sign-up, so the rolling window covers them whatever day the demo first runs.
    """
    newest = Account.objects.aggregate(newest=Max("created_at"))["newest"]
    return clusters_link(min(newest, timezone.now()) if newest else None)


class Command(BaseCommand):
    help = "Set up a demo hub: migrations, organisations, tokens (shown once), collections, seed pack, admin."

    def add_arguments(self, parser):
        parser.add_argument("--no-migrate", action="store_true", help="skip running migrations first")

    def handle(self, *args, no_migrate=False, **options):
        if not no_migrate:
            call_command("migrate", interactive=False, verbosity=0)
        with transaction.atomic():
            orgs = self._organisations()
            self._collections(orgs)
            pack = knowledge_pack_load()
            tokens = self._tokens(orgs)
            password = self._admin(orgs["MDX Consortium Hub"])
            users = [(name, role, self._user(name, orgs[org], role)) for name, org, role in DEMO_USERS]
            pending = demo_submissions_create()
        local = None
        if settings.MDX_KEYRING is not None:  # a node without keys has no local account data
            local = demo_local_data_load(
                keyring=settings.MDX_KEYRING,
                publisher=orgs["Aurora AI Lab"],
                collection=Collection.objects.get(title="consortium-indicators"),
            )
            linked = _link_clusters()
        w = self.stdout.write
        w(self.style.SUCCESS("MDX Hub demo data is ready."))
        w(f"Seed pack: {pack.objects} objects in collection {pack.collection.title!r} ({pack.collection.pk})")
        for collection in Collection.objects.order_by("title"):
            w(f"Collection {collection.title!r}: {collection.pk}")
        w("API tokens (shown once; earlier demo tokens are revoked):")
        for name, plaintext in tokens:
            w(f"  {name:<20} {plaintext}")
        if pending:
            w(f"Sample submissions from Borealis Research waiting for review: {pending}")
        if local is not None:
            w(
                f"Local data: {local.accounts} synthetic accounts (one planted hydra cluster), "
                f"{local.indicators} demo indicators, {local.matches} matches, {local.alerts} alerts"
            )
            if not linked.skipped:
                w(f"Hydra clusters: {linked.clusters} linked, {linked.candidates} candidate(s) for review")
        else:
            w("Local data: skipped (no keyring; set MDX_KEYRING or MDX_KEYRING_FILE to import accounts)")
        w("Web UI users (passwords shown once; each run sets new ones):")
        w(f"  {'admin':<10} admin     {password}")
        for name, role, user_password in users:
            w(f"  {name:<10} {role:<9} {user_password}")
        w(f"Web UI: http://127.0.0.1:8000/  — sign in as 'admin' with password: {password}")
        w("TAXII discovery: http://127.0.0.1:8000/taxii2/  (Authorization: Bearer <token>)")

    def _organisations(self) -> dict[str, Organisation]:
        orgs = {}
        for name, kind, trusted, _ in DEMO_ORGS:
            orgs[name] = Organisation.objects.filter(name=name).first() or organisation_create(
                name=name, kind=kind, trusted=trusted
            )
        return orgs

    def _collections(self, orgs: dict[str, Organisation]) -> None:
        hub = orgs["MDX Consortium Hub"]
        specs = [
            (
                "consortium-indicators",
                "AMBER indicators shared between members; members read and write.",
                [GrantSpec(hub, True, True)] + [GrantSpec(orgs[m], True, True) for m in MEMBERS],
                "amber",
            ),
            (
                "sightings-inbox",
                "Count-only sightings and opinions; members write, only the hub reads.",
                [GrantSpec(hub, True, False)] + [GrantSpec(orgs[m], False, True) for m in MEMBERS],
                "amber+strict",
            ),
            (
                "hub-aggregates",
                "Aggregated sightings relayed by the hub under its own identity.",
                [GrantSpec(hub, True, True)] + [GrantSpec(orgs[m], True, False) for m in MEMBERS],
                "amber",
            ),
        ]
        for title, description, grants, ceiling in specs:
            if not Collection.objects.filter(title=title).exists():
                collection_create(
                    title=title, description=description, grants=grants, tlp_ceiling=ceiling,
                    is_inbox=title == "sightings-inbox",
                )  # fmt: skip
        # Demo databases made before inboxes existed: the inbox is write-only for members.
        Collection.objects.filter(title="sightings-inbox").update(is_inbox=True)

    def _tokens(self, orgs: dict[str, Organisation]) -> list[tuple[str, str]]:
        issued = []
        for name, _, _, scopes in DEMO_ORGS:
            for old in ApiToken.objects.filter(
                organisation=orgs[name], name=DEMO_TOKEN_NAME, revoked_at=None
            ):
                token_revoke(token=old)
            _, plaintext = token_issue(organisation=orgs[name], scopes=scopes, name=DEMO_TOKEN_NAME)
            issued.append((name, plaintext))
        return issued

    def _admin(self, hub: Organisation) -> str:
        password = secrets.token_urlsafe(12)
        User = get_user_model()
        user = User.objects.filter(username="admin").first() or User(
            username="admin", email="admin@example.invalid"
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        Membership.objects.update_or_create(
            user=user, organisation=hub, defaults={"role": Membership.Role.ADMIN}
        )
        return password

    def _user(self, username: str, organisation: Organisation, role: str) -> str:
        password = secrets.token_urlsafe(12)
        User = get_user_model()
        user = User.objects.filter(username=username).first() or User(username=username)
        user.set_password(password)
        user.save()
        Membership.objects.update_or_create(user=user, organisation=organisation, defaults={"role": role})
        return password
