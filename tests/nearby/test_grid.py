"""The SQLite grid: every point within the radius lies in a cell the query reads, wherever
on Earth (the antimeridian and the poles included), and the query reads few cells."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.nearby import CELLS_PER_ROW, cell_of, cell_ranges, coordinates
from tests.nearby.helpers import great_circle_m

lats = st.floats(-90, 90) | st.sampled_from([-90.0, -89.9999, 89.9999, 90.0, 0.0])
lons = st.floats(-180, 180) | st.sampled_from([-180.0, -179.9999, 179.9999, 180.0, 0.0])


@settings(max_examples=1500, deadline=None)
@given(lat=lats, lon=lons, radius=st.floats(0.1, 10_000), bearing=st.floats(0, 2 * math.pi), share=st.floats(0, 1))
def test_every_point_within_the_radius_is_in_a_cell_read(lat: float, lon: float, radius: float, bearing: float, share: float) -> None:
    # The point at distance share * radius along the bearing (the direct geodesic problem on the sphere).
    d = share * radius / 6_371_008.771415059
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(max(-1.0, min(1.0, math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))))
    l2 = l1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    there = (math.degrees(p2), (math.degrees(l2) + 180.0) % 360.0 - 180.0)
    if great_circle_m((lat, lon), there) > radius:
        return  # rounding put it just outside: not required to be found
    cell = cell_of(*there)
    assert any(low <= cell <= high for low, high in cell_ranges(lat, lon, radius))


def test_a_typical_lookup_reads_few_cells() -> None:
    ranges = cell_ranges(41.9, 12.5, 200)
    assert len(ranges) <= 3 and sum(high - low + 1 for low, high in ranges) <= 12
    # Across the antimeridian a row is two ranges; around a pole, whole rows in one range.
    across = cell_ranges(10.3, 179.9999, 100)
    assert len(across) > len(cell_ranges(10.3, 0.0, 100)) and across[0][0] % CELLS_PER_ROW == 0
    polar = cell_ranges(89.9999, 0.0, 100)
    assert len(polar) == 1 and (polar[0][1] - polar[0][0] + 1) % CELLS_PER_ROW == 0


def test_coordinates_of_a_location() -> None:
    assert coordinates({"lat": 41.9, "lon": 12.5, "address": "Via Roma"}) == (41.9, 12.5)
    assert coordinates({"address": "Via Roma"}) is None and coordinates(None) is None
    assert coordinates({"lat": 91, "lon": 0}) is None and coordinates({"lat": True, "lon": 0}) is None
