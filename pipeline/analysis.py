"""Per-site analysis: footprint and coal areas per year, change between consecutive years and
first vs last, polygons, areas with their edge uncertainty, and the score against a truth.

Pure: site-years (arrays) and plain parameters in, frozen records out.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from pipeline import accuracy, boundaries, trends
from pipeline.change import mask_change
from pipeline.expansion import BoundaryChange, boundary_change, boundary_changes
from pipeline.grid import Grid, reproject_geometry
from pipeline.results import ChangeMetrics, SiteAnalysis, SiteYear, YearMetrics
from pipeline.sites import Site

BoolArray = NDArray[np.bool_]


def analysis_area(site: Site, grid: Grid, buffer_m: float) -> BoolArray:
    """Pixels whose centre lies in the buffered site: the area every number refers to."""
    geom = site.geometry_in(grid.crs).buffer(buffer_m)
    return boundaries.rasterize([geom], grid.transform, grid.shape)


def analyse_site(
    site: Site,
    grid: Grid,
    years: Sequence[SiteYear],
    *,
    buffer_m: float,
    min_mapping_unit_ha: float,
    change_opening_px: int,
    sectors: int = 16,
) -> SiteAnalysis:
    """Areas, polygons and year-to-year change for one site, with the boundary's movement
    in ``sectors`` directions."""
    px = grid.pixel_area_ha
    min_px = boundaries.min_pixels_for_area(min_mapping_unit_ha, px)
    metrics = []
    for sy in years:
        metrics.append(
            YearMetrics(
                sy.year,
                float(sy.footprint.sum()) * px,
                trends.edge_uncertainty_ha(sy.footprint, grid.resolution),
                float(sy.coal_mask.sum()) * px,
                trends.edge_uncertainty_ha(sy.coal_mask, grid.resolution),
                tuple(boundaries.vectorize(sy.footprint, grid.transform, min_px)),
                tuple(boundaries.vectorize(sy.coal_mask, grid.transform, min_px)),
            )
        )
    observed = [i for i, sy in enumerate(years) if sy.composite is not None]
    pairs = list(itertools.pairwise(observed))
    if len(observed) > 2:
        pairs.append((observed[0], observed[-1]))
    changes = []
    for i, j in pairs:
        a, b = years[i], years[j]
        valid = a.valid & b.valid
        fp = mask_change(a.footprint, b.footprint, valid, change_opening_px)
        coal = mask_change(a.coal_mask, b.coal_mask, valid, change_opening_px)
        added = boundaries.remove_small_regions(fp.added, min_px)
        removed = boundaries.remove_small_regions(fp.removed, min_px)
        ma, mb = metrics[i], metrics[j]
        added_polygons = tuple(boundaries.vectorize(added, grid.transform, min_px))
        removed_polygons = tuple(boundaries.vectorize(removed, grid.transform, min_px))
        changes.append(
            ChangeMetrics(
                a.year,
                b.year,
                float(added.sum()) * px,
                float(removed.sum()) * px,
                float(boundaries.remove_small_regions(coal.added, min_px).sum()) * px,
                float(boundaries.remove_small_regions(coal.removed, min_px).sum()) * px,
                trends.significant_change(
                    ma.footprint_ha,
                    trends.se_from_half_width(ma.footprint_pm_ha),
                    mb.footprint_ha,
                    trends.se_from_half_width(mb.footprint_pm_ha),
                ),
                added_polygons,
                removed_polygons,
                footprint_boundary(
                    ma.footprint_polygons,
                    added_polygons,
                    removed_polygons,
                    a.year,
                    b.year,
                    sectors=sectors,
                    sample_step_m=grid.resolution,
                ),
            )
        )
    area = analysis_area(site, grid, buffer_m)
    return SiteAnalysis(
        site, grid, float(area.sum()) * px, tuple(years), tuple(metrics), tuple(changes)
    )


def _multipolygon(polygons: Iterable[Polygon]) -> MultiPolygon:
    return MultiPolygon(list(polygons))


def footprint_boundary(
    before: Sequence[Polygon],
    added: Sequence[Polygon],
    removed: Sequence[Polygon],
    year_from: int,
    year_to: int,
    *,
    sectors: int,
    sample_step_m: float,
) -> BoundaryChange:
    """The boundary change between the earlier footprint and the same with ``added`` and
    without ``removed`` (the change stage's rings), so that displacement and rings agree;
    boundaries sampled every ``sample_step_m`` (a pixel: distances exact to half a pixel)."""
    earlier = _multipolygon(before)
    later = shapely.difference(
        shapely.union_all([earlier, *added]), shapely.union_all(list(removed))
    )
    return boundary_change(
        earlier, later, year_from, year_to, sectors=sectors, sample_step_m=sample_step_m
    )


def perimeter_changes(
    by_year: dict[int, Polygon | MultiPolygon], crs: str, *, sectors: int
) -> tuple[tuple[str, BoundaryChange], ...]:
    """Boundary change between analyst-drawn perimeters (WGS84, a geometry per year), measured
    in ``crs`` (the site's UTM zone)."""
    projected: dict[int, Polygon | MultiPolygon | None] = {}
    for year, geom in by_year.items():
        moved = reproject_geometry(geom, "EPSG:4326", crs)
        assert isinstance(moved, Polygon | MultiPolygon)
        projected[year] = moved
    return tuple(boundary_changes(projected, sectors=sectors))


def score_against_truth(
    analysis: SiteAnalysis, truth: dict[int, Any], min_clear: int
) -> dict[str, Any]:
    """Footprint IoU and area errors per year, false expansion where truth is unchanged, and a
    summary over the years with enough clear observations (the others are listed, not hidden:
    a year seen once or twice is flagged in every output, and its coal area is a lower bound)."""
    grid = analysis.grid
    per_year: dict[str, Any] = {}
    truth_masks: dict[int, tuple[BoolArray, BoolArray]] = {}
    for sy, m in zip(analysis.years, analysis.metrics, strict=True):
        t = truth.get(sy.year)
        if t is None or sy.composite is None:
            continue
        fp_true, coal_true = (
            boundaries.rasterize(
                [reproject_geometry(g, "EPSG:4326", grid.crs)], grid.transform, grid.shape
            )
            for g in (t.footprint, t.coal)
        )
        truth_masks[sy.year] = (fp_true, coal_true)
        scores = accuracy.binary_scores(sy.footprint, fp_true & sy.valid, sy.valid)
        per_year[str(sy.year)] = {
            "median_clear_obs": sy.median_clear,
            "sufficient_data": sy.median_clear >= min_clear,
            "footprint_iou": round(scores.iou, 4),
            "footprint_f1": round(scores.f1, 4),
            "footprint_area_ha": round(m.footprint_ha, 4),
            "footprint_true_area_ha": round(t.footprint_area_ha, 4),
            "footprint_area_error": _round(
                accuracy.area_error(m.footprint_ha, t.footprint_area_ha)
            ),
            "coal_area_ha": round(m.coal_ha, 4),
            "coal_true_area_ha": round(t.coal_area_ha, 4),
            "coal_area_error": _round(accuracy.area_error(m.coal_ha, t.coal_area_ha)),
        }
    false_expansion: dict[str, float] = {}
    for c in analysis.changes:
        # Where truth did not change between the two years, every added hectare is false.
        if (
            c.year_from in truth_masks
            and c.year_to in truth_masks
            and np.array_equal(truth_masks[c.year_from][0], truth_masks[c.year_to][0])
        ):
            false_expansion[f"{c.year_from}-{c.year_to}"] = round(c.added_ha / analysis.area_ha, 5)
    expansion = {
        f"{c.year_from}-{c.year_to}": _score_boundary(c.boundary, truth, grid.crs)
        for c in analysis.changes
        if c.year_from in truth_masks and c.year_to in truth_masks
    }
    sufficient = [y for y in per_year.values() if y["sufficient_data"]]
    first_last = (
        expansion.get(f"{analysis.changes[-1].year_from}-{analysis.changes[-1].year_to}")
        if analysis.changes
        else None
    )
    summary = {
        "years_scored": len(sufficient),
        "years_with_too_few_clear_observations": [
            int(k) for k, y in per_year.items() if not y["sufficient_data"]
        ],
        "min_footprint_iou": min((y["footprint_iou"] for y in sufficient), default=None),
        "max_abs_footprint_area_error": _max_abs(y["footprint_area_error"] for y in sufficient),
        "max_abs_coal_area_error": _max_abs(y["coal_area_error"] for y in sufficient),
        "max_false_expansion_share": max(false_expansion.values(), default=None),
        "first_last_expansion": first_last,
    }
    return {
        "summary": summary,
        "years": per_year,
        "false_expansion_share": false_expansion,
        "expansion": expansion,
    }


def _score_boundary(found: BoundaryChange, truth: dict[int, Any], crs: str) -> dict[str, Any]:
    """The boundary change found against the one between the true footprints: added area,
    reach, main direction, and the per-sector error of the maximum outward displacement."""
    before, after = (
        reproject_geometry(truth[y].footprint, "EPSG:4326", crs)
        for y in (found.year_from, found.year_to)
    )
    assert isinstance(before, Polygon | MultiPolygon)
    assert isinstance(after, Polygon | MultiPolygon)
    true = boundary_change(
        before,
        after,
        found.year_from,
        found.year_to,
        sectors=len(found.sectors) or 16,
    )
    errors = [
        abs(a.max_m - b.max_m)
        for a, b in zip(found.sectors, true.sectors, strict=False)
        if a.max_m is not None and b.max_m is not None
    ]
    return {
        "added_ha": round(found.added_ha, 4),
        "true_added_ha": round(true.added_ha, 4),
        "max_outward_m": _round(found.max_outward_m or 0.0, 1),
        "true_max_outward_m": _round(true.max_outward_m or 0.0, 1),
        "main_direction": found.main_direction,
        "true_main_direction": true.main_direction,
        "median_sector_max_error_m": _round(float(np.median(errors)), 1) if errors else None,
        "summary": found.summary,
        "true_summary": true.summary,
    }


def _max_abs(values: Iterable[float | None]) -> float | None:
    present = [abs(v) for v in values if v is not None]
    return max(present) if present else None


def _round(value: float, digits: int = 4) -> float | None:
    return None if not np.isfinite(value) else round(float(value), digits)
