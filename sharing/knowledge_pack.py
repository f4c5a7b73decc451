"""The public seed knowledge pack (DOMAIN.md §5), shipped inside the package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import indicators
from indicators.stix import TLP_MARKING_OBJECTS, StixError, objects_from_envelope, parse_object
from sharing.models import Collection
from sharing.services import ServiceError, collection_create, objects_publish

PACK_PATH = Path(indicators.__file__).resolve().parent / "data" / "seed-knowledge-pack.json"
SEED_COLLECTION_TITLE = "seed-public"
SEED_COLLECTION_DESCRIPTION = (
    "MDX seed knowledge pack: TLP:CLEAR context from public reporting on model-distillation "
    "campaigns (campaigns, alleged operators, techniques, mitigations). Readable by every member."
)


@dataclass(frozen=True)
class PackLoad:
    collection: Collection
    objects: int
    newly_published: int


def knowledge_pack_load(*, path: Path = PACK_PATH) -> PackLoad:
    """Validate the pack and publish it into the public seed collection. Idempotent."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        # The TLP 2.0 definitions ride along so every marking the pack references resolves.
        objects = [parse_object(o, index=i) for i, o in enumerate(objects_from_envelope(raw))]
    except (OSError, ValueError, StixError) as exc:
        raise ServiceError(f"knowledge pack {path}: {exc}") from None
    ids = {o["id"] for o in objects}
    objects += [m for m in TLP_MARKING_OBJECTS if m["id"] not in ids]
    collection = Collection.objects.filter(title=SEED_COLLECTION_TITLE).first() or collection_create(
        title=SEED_COLLECTION_TITLE,
        description=SEED_COLLECTION_DESCRIPTION,
        tlp_ceiling="clear",
        is_public=True,
    )
    before = collection.entries.count()
    _, errors = objects_publish(collection=collection, objects=objects)
    if errors:
        raise ServiceError(f"knowledge pack conflicts with stored objects: {errors[0]}")
    return PackLoad(collection, len(objects), collection.entries.count() - before)
