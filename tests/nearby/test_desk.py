"""The agent's desk lists nearby open work orders in the API's ranking, with distances."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.runtime import Hotline
from tests.auth import SignedInClient, actor
from tests.nearby.test_api import HERE, north, ok, order_at, request_at

AGENT = actor("op-1", "agent") | {"Accept-Language": "en"}


@pytest.fixture
def client(sqlite_hotline: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=sqlite_hotline)) as tc:
        yield tc


def test_duplicates_on_the_desk(client: TestClient, sqlite_hotline: Hotline) -> None:
    hotline = sqlite_hotline
    far = order_at(client, hotline, north(180))
    near = order_at(client, hotline, north(60))
    order_at(client, hotline, north(400))  # beyond the pothole's 200 m
    order_at(client, hotline, north(10), code="streetlight-out")  # another problem
    ref = request_at(client, HERE)
    html = client.get("/console/desk/duplicates", params={"ref": ref}, headers=AGENT)
    assert html.status_code == 200, html.text
    rows = re.findall(r'data-order="([^"]+)" data-distance-m="([^"]+)"', html.text)
    assert [order for order, _ in rows] == [near, far]
    assert [round(float(d)) for _, d in rows] == [60, 180]
    assert ">60 m<" in html.text and ">180 m<" in html.text
    assert client.get(f"/requests/{ref}").json()["work_order_id"] is None  # looking linked nothing

    # Without coordinates: the problem code's open orders, no distance.
    nowhere = request_at(client, None)
    html = client.get("/console/desk/duplicates", params={"ref": nowhere}, headers=AGENT)
    assert html.status_code == 200 and "data-distance-m" not in html.text
    assert len(re.findall(r'data-order="', html.text)) == 3
    ok(client.post(f"/requests/{nowhere}/link-duplicate", json={"work_order_id": far}))
