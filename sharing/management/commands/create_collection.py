"""create_collection TITLE [--description D] --grant "ORG:r|w|rw" [...] [--tlp-ceiling LEVEL]
[--public | --inbox]"""

from indicators.models import TLP_LEVELS
from sharing.management.base import MdxCommand
from sharing.services import ServiceError, collection_create, parse_grant


class Command(MdxCommand):
    help = "Create a TAXII collection with grants. Prints the collection id alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("title")
        parser.add_argument("--description", default="")
        parser.add_argument("--grant", action="append", default=[], help='"ORG:r", "ORG:w" or "ORG:rw"')
        parser.add_argument("--tlp-ceiling", default="amber", help=" | ".join(TLP_LEVELS))
        parser.add_argument(
            "--public", action="store_true", help="readable (TLP:CLEAR only) by every organisation"
        )
        parser.add_argument(
            "--inbox",
            action="store_true",
            help="a feedback inbox: granted members post sightings and opinions, only the operator reads",
        )

    def run(self, *, title, description, grant, tlp_ceiling, public, inbox, **_):
        if not grant and not public:
            raise ServiceError("at least one --grant ORG:r|w|rw is required (or --public)")
        grants = [parse_grant(spec) for spec in grant]
        collection = collection_create(
            title=title,
            description=description,
            grants=grants,
            tlp_ceiling=tlp_ceiling,
            is_public=public,
            is_inbox=inbox,
        )
        self.stdout.write(f"Created collection {collection.title!r} with {len(grants)} grant(s)")
        self.stdout.write(str(collection.pk))
