"""Hub side of feedback: the inbox accepts only count-only feedback, members cannot read it, and
the aggregates reach the originator (full) and other members (thresholded) only."""

from __future__ import annotations

import pytest

from tests.sharing.feedback.conftest import TAXII, opinion, sighting
from tests.stix_builders import make_indicator

pytestmark = pytest.mark.django_db


def statuses(response) -> dict:
    body = response.json()
    return {
        "success": [s["id"] for s in body.get("successes", [])],
        "failure": {f["id"]: f["message"] for f in body.get("failures", [])},
        "pending": [s["id"] for s in body.get("pendings", [])],
    }


def feedback(client, member, stix_id):
    return client.get(f"/api/v1/objects/{stix_id}/feedback/", HTTP_AUTHORIZATION=f"Bearer {member.token}")


def test_members_write_the_inbox_at_once_but_cannot_read_it(client, hub):
    member = hub.members[0]  # review policy, and a grant that even says "read"
    posted = sighting(member, hub.indicator["id"])
    response = hub.post(client, member, [posted])
    assert response.status_code == 202, response.content
    assert statuses(response)["success"] == [posted["id"]]  # not held for review: never republished
    for path in ("objects/", "manifest/", f"objects/{posted['id']}/"):
        read = client.get(
            f"/taxii2/api/collections/{hub.inbox.pk}/{path}",
            HTTP_ACCEPT=TAXII,
            HTTP_AUTHORIZATION=f"Bearer {member.token}",
        )
        assert read.status_code == 403, (path, read.status_code)
    listed = client.get(
        "/taxii2/api/collections/", HTTP_ACCEPT=TAXII, HTTP_AUTHORIZATION=f"Bearer {member.token}"
    )
    inbox = next(c for c in listed.json()["collections"] if c["id"] == str(hub.inbox.pk))
    assert inbox["can_read"] is False and inbox["can_write"] is True
    operator = client.get(
        f"/taxii2/api/collections/{hub.inbox.pk}/objects/",
        HTTP_ACCEPT=TAXII,
        HTTP_AUTHORIZATION=f"Bearer {hub.operator.token}",
    )
    assert operator.status_code == 200
    assert [o["id"] for o in operator.json()["objects"]] == [posted["id"]]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda m, i: make_indicator(), "accepts only sighting, opinion, note"),
        (
            lambda m, i: {k: v for k, v in sighting(m, i).items() if k != "object_marking_refs"},
            "TLP:AMBER+STRICT",
        ),
        (
            lambda m, i: sighting(
                m, i, object_marking_refs=["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"]
            ),
            "TLP:AMBER+STRICT",
        ),
        (
            lambda m, i: sighting(
                m, i, observed_data_refs=["observed-data--0b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b"]
            ),
            "no observed_data_refs",
        ),
        (lambda m, i: sighting(m, "malware--6b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b"), "must be an indicator"),
        (lambda m, i: {k: v for k, v in sighting(m, i).items() if k != "count"}, "must state its count"),
        (
            lambda m, i: sighting(
                m, i, where_sighted_refs=["identity--0b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b"]
            ),
            "where_sighted_refs may name only your own identity",
        ),
        (
            lambda m, i: sighting(m, i, created_by_ref="identity--0b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b"),
            "created_by_ref must be your own identity",
        ),
        (
            lambda m, i: opinion(
                m, i, "agree", object_refs=["malware--6b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b"]
            ),
            "name at least one indicator",
        ),
    ],
)
def test_the_inbox_refuses_anything_but_count_only_feedback(client, hub, build, message):
    from sharing.models import ReceivedOpinion, ReceivedSighting

    member = hub.members[1]
    obj = build(member, hub.indicator["id"])
    response = hub.post(client, member, [obj])
    assert response.status_code == 202, response.content
    failures = statuses(response)["failure"]
    assert list(failures) == [obj["id"]] and message in failures[obj["id"]], failures
    assert not ReceivedSighting.objects.exists() and not ReceivedOpinion.objects.exists()


def test_aggregates_count_members_sum_counts_and_keep_the_newest_version(client, hub):
    a, b, c = hub.members[:3]
    first = sighting(a, hub.indicator["id"], count=3)
    hub.post(client, a, [first])
    # A new version of the same sighting replaces the old one instead of adding to it.
    hub.post(client, a, [{**first, "modified": "2026-11-21T10:00:00.000Z", "count": 5}])
    # An older version arriving late changes nothing.
    hub.post(client, a, [{**first, "modified": "2026-11-20T09:00:00.000Z", "count": 99}])
    hub.post(client, b, [sighting(b, hub.indicator["id"], count=2, last_seen="2026-11-22T00:00:00Z")])
    hub.post(client, c, [sighting(c, hub.indicator["id"], count=7, state="false-positive")])
    data = feedback(client, hub.originator, hub.indicator["id"]).json()
    assert data["scope"] == "originator"
    assert data["sighted_by_members"] == 2  # the false positive is not a sighting
    assert data["total_count"] == 5 + 2
    assert data["last_seen"].startswith("2026-11-22")
    assert data["false_positive_members"] == 1
    assert data["disputed"] is False


def test_a_members_newest_sighting_per_review_state_counts_whatever_its_id(client, hub):
    a, b = hub.members[:2]
    hub.post(client, a, [sighting(a, hub.indicator["id"], count=3)])
    # A later report on the same indicator (a fresh sighting id) restates the count: 4, not 3 + 4.
    hub.post(client, a, [sighting(a, hub.indicator["id"], count=4, modified="2026-11-22T10:00:00.000Z")])
    hub.post(client, a, [sighting(a, hub.indicator["id"], count=2, state="inconclusive")])  # another state
    hub.post(client, b, [sighting(b, hub.indicator["id"], count=1)])
    data = feedback(client, hub.originator, hub.indicator["id"]).json()
    assert (data["sighted_by_members"], data["total_count"]) == (2, 4 + 2 + 1)


def test_opinions_tally_one_newest_verdict_per_member_and_flag_disputes(client, hub):
    a, b, c = hub.members[:3]
    stix_id = hub.indicator["id"]
    hub.post(client, a, [opinion(a, stix_id, "agree")])
    hub.post(client, a, [opinion(a, stix_id, "strongly-agree", modified="2026-11-21T10:00:00.000Z")])
    hub.post(client, b, [opinion(b, stix_id, "neutral")])
    data = feedback(client, hub.originator, stix_id).json()
    assert data["opinions"] == {"agree": 1, "disagree": 0, "neutral": 1}
    assert data["disputed"] is False
    # A member changes its mind later: only its newest opinion counts.
    hub.post(client, b, [opinion(b, stix_id, "disagree", modified="2026-11-22T10:00:00.000Z")])
    data = feedback(client, hub.originator, stix_id).json()
    assert data["opinions"] == {"agree": 1, "disagree": 1, "neutral": 0}
    assert data["disputed"] is True and "agree" in data["dispute_reason"]


def test_two_members_disagreeing_flag_a_dispute_and_one_does_not(client, hub):
    a, b = hub.members[:2]
    stix_id = hub.indicator["id"]
    hub.post(client, a, [opinion(a, stix_id, "disagree")])
    assert feedback(client, hub.originator, stix_id).json()["disputed"] is False
    hub.post(client, b, [opinion(b, stix_id, "strongly-disagree")])
    data = feedback(client, hub.originator, stix_id).json()
    assert data["disputed"] is True and data["dispute_reason"] == "2 members disagree"


def test_other_members_see_only_a_threshold_and_outsiders_nothing(client, hub, settings):
    settings.MDX_FEEDBACK_MIN_MEMBERS = 3
    stix_id = hub.indicator["id"]
    for member in hub.members[:2]:
        hub.post(client, member, [sighting(member, stix_id, count=4)])
    view = feedback(client, hub.reader, stix_id).json()
    assert view == {
        "scope": "threshold",
        "indicator_id": stix_id,
        "sighted_by_at_least": None,
        "threshold": 3,
    }
    # A member that sighted it is not the originator either: no counts, no names.
    assert feedback(client, hub.members[0], stix_id).json()["sighted_by_at_least"] is None
    hub.post(client, hub.members[2], [sighting(hub.members[2], stix_id, count=1)])
    view = feedback(client, hub.reader, stix_id).json()
    assert view["sighted_by_at_least"] == 3
    assert "total_count" not in view and "opinions" not in view
    assert feedback(client, hub.outsider, stix_id).status_code == 404
    assert feedback(client, hub.reader, "indicator--6b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b").status_code == 404
    operator = feedback(client, hub.operator, stix_id).json()
    assert operator["scope"] == "originator" and operator["total_count"] == 9


def test_the_originator_lists_its_indicators_feedback_disputed_first(client, hub):
    from sharing.services import objects_publish

    other = make_indicator(created_by_ref=hub.originator.org.identity_id, name="second")
    foreign = make_indicator(name="someone else's")
    objects_publish(collection=hub.feed, objects=[other, foreign], submitted_by=hub.originator.org)
    a, b = hub.members[:2]
    hub.post(client, a, [sighting(a, hub.indicator["id"]), sighting(a, foreign["id"])])
    hub.post(client, a, [opinion(a, other["id"], "agree")])
    hub.post(client, b, [opinion(b, other["id"], "disagree")])
    listed = client.get("/api/v1/feedback/", HTTP_AUTHORIZATION=f"Bearer {hub.originator.token}").json()
    assert [r["indicator_id"] for r in listed["results"]] == [other["id"], hub.indicator["id"]]
    assert listed["results"][0]["disputed"] is True
    # Another member originated nothing: it sees no aggregates at all.
    assert client.get("/api/v1/feedback/", HTTP_AUTHORIZATION=f"Bearer {a.token}").json() == {"results": []}


def test_feedback_about_a_collection_that_is_not_an_inbox_is_not_aggregated(client, hub):
    from sharing.models import ReceivedSighting

    response = hub.post(client, hub.originator, [sighting(hub.originator, hub.indicator["id"])], hub.feed)
    assert response.status_code == 202
    assert not ReceivedSighting.objects.exists()
