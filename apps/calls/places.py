"""Where the customer's coordinates are, as people write it ("广东省 广州市 天河区"), offline.

No online geocoder: the bank's evidence must not depend on (or leak positions to) a third
party. The table is the one `cpca` ships (``cpca/resources/adcodes.csv``: the centres of
China's provinces, cities and districts by 12-digit administrative code, GB/T 2260, whose first
2/4/6 digits are the province, city and district). It is read with the csv module: importing
cpca would load pandas. The place is the district whose centre is nearest, so near a border
it may be the neighbour; beyond `MAX_KM` from every centre (abroad, at sea) there is none.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["MAX_KM", "place_name"]

# Far enough for the wide counties of the west, near enough not to name a Chinese district for
# a customer abroad.
MAX_KM = 100.0
EARTH_KM = 6371.0
# Names the table gives a level that people leave out ("市辖区" under a city, the county-level
# cities a province governs directly).
PLACEHOLDERS = ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划")


@dataclass(frozen=True)
class _Table:
    names: list[str]  # "省 市 区" of each point
    lat: np.ndarray  # radians
    lng: np.ndarray


def _csv_path() -> Path:
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpca package (its table of district centres) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "adcodes.csv"


@cache
def _table() -> _Table:
    names: dict[str, str] = {}
    centres: dict[str, tuple[float, float]] = {}
    with _csv_path().open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            code, name = row["adcode"], row["name"]
            names[code] = name
            if row["longitude"] and row["latitude"] and name not in PLACEHOLDERS:
                centres[code] = (float(row["latitude"]), float(row["longitude"]))
    # Only the finest level is a point: a province's or city's centre is one of its districts'.
    parents = {code[:2] + "0" * 10 for code in centres if code[2:] != "0" * 10}
    parents |= {code[:4] + "0" * 8 for code in centres if code[4:] != "0" * 8}
    leaves = sorted(code for code in centres if code not in parents)
    return _Table(
        names=[_full_name(code, names) for code in leaves],
        lat=np.radians([centres[c][0] for c in leaves]),
        lng=np.radians([centres[c][1] for c in leaves]),
    )


def _full_name(code: str, names: dict[str, str]) -> str:
    province = names.get(code[:2] + "0" * 10, "")
    parts = [province]
    # A municipality's districts are written without the city level: 北京市 朝阳区.
    city = names.get(code[:4] + "0" * 8, "")
    if code[2:4] != "00" and city not in PLACEHOLDERS and not province.endswith("市"):
        parts.append(city)
    if code[4:6] != "00":
        parts.append(names[code])
    return " ".join(p for p in parts if p)


def place_name(lat: float | None, lng: float | None) -> str:
    """ "省 市 区" of the district nearest to (lat, lng) in degrees; "" when unknown."""
    if lat is None or lng is None or not (math.isfinite(lat) and math.isfinite(lng)):
        return ""
    table = _table()
    phi, lam = math.radians(lat), math.radians(lng)
    # Haversine distance to every centre (some 3,000: a vector operation, well under 1 ms).
    a = (
        np.sin((table.lat - phi) / 2) ** 2
        + math.cos(phi) * np.cos(table.lat) * np.sin((table.lng - lam) / 2) ** 2
    )
    nearest = int(np.argmin(a))
    km = 2 * EARTH_KM * math.asin(math.sqrt(min(1.0, float(a[nearest]))))
    return table.names[nearest] if km <= MAX_KM else ""
