"""The expansion layer: added and removed rings with how the boundary moved, as GeoJSON
features and two tables (one row per site and year pair, one per sector).

Two sources of outlines feed it: the footprints mapped from imagery (``source: footprint``; the
rings are the change stage's, the displacement is measured against them) and analyst-drawn
perimeters (``source: perimeter``). Each site is measured in its own grid CRS (the UTM zone of
its centroid, also for a site that crosses a zone border) and written in EPSG:4326.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.expansion import BoundaryChange, outline
from pipeline.export.geojson import Feature, write_feature_collection
from pipeline.export.tables import write_csv
from pipeline.grid import reproject_geometry
from pipeline.results import SiteAnalysis

WGS84 = "EPSG:4326"

Pair = Literal["consecutive", "first-last"]
OutlineSource = Literal["footprint", "perimeter"]

EXPANSION_COLUMNS = (
    "site_id", "source", "year_from", "year_to", "pair", "area_from_ha", "area_to_ha",
    "perimeter_from_m", "perimeter_to_m", "added_ha", "removed_ha", "net_ha",
    "net_change_significant", "max_outward_m", "max_retreat_m", "main_direction",
    "hausdorff_m", "displacement_pm_m", "summary",
)  # fmt: skip
#: Decimals of distances (a 10 m pixel, a 0.5 m sampling step: centimetres would be noise).
FLOAT_DIGITS = dict.fromkeys(("perimeter_from_m", "perimeter_to_m", "max_outward_m", "max_retreat_m", "hausdorff_m", "displacement_pm_m", "median_m", "max_m", "bearing_deg"), 1)  # fmt: skip
SECTOR_COLUMNS = (
    "site_id", "source", "year_from", "year_to", "pair", "sector", "bearing_deg", "median_m",
    "max_m", "max_retreat_m", "added_ha", "removed_ha",
)  # fmt: skip


@dataclass(frozen=True)
class ExpansionRecord:
    """One site's change between two years from one source of outlines, with what the layer
    writes of it. Areas and perimeters of the two years are those the trend table gives for
    footprints (pixel counts; perimeters of the outlines), the outlines' own for perimeters."""

    site_id: str
    site_name: str
    source: OutlineSource
    pair: Pair
    crs: str
    change: BoundaryChange
    added: BaseGeometry
    removed: BaseGeometry
    added_ha: float
    removed_ha: float
    area_from_ha: float
    area_to_ha: float
    perimeter_from_m: float
    perimeter_to_m: float
    significant: bool | None  # the net change against the areas' uncertainty (footprints)
    displacement_pm_m: float | None  # a pixel for footprints; unknown for drawn perimeters


def _pairs(n: int) -> list[Pair]:
    """Pair labels of ``n`` changes in the stages' order: consecutive ones, then first-last
    when there are more than two years."""
    consecutive: list[Pair] = ["consecutive"] * n
    return consecutive if n < 2 else [*consecutive[1:], "first-last"]


def footprint_records(analysis: SiteAnalysis) -> list[ExpansionRecord]:
    """The records of the footprints mapped from imagery for one site."""
    by_year = {m.year: m for m in analysis.metrics}
    records = []
    for c, pair in zip(analysis.changes, _pairs(len(analysis.changes)), strict=True):
        before, after = by_year[c.year_from], by_year[c.year_to]
        records.append(
            ExpansionRecord(
                site_id=analysis.site.id,
                site_name=analysis.site.name,
                source="footprint",
                pair=pair,
                crs=analysis.grid.crs,
                change=c.boundary,
                added=MultiPolygon(list(c.added_polygons)),
                removed=MultiPolygon(list(c.removed_polygons)),
                added_ha=c.added_ha,
                removed_ha=c.removed_ha,
                area_from_ha=before.footprint_ha,
                area_to_ha=after.footprint_ha,
                perimeter_from_m=_length(before.footprint_polygons),
                perimeter_to_m=_length(after.footprint_polygons),
                significant=c.significant,
                displacement_pm_m=analysis.grid.resolution,
            )
        )
    return records


def perimeter_records(
    site_id: str, site_name: str, crs: str, changes: Iterable[tuple[str, BoundaryChange]]
) -> list[ExpansionRecord]:
    """The records of analyst-drawn perimeters (``changes`` as ``boundary_changes`` gives them)."""
    records = []
    for pair, c in changes:
        assert pair in ("consecutive", "first-last")
        records.append(
            ExpansionRecord(
                site_id=site_id,
                site_name=site_name,
                source="perimeter",
                pair="first-last" if pair == "first-last" else "consecutive",
                crs=crs,
                change=c,
                added=c.added,
                removed=c.removed,
                added_ha=c.added_ha,
                removed_ha=c.removed_ha,
                area_from_ha=c.before.area_ha,
                area_to_ha=c.after.area_ha,
                perimeter_from_m=c.before.perimeter_m,
                perimeter_to_m=c.after.perimeter_m,
                significant=None,
                displacement_pm_m=None,
            )
        )
    return records


def analysis_records(analysis: SiteAnalysis) -> list[ExpansionRecord]:
    """Footprint records, then perimeter records, of one site."""
    site = analysis.site
    drawn = perimeter_records(site.id, site.name, analysis.grid.crs, analysis.perimeter_changes)
    return [*footprint_records(analysis), *drawn]


def _length(polygons: Sequence[Polygon]) -> float:
    return outline(MultiPolygon(list(polygons))).perimeter_m


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits) + 0.0  # no -0.0


def _sectors(c: BoundaryChange) -> list[dict[str, Any]]:
    return [
        {
            "sector": s.sector,
            "bearing_deg": s.bearing_deg,
            "median_m": _round(s.median_m, 1),
            "max_m": _round(s.max_m, 1),
            "max_retreat_m": _round(s.max_retreat_m, 1),
            "added_ha": _round(s.added_ha, 4),
            "removed_ha": _round(s.removed_ha, 4),
        }
        for s in c.sectors
    ]


#: Parts of a drawn ring thinner than this are where two years' lines run along each other
#: (digitising and coordinate rounding): left out of the written rings, not of the areas.
SLIVER_M = 0.05


def _without_slivers(geom: BaseGeometry) -> BaseGeometry:
    """``geom`` opened by ``SLIVER_M`` (buffered in, then out, mitred corners, intersected
    back with ``geom``): slivers and spikes thinner than twice that go, the rest keeps its shape
    to within 0.1 m."""
    if geom.is_empty:
        return geom
    core = geom.buffer(-SLIVER_M, join_style="mitre").buffer(SLIVER_M, join_style="mitre")
    # Vertices closer than the written precision (6 decimals: ~0.1 m) would fold over when
    # rounded: simplified away at that tolerance first.
    opened = shapely.simplify(shapely.intersection(core, geom), 0.1, preserve_topology=True)
    kept = shapely.get_parts(shapely.make_valid(opened))
    return MultiPolygon([p for p in kept if isinstance(p, Polygon) and not p.is_empty])


def _pair_properties(r: ExpansionRecord) -> dict[str, Any]:
    c = r.change
    return {
        "site_id": r.site_id,
        "site_name": r.site_name,
        "source": r.source,
        "year_from": c.year_from,
        "year_to": c.year_to,
        "pair": r.pair,
    }


def expansion_features(records: Iterable[ExpansionRecord]) -> list[Feature]:
    """An added and a removed ring per record, each carrying the pair's movement: summary,
    maximum outward and retreat distances, main direction, Hausdorff distance and the sectors
    (a list of {sector, bearing_deg, median_m, max_m, max_retreat_m, added_ha, removed_ha})."""
    features: list[Feature] = []
    for r in records:
        c = r.change
        movement = {
            "net_change_significant": r.significant,
            "summary": c.summary,
            "max_outward_m": c.max_outward_m,
            "max_retreat_m": _max_retreat(c),
            "main_direction": c.main_direction,
            "hausdorff_m": c.hausdorff_m,
            "displacement_pm_m": r.displacement_pm_m,
            "sectors": _sectors(c),
        }
        for kind, geom, area in (
            ("added", r.added, r.added_ha),
            ("removed", r.removed, r.removed_ha),
        ):
            if r.source == "perimeter":
                geom = _without_slivers(geom)
            features.append(
                (
                    reproject_geometry(geom, r.crs, WGS84),
                    {**_pair_properties(r), "change": kind, "area_ha": area, **movement},
                )
            )
    return features


def _max_retreat(c: BoundaryChange) -> float | None:
    values = [s.max_retreat_m for s in c.sectors if s.max_retreat_m is not None]
    return max(values) if values else None


def expansion_rows(records: Iterable[ExpansionRecord]) -> list[dict[str, Any]]:
    """A row per record (``EXPANSION_COLUMNS``)."""
    rows = []
    for r in records:
        c = r.change
        rows.append(
            {
                **_pair_properties(r),
                "area_from_ha": r.area_from_ha,
                "area_to_ha": r.area_to_ha,
                "perimeter_from_m": r.perimeter_from_m,
                "perimeter_to_m": r.perimeter_to_m,
                "added_ha": r.added_ha,
                "removed_ha": r.removed_ha,
                "net_ha": r.added_ha - r.removed_ha,
                "net_change_significant": r.significant,
                "max_outward_m": c.max_outward_m,
                "max_retreat_m": _max_retreat(c),
                "main_direction": c.main_direction,
                "hausdorff_m": c.hausdorff_m,
                "displacement_pm_m": r.displacement_pm_m,
                "summary": c.summary,
            }
        )
    return rows


def sector_rows(records: Iterable[ExpansionRecord]) -> list[dict[str, Any]]:
    """A row per record and sector (``SECTOR_COLUMNS``)."""
    return [{**_pair_properties(r), **s} for r in records for s in _sectors(r.change)]


def write_expansion(
    folder: Path, records: Sequence[ExpansionRecord], metadata: dict[str, Any]
) -> list[Path]:
    """``expansion.geojson``, ``expansion.csv`` and ``expansion_sectors.csv`` in ``folder``."""
    paths = [
        write_feature_collection(
            folder / "expansion.geojson",
            expansion_features(records),
            WGS84,
            name="expansion",
            metadata=metadata,
            float_digits={**FLOAT_DIGITS, "area_ha": 4, "added_ha": 4, "removed_ha": 4},
        ),
        folder / "expansion.csv",
        folder / "expansion_sectors.csv",
    ]
    for path, rows, columns in (
        (paths[1], expansion_rows(records), EXPANSION_COLUMNS),
        (paths[2], sector_rows(records), SECTOR_COLUMNS),
    ):
        write_csv(path, rows, columns, {k: v for k, v in FLOAT_DIGITS.items() if k in columns})
    return paths
