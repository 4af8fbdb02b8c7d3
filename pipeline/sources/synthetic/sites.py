"""The three fictional demo sites: their GeoJSON (as in ``aoi/demo.geojson``) and ``Site``s."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shapely.geometry import shape

from pipeline.sites import Site

_SYNTHETIC_SOURCE_NOTE = (
    "sitewatch synthetic demo scenario (pipeline.sources.synthetic): a fictional site, "
    "not a real place; its imagery and truth are generated"
)


def _site_feature(
    site_id: str, name: str, kind: str, ring: list[list[float]], **extra: Any
) -> dict[str, Any]:
    """A demo site with every property the site library asks for (``sitewatch sites
    validate`` passes on ``aoi/demo.geojson``)."""
    return {
        "type": "Feature",
        "properties": {
            "id": site_id,
            "name": name,
            "kind": kind,
            "aliases": [],
            "scope": "whole-site",
            "status": {
                "summary": "fictional: exists only in the synthetic scenario",
                "disputed": False,
                "claims": [],
            },
            "source": _SYNTHETIC_SOURCE_NOTE,
            "sources": ["pipeline/sources/synthetic (sitewatch's built-in demo scenario)"],
            "location_confidence": {
                "level": "high",
                "reason": "exact by construction: synthetic truth of a fictional site",
            },
            "extent_note": "the scenario's own rectangle; its truth masks are exact",
            "geometry_basis": "a rectangle in UTM drawn in lon/lat at 6 decimals",
            **extra,
        },
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


# Rectangles in UTM (2.4 x 2.0 km, 1.6 x 1.2 km, 1.2 x 1.2 km) drawn in lon/lat, 6 decimals.
DEMO_SITES_GEOJSON: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        _site_feature(
            "demo-camp",
            "Demo camp with adjacent coal mine (synthetic)",
            "kwanliso",
            [
                [125.785725, 39.541349],
                [125.813622, 39.540676],
                [125.81435, 39.558676],
                [125.786446, 39.559348],
                [125.785725, 39.541349],
            ],
        ),
        _site_feature(
            "demo-port",
            "Demo coal-export quay (synthetic)",
            "coal_port",
            [
                [125.19063, 38.714744],
                [125.20902, 38.714397],
                [125.209353, 38.725203],
                [125.19096, 38.72555],
                [125.19063, 38.714744],
            ],
        ),
        _site_feature(
            "demo-control",
            "Demo control area: forest, fields, stable village, pond (synthetic)",
            "control",
            [
                [126.293233, 39.094394],
                [126.307094, 39.094715],
                [126.306683, 39.105517],
                [126.292819, 39.105196],
                [126.293233, 39.094394],
            ],
            control_for=["demo-camp", "demo-port"],
            control_check="synthetic: its truth holds no change in any year",
        ),
    ],
}


def demo_sites(only: Iterable[str] | None = None) -> list[Site]:
    """The demo sites as ``Site`` objects (the same as ``load_sites("aoi/demo.geojson")``)."""
    wanted = None if only is None else set(only)
    out = []
    for feature in DEMO_SITES_GEOJSON["features"]:
        props = dict(feature["properties"])
        if wanted is not None and props["id"] not in wanted:
            continue
        extra = {k: v for k, v in props.items() if k not in ("id", "name", "kind", "source")}
        geom = shape(feature["geometry"])
        out.append(Site(props["id"], props["name"], props["kind"], geom, props["source"], extra))
    return out
