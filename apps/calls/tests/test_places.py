"""The customer's coordinates as a place name, offline, from the table of district centres."""

from __future__ import annotations

import subprocess
import sys

import pytest

from apps.calls.places import place_name


@pytest.mark.parametrize(
    ("lat", "lng", "place"),
    [
        (39.915, 116.411, "北京市 东城区"),  # Wangfujing: a municipality has no city level
        (31.219, 121.551, "上海市 浦东新区"),  # Century Park
        (23.12, 113.36, "广东省 广州市 天河区"),
        (30.37, 113.45, "湖北省 仙桃市"),  # a city the province governs directly
        (23.02, 113.75, "广东省 东莞市"),  # a city without districts
        (22.28, 114.17, "香港特别行政区"),
    ],
)
def test_known_places_are_named_province_city_district(lat, lng, place):
    assert place_name(lat, lng) == place


def test_no_place_far_from_every_district_nor_without_coordinates():
    assert place_name(35.68, 139.69) == ""  # Tokyo
    assert place_name(0.0, 0.0) == ""
    assert place_name(None, 116.4) == "" and place_name(float("nan"), 116.4) == ""


def test_the_table_is_read_without_importing_cpca_or_pandas():
    code = (
        "import sys; from apps.calls.places import place_name; "
        "assert place_name(23.12, 113.36); "
        "assert not {'cpca', 'pandas'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
