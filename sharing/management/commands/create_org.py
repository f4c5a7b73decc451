"""create_org NAME --kind lab|cloud|authority|hub [--trusted]"""

from sharing.management.base import MdxCommand
from sharing.models import Organisation
from sharing.services import organisation_create


class Command(MdxCommand):
    help = "Create an organisation and its STIX identity. Prints the identity id on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", required=True, help=" | ".join(Organisation.Kind.values))
        parser.add_argument("--trusted", action="store_true", help="publish its submissions without review")

    def run(self, *, name, kind, trusted, **_):
        org = organisation_create(name=name, kind=kind, trusted=trusted)
        self.stdout.write(f"Created {org.get_kind_display().lower()} {org.name!r} ({org.review_policy})")
        self.stdout.write(org.identity_id)
