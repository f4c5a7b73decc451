"""load_knowledge_pack: publish the shipped seed pack into the public seed collection (idempotent)."""

from sharing.knowledge_pack import knowledge_pack_load
from sharing.management.base import MdxCommand


class Command(MdxCommand):
    help = "Load the public TLP:CLEAR seed knowledge pack into the public 'seed-public' collection."

    def run(self, **_):
        result = knowledge_pack_load()
        self.stdout.write(
            f"Knowledge pack: {result.objects} objects, {result.newly_published} newly published "
            f"in {result.collection.title!r}"
        )
        self.stdout.write(str(result.collection.pk))
