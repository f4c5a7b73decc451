"""What the server serves is valid STIX 2.1: the examples bundle, posted and read back, validates."""

from __future__ import annotations

import pytest
from stix2validator import ValidationOptions, validate_instance

from tests.conftest import load_bundle
from tests.sharing.taxii.helpers import envelope_pages, objects_of

# Disabled: 103 (uuid-check: SCO ids here are deterministic UUIDv5, as STIX 2.1 §2.9 asks) and
# 302 (extref-hashes: a best practice about external references, not validity).
OPTIONS = ValidationOptions(disabled=["103", "302"], version="2.1")


@pytest.fixture
def sees_everything(cast):
    from sharing.services import grant_set

    # The bundle carries AMBER+STRICT objects; a RED ceiling shows the lab all of it.
    grant_set(
        organisation=cast.lab.org, collection=cast.feed, can_read=True, can_write=True, tlp_ceiling="red"
    )
    return cast.lab


def test_every_object_served_from_the_examples_bundle_passes_the_stix2_validator(
    taxii, cast, sees_everything
):
    sent = load_bundle("examples-bundle.json")["objects"]
    status = taxii.submit(cast, sent, auth=sees_everything)
    assert status["status"] == "complete", status.get("failures")
    assert (status["success_count"], status["failure_count"]) == (len(sent), 0), status.get("failures")

    pages = envelope_pages(
        taxii, cast.objects_url, sees_everything, params={"match[version]": "all", "limit": 10}
    )
    served = [obj for page in pages for obj in objects_of(page)]
    assert sorted(o["id"] for o in served) == sorted(o["id"] for o in sent)
    for obj in served:
        result = validate_instance(obj, OPTIONS)
        assert result.is_valid, (obj["id"], [str(e) for e in result.errors])

    originals = {o["id"]: o for o in sent}
    for obj in served:
        assert obj == originals[obj["id"]]
