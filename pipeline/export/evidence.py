"""Evidence packages: what backs each change a report cites, in a form that can be checked.

For each consecutive pair of years with data (``site_rasters.consecutive_changes``) where the
footprint gained or lost a ring (``ChangeMetrics.added_polygons``/``removed_polygons``) or the
coal on the ground changed by more than the minimum mapping unit (``coal_added_ha``/
``coal_removed_ha`` count only pieces above it), ``evidence/<site>/<year_from>-<year_to>/``
holds:

``before.png``, ``after.png``
    true-colour chips of the two composites over the change's bounding box plus a margin, with
    the site's one stretch (``site_rasters.site_stretch``) so brightness compares; outlined:
    added rings ``OUTLINES["added"]``, removed rings ``OUTLINES["removed"]`` (on both chips),
    and each year's own coal polygons ``OUTLINES["coal"]``. Transparent where no clear
    observation. Same size, fixed pixel scale, PNG without metadata (``charts.figure_png``).
``evidence.json``
    the site, the years, the change's areas, the bounding box (site CRS and WGS84), the stretch,
    for each composite the scenes behind it (ids, dates, platform, processing baseline, offset
    applied, radiometry rule; skipped scenes with their reason) and the median clear
    observations inside the box, and the SHA-256 of the two chips and of the rasters it rests
    on (``site_rasters``: both years' true colour and classes, the pair's change map, which
    must be written first).

``evidence/index.json`` lists every package of a run (:func:`write_evidence_index`). All
files are written atomically, as ``manifest.canonical_json`` where JSON, and byte-identical
for identical input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from shapely.geometry import Polygon, box

from pipeline.export.atomic import atomic_write_bytes, atomic_write_text
from pipeline.export.manifest import canonical_json, sha256_file
from pipeline.export.report import Stretch, true_colour_png
from pipeline.export.site_rasters import (
    change_raster_path,
    consecutive_changes,
    site_stretch,
    year_raster_path,
)
from pipeline.grid import Grid, reproject_geometry
from pipeline.results import ChangeMetrics, SceneRecord, SiteAnalysis, SiteYear

__all__ = [
    "CHIP_PX",
    "EVIDENCE_DIR",
    "OUTLINES",
    "EvidenceCase",
    "chip_png",
    "chip_window",
    "evidence_cases",
    "evidence_record",
    "scene_provenance",
    "write_evidence",
    "write_evidence_index",
]

#: Folder of the evidence packages in a run directory.
EVIDENCE_DIR = "evidence"
#: Longer side of a chip in pixels (image pixels are a whole number of screen pixels when the
#: window is smaller).
CHIP_PX = 480
#: Margin around the change's bounding box: this share of its longer side, at least
#: ``MIN_MARGIN_PX`` grid pixels.
MARGIN_FRACTION = 0.25
MIN_MARGIN_PX = 10
#: Outline colours (Okabe-Ito): as the change raster and ``expansion`` style, coal yellow so it
#: shows on dark piles.
OUTLINES: Mapping[str, str] = {"added": "#D55E00", "removed": "#0072B2", "coal": "#F0E442"}
_LINE_WIDTH = 1.5
_WGS84 = "EPSG:4326"

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class EvidenceCase:
    """One change worth a package: its two years, the change, and the box (left, bottom,
    right, top in the site CRS) around the changed ground."""

    before: SiteYear
    after: SiteYear
    change: ChangeMetrics
    coal_before: tuple[Polygon, ...]
    coal_after: tuple[Polygon, ...]
    bbox: Bounds

    @property
    def folder_name(self) -> str:
        return f"{self.change.year_from}-{self.change.year_to}"


# --- pure: which changes, where ---------------------------------------------------------------


def evidence_cases(analysis: SiteAnalysis) -> list[EvidenceCase]:
    """The consecutive year pairs of ``analysis`` with a footprint ring or a coal change above
    the minimum mapping unit, in year order, each with the box around its changed ground: the
    rings, and where coal changed the ground coal covers in one year and not the other."""
    coal = {m.year: m.coal_polygons for m in analysis.metrics}
    cases = []
    for before, after, change in consecutive_changes(analysis):
        rings = [*change.added_polygons, *change.removed_polygons]
        coal_changed = change.coal_added_ha > 0 or change.coal_removed_ha > 0
        if not rings and not coal_changed:
            continue
        coal_a, coal_b = coal.get(before.year, ()), coal.get(after.year, ())
        parts: list[Any] = list(rings)
        if coal_changed:
            diff = shapely.symmetric_difference(
                shapely.union_all(list(coal_a)), shapely.union_all(list(coal_b))
            )
            if not diff.is_empty:
                parts.append(diff)
        changed = shapely.union_all(parts)
        x0, y0, x1, y1 = analysis.grid.bounds if changed.is_empty else changed.bounds
        bbox = (float(x0), float(y0), float(x1), float(y1))
        cases.append(EvidenceCase(before, after, change, tuple(coal_a), tuple(coal_b), bbox))
    return cases


def chip_window(bbox: Bounds, grid: Grid) -> tuple[int, int, int, int]:
    """(row_off, col_off, height, width) of the grid pixels covering ``bbox`` plus its margin
    (``MARGIN_FRACTION`` of its longer side, at least ``MIN_MARGIN_PX`` pixels), clipped to
    the grid."""
    res = grid.resolution
    left, bottom, right, top = bbox
    margin = max(MIN_MARGIN_PX * res, MARGIN_FRACTION * max(right - left, top - bottom))
    g_left, _g_bottom, _g_right, g_top = grid.bounds
    col0 = max(0, math.floor((left - margin - g_left) / res))
    col1 = min(grid.width, math.ceil((right + margin - g_left) / res))
    row0 = max(0, math.floor((g_top - (top + margin)) / res))
    row1 = min(grid.height, math.ceil((g_top - (bottom - margin)) / res))
    return row0, col0, max(1, row1 - row0), max(1, col1 - col0)


def _sub_grid(grid: Grid, window: tuple[int, int, int, int]) -> Grid:
    row0, col0, height, width = window
    return Grid(grid.crs, grid.transform @ Affine.translation(col0, row0), width, height)


def _pixels(window: tuple[int, int, int, int]) -> tuple[slice, slice]:
    row0, col0, height, width = window
    return slice(row0, row0 + height), slice(col0, col0 + width)


def chip_png(
    reflectance: NDArray[np.floating[Any]],
    stretch: Stretch,
    grid: Grid,
    outlines: Sequence[tuple[str, Sequence[Polygon]]],
    size: int = CHIP_PX,
) -> bytes:
    """A true-colour PNG of ``reflectance`` (band, y, x) on ``grid``, its longer side ``size``
    pixels (a whole number of PNG pixels per grid pixel when the grid is smaller), with each
    ``(colour, polygons)`` of ``outlines`` drawn over it; transparent where there is no data."""
    return true_colour_png(
        reflectance, stretch, grid, outlines, size, whole_pixels=True, line_width=_LINE_WIDTH
    )


# --- pure: the record --------------------------------------------------------------------------


def scene_provenance(sy: SiteYear) -> dict[str, Any]:
    """The scenes behind a year's composite: those in it (``scenes``), those only used to tell
    crops from bare ground (``greenness_scenes``), and those skipped with their reason."""

    def entry(s: SceneRecord) -> dict[str, Any]:
        return {
            "scene_id": s.scene_id,
            "datetime": s.datetime,
            "platform": s.platform,
            "collection": s.collection,
            "processing_baseline": s.processing_baseline,
            "offset_dn": s.offset_dn,
            "radiometry": s.radiometry,
            "offset_check": s.offset_check,
            "clear_fraction": s.clear_fraction,
            "haze_blue": s.haze_blue,
        }

    return {
        "scenes": [entry(s) for s in sy.scenes if s.skipped is None and s.role == "season"],
        "greenness_scenes": [
            entry(s) for s in sy.scenes if s.skipped is None and s.role != "season"
        ],
        "skipped": [{**entry(s), "reason": s.skipped} for s in sy.scenes if s.skipped is not None],
    }


def _median_clear(sy: SiteYear, window: tuple[int, int, int, int]) -> float | None:
    if sy.composite is None:
        return None
    counts = sy.composite.clear_count[_pixels(window)]
    return float(np.median(counts)) if counts.size else None


def _box_record(bounds: Bounds, crs: str) -> dict[str, Any]:
    wgs84 = reproject_geometry(box(*bounds), crs, _WGS84).bounds
    return {
        "crs": crs,
        "bounds": [round(v, 2) for v in bounds],
        "wgs84": [round(v, 7) for v in wgs84],
    }


def evidence_record(
    analysis: SiteAnalysis,
    case: EvidenceCase,
    stretch: Stretch,
    files: Mapping[str, str],
    rasters: Mapping[str, str],
) -> dict[str, Any]:
    """The ``evidence.json`` of ``case`` as plain data; ``files`` the SHA-256 of its chips by
    name, ``rasters`` of the rasters it rests on by path relative to the run directory."""
    grid, change = analysis.grid, case.change
    box_window = chip_window(case.bbox, grid)
    exact = _exact_window(case.bbox, grid)
    chip_grid = _sub_grid(grid, box_window)

    def composite(sy: SiteYear) -> dict[str, Any]:
        return {
            "year": sy.year,
            "window": list(sy.window),
            "widened": sy.widened,
            "median_clear_obs_in_bbox": _median_clear(sy, exact),
            "median_clear_obs_site": sy.median_clear,
            "coverage_site": sy.coverage,
            **scene_provenance(sy),
        }

    return {
        "sitewatch_evidence": 1,
        "site_id": analysis.site.id,
        "site_name": analysis.site.name,
        "year_from": change.year_from,
        "year_to": change.year_to,
        "change": {
            "kind": change.kind,
            "added_ha": change.added_ha,
            "added_pm_ha": change.added_pm_ha,
            "removed_ha": change.removed_ha,
            "removed_pm_ha": change.removed_pm_ha,
            "net_ha": change.net_ha,
            "net_pm_ha": change.net_pm_ha,
            "significant": change.significant,
            "coal_added_ha": change.coal_added_ha,
            "coal_removed_ha": change.coal_removed_ha,
            "coal_net_ha": change.coal_net_ha,
            "coal_net_pm_ha": change.coal_net_pm_ha,
            "added_rings": len(change.added_polygons),
            "removed_rings": len(change.removed_polygons),
        },
        "bbox": _box_record(case.bbox, grid.crs),
        "chip": {
            **_box_record(chip_grid.bounds, grid.crs),
            "pixel_window": dict(
                zip(("row_off", "col_off", "height", "width"), box_window, strict=True)
            ),
            "resolution_m": grid.resolution,
        },
        "stretch": {
            "bands": ["red", "green", "blue"],
            "low": list(stretch.low),
            "high": list(stretch.high),
        },
        "outlines": dict(OUTLINES),
        "before": composite(case.before),
        "after": composite(case.after),
        "sha256": dict(sorted(files.items())),
        "rasters_sha256": dict(sorted(rasters.items())),
    }


def _exact_window(bbox: Bounds, grid: Grid) -> tuple[int, int, int, int]:
    res = grid.resolution
    g_left, _b, _r, g_top = grid.bounds
    left, bottom, right, top = bbox
    col0 = max(0, math.floor((left - g_left) / res))
    col1 = min(grid.width, math.ceil((right - g_left) / res))
    row0 = max(0, math.floor((g_top - top) / res))
    row1 = min(grid.height, math.ceil((g_top - bottom) / res))
    return row0, col0, max(0, row1 - row0), max(0, col1 - col0)


# --- writers -----------------------------------------------------------------------------------


def _reflectance(sy: SiteYear) -> NDArray[np.floating[Any]]:
    if sy.composite is None:  # consecutive_changes pairs years with data only
        raise ValueError(f"{sy.site_id} {sy.year} has no composite to draw evidence from")
    return sy.composite.reflectance


def _package_folder(out: Path, site_id: str, case: EvidenceCase) -> Path:
    return out / EVIDENCE_DIR / site_id / case.folder_name


def _raster_dependencies(out: Path, site_id: str, case: EvidenceCase) -> list[Path]:
    return [
        year_raster_path(out, site_id, case.before.year, "truecolour"),
        year_raster_path(out, site_id, case.before.year, "classes"),
        year_raster_path(out, site_id, case.after.year, "truecolour"),
        year_raster_path(out, site_id, case.after.year, "classes"),
        change_raster_path(out, site_id, case.change.year_from, case.change.year_to),
    ]


def write_evidence(out: Path, analysis: SiteAnalysis) -> list[Path]:
    """Write the evidence package of each change of ``analysis`` worth one (module docstring)
    under ``out``; return the paths written (per package: before.png, after.png,
    evidence.json). The site's QGIS rasters (``site_rasters.write_qgis_rasters``) must exist:
    their checksums go into the record; ``FileNotFoundError`` names the one missing."""
    site_id, grid = analysis.site.id, analysis.grid
    stretch = site_stretch(analysis)
    written: list[Path] = []
    for case in evidence_cases(analysis):
        folder = _package_folder(out, site_id, case)
        window = chip_window(case.bbox, grid)
        chip_grid = _sub_grid(grid, window)
        rows, cols = _pixels(window)
        rings = [
            (OUTLINES["added"], case.change.added_polygons),
            (OUTLINES["removed"], case.change.removed_polygons),
        ]
        files: dict[str, str] = {}
        for name, sy, coal in (
            ("before.png", case.before, case.coal_before),
            ("after.png", case.after, case.coal_after),
        ):
            png = chip_png(
                _reflectance(sy)[:, rows, cols],
                stretch,
                chip_grid,
                [*rings, (OUTLINES["coal"], coal)],
            )
            written.append(atomic_write_bytes(folder / name, png))
            files[name] = sha256_file(folder / name)
        rasters = {}
        for path in _raster_dependencies(out, site_id, case):
            if not path.is_file():
                raise FileNotFoundError(
                    f"evidence for {site_id} {case.folder_name} rests on {path}, which does not "
                    "exist: write the site's rasters (write_qgis_rasters) first"
                )
            rasters[path.relative_to(out).as_posix()] = sha256_file(path)
        record = evidence_record(analysis, case, stretch, files, rasters)
        written.append(atomic_write_text(folder / "evidence.json", canonical_json(record)))
    return written


def write_evidence_index(out: Path, analyses: Sequence[SiteAnalysis]) -> Path:
    """Write ``evidence/index.json``: every package of ``analyses`` (written by
    :func:`write_evidence`) with its site, years, areas, path and the SHA-256 of its
    ``evidence.json``, sorted by site and years; return its path."""
    packages = []
    for analysis in analyses:
        site_id = analysis.site.id
        for case in evidence_cases(analysis):
            record = _package_folder(out, site_id, case) / "evidence.json"
            change = case.change
            packages.append(
                {
                    "site_id": site_id,
                    "year_from": change.year_from,
                    "year_to": change.year_to,
                    "added_ha": change.added_ha,
                    "removed_ha": change.removed_ha,
                    "coal_added_ha": change.coal_added_ha,
                    "coal_removed_ha": change.coal_removed_ha,
                    "path": record.relative_to(out).as_posix(),
                    "sha256": sha256_file(record),
                }
            )
    packages.sort(key=lambda p: (p["site_id"], p["year_from"], p["year_to"]))
    index = {"sitewatch_evidence_index": 1, "packages": packages}
    return atomic_write_text(out / EVIDENCE_DIR / "index.json", canonical_json(index))
