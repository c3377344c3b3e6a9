"""The export API's refusals and listings: bad input is a 4xx with a stable code and queues
nothing; outsiders learn nothing; the organization's list is its own, newest first."""

from __future__ import annotations

import uuid

import pytest

from tests.exports.conftest import Exports, Org
from tests.factories import V1, assert_error


def _count(exports: Exports, org: Org) -> int:
    return exports.rows("SELECT count(*) AS n FROM exports WHERE tenant_id = :t", t=org.id)[0]["n"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"dataset": "sessions", "format": "csv"}, "validation_error"),
        ({"dataset": "registrations", "format": "json"}, "validation_error"),
        ({"dataset": "registrations"}, "validation_error"),
        ({"dataset": "registrations", "format": "csv", "colour": "red"}, "validation_error"),
        ({"dataset": "registrations", "format": "csv", "from": "yesterday"}, "validation_error"),
        ({"dataset": "registrations", "format": "csv", "from": "2026-11-01T00:00:00"}, None),
        (
            {
                "dataset": "registrations",
                "format": "csv",
                "from": "2026-11-02T00:00:00Z",
                "to": "2026-11-01T00:00:00Z",
            },
            "invalid_range",
        ),
        (
            {
                "dataset": "payments",
                "format": "csv",
                "from": "2026-11-01T00:00:00Z",
                "to": "2026-11-01T00:00:00Z",
            },
            "invalid_range",
        ),
    ],
)
def test_bad_input_is_a_422_and_queues_nothing(
    exports: Exports, org: Org, body: dict, code: str | None
) -> None:
    before = _count(exports, org)
    response = exports.request(org, **body)
    assert response.status_code == 422, response.text
    if code:
        assert_error(response, 422, code)
    assert _count(exports, org) == before


def test_an_event_of_another_organization_is_not_found(
    exports: Exports, org: Org, other: Org
) -> None:
    before = _count(exports, org)
    theirs = exports.request(org, dataset="registrations", format="csv", event_id=other.event["id"])
    unknown = exports.request(
        org, dataset="registrations", format="csv", event_id=str(uuid.uuid4())
    )
    assert_error(theirs, 404, "not_found")
    assert_error(unknown, 404, "not_found")
    assert _count(exports, org) == before


def test_outsiders_and_anonymous_callers_learn_nothing(
    exports: Exports, org: Org, other: Org
) -> None:
    mine = exports.done(org, dataset="registrations", format="csv")
    # Another organization's owner: the organization and the export are simply not found.
    assert_error(
        exports.request(org, other.owner, dataset="payments", format="csv"), 404, "not_found"
    )
    for path in (f"{V1}/analytics/exports/{mine['id']}", f"{V1}/analytics/exports/{uuid.uuid4()}"):
        assert_error(exports.client.get(path, headers=other.owner["headers"]), 404, "not_found")
    listed = exports.client.get(
        f"{V1}/analytics/exports",
        params={"organization_id": org.id},
        headers=other.owner["headers"],
    )
    assert_error(listed, 404, "not_found")
    anonymous = exports.client.post(
        f"{V1}/analytics/export",
        json={"organization_id": org.id, "dataset": "registrations", "format": "csv"},
    )
    assert anonymous.status_code == 401
    assert exports.client.get(f"{V1}/analytics/exports/{mine['id']}").status_code == 401


def test_a_participant_of_the_organizations_event_is_no_member(exports: Exports, org: Org) -> None:
    user, _ = org.organizer.participant(org.event["id"], org.free["id"], name="attendee")
    response = exports.request(org, user, dataset="attendance", format="csv")
    assert_error(response, 404, "not_found")


def test_the_list_is_the_organizations_newest_first(exports: Exports, org: Org, other: Org) -> None:
    a = exports.done(org, dataset="funnel", format="csv")
    b = exports.done(org, org.analyst, dataset="traffic", format="parquet")
    exports.done(other, dataset="funnel", format="csv")
    response = exports.client.get(
        f"{V1}/analytics/exports",
        params={"organization_id": org.id, "limit": 2},
        headers=org.analyst["headers"],
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    listed = response.json()["items"]
    assert [e["id"] for e in listed] == [b["id"], a["id"]]
    assert {e["organization_id"] for e in listed} == {org.id}
    assert listed[0]["download_url"] and listed[0]["progress"] == 100
    unknown = exports.client.get(
        f"{V1}/analytics/exports",
        params={"organization_id": org.id, "status": "failed"},
        headers=org.owner["headers"],
    )
    assert_error(unknown, 422, "unknown_query_parameter")
