"""Nearby duplicates through HTTP, on SQLite and PostgreSQL: the problem code's distance,
the ranking (nearest, then older), closed orders left out, departments' scope, errors,
and that looking links nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from infra.runtime import Hotline
from tests.auth import SignedInClient, actor
from tests.nearby.helpers import great_circle_m

HERE = (41.9000, 12.5000)
ADMIN = actor("admin-1", "administrator")
ENV_DEPT = actor("env", "department", departments=["environment"])
ROADS_DEPT = actor("roads", "department", departments=["transport"])
CITIZEN = actor("citizen:c1", "citizen", citizen="c1")
METRES_PER_DEGREE = 6_371_008.771415059 * 3.141592653589793 / 180


def north(metres: float, of: tuple[float, float] = HERE) -> tuple[float, float]:
    return of[0] + metres / METRES_PER_DEGREE, of[1]


@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=hotline)) as tc:
        yield tc


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def request_at(client: TestClient, place: tuple[float, float] | None, code: str = "pothole") -> str:
    location = {"address": "Via Roma"} if place is None else {"address": "Via Roma", "lat": place[0], "lon": place[1]}
    body = {"kind": "action", "subtype": "complaint", "channel": "phone", "description": "It is broken", "location": location}
    body |= {"problem_code": code, "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678"}}
    return str(ok(client.post("/requests", json=body), 201)["reference"])


def order_at(client: TestClient, hotline: Hotline, place: tuple[float, float], code: str = "pothole") -> str:
    clock = hotline.clock
    assert isinstance(clock, FixedClock)
    clock.advance(minutes=10)  # each order younger than the one before
    ref = request_at(client, place, code)
    ok(client.post(f"/requests/{ref}/dispatch", json={}))  # new work: a department holds the case
    return str(ok(client.post(f"/requests/{ref}/work-order", json={}), 201)["id"])


def ids(answer: dict[str, Any]) -> list[str]:
    return [o["id"] for o in answer["work_orders"]]


def test_ranked_by_distance_then_age_within_the_codes_distance(client: TestClient, hotline: Hotline) -> None:
    first = order_at(client, hotline, HERE)
    at_150 = order_at(client, hotline, north(150))
    at_250 = order_at(client, hotline, north(250))
    same_place_later = order_at(client, hotline, HERE)
    streetlight = order_at(client, hotline, north(10), code="streetlight-out")
    params = {"problem_code": "pothole", "lat": HERE[0], "lon": HERE[1]}

    answer = ok(client.get("/work-orders/nearby", params=params))
    assert answer["radius_m"] == 200  # the catalogue's distance for potholes
    assert ids(answer) == [first, same_place_later, at_150]  # same place: the older first
    distances = [o["distance_m"] for o in answer["work_orders"]]
    assert distances[:2] == [0, 0] and distances[2] == pytest.approx(150, abs=0.01)
    assert answer["work_orders"][2]["distance_m"] == pytest.approx(great_circle_m(HERE, north(150)), abs=1e-6)
    assert answer["work_orders"][0]["location"]["address"] == "Via Roma" and answer["work_orders"][0]["status"] == "open"
    assert ids(ok(client.get("/work-orders/nearby", params=params | {"radius_m": 300}))) == [first, same_place_later, at_150, at_250]
    assert ids(ok(client.get("/work-orders/nearby", params=params | {"limit": 1}))) == [first]

    light = ok(client.get("/work-orders/nearby", params=params | {"problem_code": "streetlight-out", "lat": north(45)[0]}))
    assert light["radius_m"] == 50 and ids(light) == [streetlight]  # 35 m away
    assert ids(ok(client.get("/work-orders/nearby", params=params | {"problem_code": "streetlight-out", "lat": north(70)[0]}))) == []

    # Closed orders are no duplicates' targets: completed, or cancelled.
    ok(client.post(f"/work-orders/{at_150}/start", json={}))
    assert ids(ok(client.get("/work-orders/nearby", params=params)))[2] == at_150  # in progress is still open
    ok(client.post(f"/work-orders/{at_150}/complete", json={"outcome": "patched"}))
    ok(client.post(f"/work-orders/{first}/cancel", json={"reason": "reported twice"}))
    assert ids(ok(client.get("/work-orders/nearby", params=params))) == [same_place_later]


def test_a_requests_nearby_orders_link_nothing(client: TestClient, hotline: Hotline) -> None:
    first = order_at(client, hotline, HERE)
    near = order_at(client, hotline, north(120))
    ref = request_at(client, north(20))
    answer = ok(client.get(f"/requests/{ref}/nearby-work-orders"))
    assert answer["request"] == ref and answer["problem_code"] == "pothole" and answer["radius_m"] == 200
    assert ids(answer) == [first, near]
    assert [round(o["distance_m"]) for o in answer["work_orders"]] == [20, 100]
    # Looking links nothing: the operator decides.
    assert ok(client.get(f"/requests/{ref}"))["work_order_id"] is None
    assert len(ok(client.get(f"/work-orders/{first}"))["request_ids"]) == 1
    # Once linked, the order it is linked to is no longer offered.
    ok(client.post(f"/requests/{ref}/link-duplicate", json={"work_order_id": first}))
    assert ids(ok(client.get(f"/requests/{ref}/nearby-work-orders"))) == [near]
    assert ids(ok(client.get(f"/requests/{ref}/nearby-work-orders", params={"radius_m": 50}))) == []


def test_the_distance_is_the_problem_codes_or_the_default(client: TestClient, hotline: Hotline) -> None:
    far = order_at(client, hotline, north(150), code="illegal-dumping")
    near = order_at(client, hotline, north(90), code="illegal-dumping")
    params = {"problem_code": "illegal-dumping", "lat": HERE[0], "lon": HERE[1]}
    answer = ok(client.get("/work-orders/nearby", params=params))
    assert answer["radius_m"] == hotline.settings.duplicate_radius_m == 100 and ids(answer) == [near]
    revision = client.post("/catalogue/problem-codes/illegal-dumping/revision", json={"duplicate_radius_m": 160}, headers=ADMIN)
    ok(revision)
    assert ok(client.get("/catalogue/problem-codes/illegal-dumping", headers=ADMIN))["duplicate_radius_m"] == 160
    assert ids(ok(client.get("/work-orders/nearby", params=params))) == [near, far]
    for bad in (0, -5, 20_000):
        refused = client.post("/catalogue/problem-codes/illegal-dumping/revision", json={"duplicate_radius_m": bad}, headers=ADMIN)
        assert refused.status_code == 422, refused.text
    names = {"zh": "井盖", "ar": "غطاء", "it": "Tombino", "en": "Manhole"}
    body = {"code": "manhole", "category_id": "road-surface", "names": names, "work_order_template": {"title": names}}
    ok(client.post("/catalogue/problem-codes", json=body | {"duplicate_radius_m": 30}, headers=ADMIN), 201)
    assert ok(client.get("/catalogue/problem-codes/manhole", headers=ADMIN))["duplicate_radius_m"] == 30
    assert client.post("/catalogue/problem-codes", json=body | {"code": "m2", "duplicate_radius_m": 0}, headers=ADMIN).status_code == 422


def test_scope_and_refusals(client: TestClient, hotline: Hotline) -> None:
    order = order_at(client, hotline, HERE)
    params = {"problem_code": "pothole", "lat": HERE[0], "lon": HERE[1]}
    assert ids(ok(client.get("/work-orders/nearby", params=params, headers=ROADS_DEPT))) == [order]
    assert ids(ok(client.get("/work-orders/nearby", params=params, headers=ENV_DEPT))) == []  # not their department's
    assert client.get("/work-orders/nearby", params=params, headers=CITIZEN).status_code == 403
    assert client.get("/work-orders/nearby", params=params | {"lat": 91}).status_code == 422
    assert client.get("/work-orders/nearby", params=params | {"radius_m": 0}).status_code == 422
    assert client.get("/work-orders/nearby", params={"lat": 1, "lon": 1}).status_code == 422
    assert client.get("/work-orders/nearby", params=params | {"problem_code": "no-such-code"}).status_code == 404
    nowhere = request_at(client, None)
    refused = client.get(f"/requests/{nowhere}/nearby-work-orders")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_coordinates", refused.text
    assert client.get("/requests/000000000000/nearby-work-orders").status_code == 404
    body = {"kind": "action", "subtype": "complaint", "channel": "web", "description": "Something", "location": {"lat": 41.9, "lon": 12.5}}
    body["contact"] = {"name": "Mario Rossi", "phone": "+39 06 1234 5678"}
    unclassified = ok(client.post("/requests", json=body), 201)["reference"]
    refused = client.get(f"/requests/{unclassified}/nearby-work-orders")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_classified", refused.text
    assert client.get(f"/requests/{unclassified}/nearby-work-orders", headers=CITIZEN).status_code == 403


def test_replay_rebuilds_the_index(client: TestClient, hotline: Hotline) -> None:
    """``hotline replay nearby_work_orders``: the same answers after, and on PostgreSQL the
    geography column and its GiST index on the swapped-in table."""
    from consumers.replay import rebuild
    from projections import nearby

    orders = [order_at(client, hotline, north(metres)) for metres in (120, 0, 60)]
    params = {"problem_code": "pothole", "lat": HERE[0], "lon": HERE[1]}
    before = ok(client.get("/work-orders/nearby", params=params))
    assert ids(before) == [orders[1], orders[2], orders[0]]
    rebuild(hotline.store, hotline.read_store, nearby.projection)
    assert ok(client.get("/work-orders/nearby", params=params)) == before
    with hotline.read_store.engine.connect() as conn:
        if conn.dialect.name == "postgresql" and nearby.uses_postgis(conn):
            indexes = conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'rm_nearby_work_orders'").all()
            assert any(name == "rm_nearby_work_orders_geog" and "gist" in definition for name, definition in indexes), indexes
