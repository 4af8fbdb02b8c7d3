"""QGIS-ready rasters of a site: what a GIS user opens to look at a site year by year.

Per site and year with a composite, in ``rasters/<site>/``:

==================================  ===========================================================
``<site>_<year>_truecolour.tif``    8-bit RGBA: red, green, blue stretched with one stretch for
                                    every year of the site (``report.true_colour_stretch``), so
                                    years compare; alpha 0 where no clear observation
``<site>_<year>_classes.tif``       uint8 ``CLASS_LEGEND``: 0 other ground, 1 footprint (not
                                    coal), 2 coal, 3 coal undecided (flagged as coal, but seen
                                    in too few clear looks to count), 4 footprint carried from
                                    another year (never seen clear this year), 255 no data
                                    (outside the analysis area or never seen clear)
``<site>_<y0>-<y1>_change.tif``     uint8 ``CHANGE_LEGEND`` per consecutive pair of years with
                                    data: 0 unchanged, 1 footprint added, 2 footprint removed,
                                    255 no data (not seen in both years); the rings of
                                    ``expansion.geojson`` (``ChangeMetrics``), burnt back
==================================  ===========================================================

The run's ``<site>_<year>_coal_frequency.tif`` (written by ``run_outputs``) gets its QML too.
Every raster is a COG with internal overviews (``rasters.write_cog``), tagged with
``site_id``, its year(s) and season window(s); the class maps carry a colour table and their
class names (band metadata ``category_<value>``). Beside each, ``<stem>.qml`` is its QGIS
style, copied from the package (``pipeline/data/qml_raster/<kind>.qml``: QGIS 3.22 format,
written once with PyQGIS from the legends below: a paletted renderer with the colour table's
colours and the class names, or a multiband colour renderer for true colour). QGIS does not
apply a raster's QML on its own: ``layer.loadNamedStyle(path)`` does, and so does a project.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.boundaries import rasterize
from pipeline.export.atomic import atomic_write_text
from pipeline.export.rasters import write_cog
from pipeline.export.report import Stretch, true_colour, true_colour_stretch
from pipeline.grid import Grid
from pipeline.results import ChangeMetrics, SiteAnalysis, SiteYear

__all__ = [
    "CHANGE_LEGEND",
    "CLASS_LEGEND",
    "NODATA",
    "RASTER_KINDS",
    "RasterClass",
    "change_map",
    "change_raster_path",
    "class_map",
    "consecutive_changes",
    "overview_count",
    "raster_style",
    "site_stretch",
    "truecolour_rgba",
    "write_qgis_rasters",
    "year_raster_path",
]

#: No-data value of the class and change maps.
NODATA = 255
#: The kinds of raster written here, each with a packaged QML of the same name.
RASTER_KINDS = ("truecolour", "classes", "change", "coal_frequency")
#: Overviews stop once the longer side is at most this many pixels.
OVERVIEW_MIN_PX = 64

_QML_DIR = ("data", "qml_raster")


@dataclass(frozen=True)
class RasterClass:
    """One value of a class map: its name and its colour (RGB; opaque)."""

    value: int
    label: str
    colour: tuple[int, int, int]


# Okabe-Ito colours, told apart with the common colour-vision deficiencies; footprint orange
# and coal near-black as in the vector styles, undecided coal reddish purple, added vermillion
# and removed blue as in ``expansion``.
CLASS_LEGEND: tuple[RasterClass, ...] = (
    RasterClass(0, "other ground", (230, 230, 230)),
    RasterClass(1, "footprint (not coal)", (230, 159, 0)),
    RasterClass(2, "coal", (40, 40, 40)),
    RasterClass(3, "coal undecided (too few clear looks)", (204, 121, 167)),
    RasterClass(4, "footprint carried from another year (never seen clear)", (240, 228, 66)),
)
CHANGE_LEGEND: tuple[RasterClass, ...] = (
    RasterClass(0, "unchanged", (210, 210, 210)),
    RasterClass(1, "footprint added", (213, 94, 0)),
    RasterClass(2, "footprint removed", (0, 114, 178)),
)


def _colour_table(legend: Sequence[RasterClass]) -> dict[int, tuple[int, int, int, int]]:
    table = {c.value: (*c.colour, 255) for c in legend}
    table[NODATA] = (0, 0, 0, 0)
    return table


def _category_names(legend: Sequence[RasterClass]) -> dict[int, str]:
    return {**{c.value: c.label for c in legend}, NODATA: "no data"}


# --- pure: arrays ------------------------------------------------------------------------------


def site_stretch(analysis: SiteAnalysis) -> Stretch:
    """The one true-colour stretch of a site, over the composites of all its years."""
    return true_colour_stretch(
        sy.composite.reflectance for sy in analysis.years if sy.composite is not None
    )


def truecolour_rgba(reflectance: NDArray[np.floating[Any]], stretch: Stretch) -> NDArray[np.uint8]:
    """(4, y, x) uint8 red, green, blue and alpha of a (band, y, x) composite: ``stretch``
    mapped to 0-255, alpha 255 where all three bands were seen clear, else 0 (and the colour 0)."""
    rgba = true_colour(reflectance, stretch)  # (y, x, 4) in 0-1
    seen = rgba[..., 3] > 0
    out = np.round(rgba * 255.0).astype(np.uint8)
    out[~seen] = 0
    return np.ascontiguousarray(np.moveaxis(out, -1, 0))


def class_map(sy: SiteYear) -> NDArray[np.uint8]:
    """(y, x) uint8 of ``CLASS_LEGEND``: 2 coal, 3 coal undecided (``SiteYear.coal_undecided``),
    1 footprint that is neither, 0 other ground, ``NODATA`` where the year is not ``valid``
    (outside the analysis area or never seen), except 4 where footprint never seen was carried
    from another year (``SiteYear.gap_filled``) and 3 where coal may be hidden there."""
    classes = np.where(sy.coal_mask, 2, np.where(sy.footprint, 1, 0)).astype(np.uint8)
    classes[~sy.valid] = NODATA
    if sy.gap_filled is not None:
        classes[sy.gap_filled] = 4
    if sy.coal_undecided is not None:
        classes[sy.coal_undecided & ~sy.coal_mask] = 3
    return classes


def change_map(
    before: SiteYear, after: SiteYear, change: ChangeMetrics, grid: Grid
) -> NDArray[np.uint8]:
    """(y, x) uint8 of ``CHANGE_LEGEND`` from ``before`` to ``after``: the change's added and
    removed rings (pixel-exact polygons, burnt back by pixel centre), ``NODATA`` where either
    year is not valid."""
    added = rasterize(change.added_polygons, grid.transform, grid.shape)
    removed = rasterize(change.removed_polygons, grid.transform, grid.shape)
    out = np.where(added, 1, np.where(removed, 2, 0)).astype(np.uint8)
    out[~(before.valid & after.valid)] = NODATA
    return out


def consecutive_changes(
    analysis: SiteAnalysis,
) -> list[tuple[SiteYear, SiteYear, ChangeMetrics]]:
    """The changes between consecutive years with data (not first-vs-last), with their years."""
    observed = [sy for sy in analysis.years if sy.composite is not None]
    by_pair = {(c.year_from, c.year_to): c for c in analysis.changes}
    return [
        (a, b, by_pair[(a.year, b.year)])
        for a, b in itertools.pairwise(observed)
        if (a.year, b.year) in by_pair
    ]


def overview_count(shape: tuple[int, int]) -> int:
    """Overview levels (halving) until the longer side is at most ``OVERVIEW_MIN_PX``; at
    least one, so every raster has overviews."""
    longest = max(shape)
    return max(1, math.ceil(math.log2(max(longest, 1) / OVERVIEW_MIN_PX)))


# --- paths and styles --------------------------------------------------------------------------


def year_raster_path(out: Path, site_id: str, year: int, kind: str) -> Path:
    """``rasters/<site>/<site>_<year>_<kind>.tif`` under ``out`` (truecolour, classes,
    coal_frequency...)."""
    return out / "rasters" / site_id / f"{site_id}_{year}_{kind}.tif"


def change_raster_path(out: Path, site_id: str, year_from: int, year_to: int) -> Path:
    """``rasters/<site>/<site>_<year_from>-<year_to>_change.tif`` under ``out``."""
    return out / "rasters" / site_id / f"{site_id}_{year_from}-{year_to}_change.tif"


def raster_style(kind: str) -> str:
    """The packaged QML of a raster kind (one of ``RASTER_KINDS``)."""
    if kind not in RASTER_KINDS:
        raise KeyError(f"no raster style {kind!r}; kinds are {RASTER_KINDS}")
    qml = resources.files("pipeline").joinpath(*_QML_DIR, f"{kind}.qml")
    return qml.read_text(encoding="utf-8")


# --- writer ------------------------------------------------------------------------------------


def write_qgis_rasters(out: Path, analysis: SiteAnalysis) -> list[Path]:
    """Write the true-colour and class rasters of each year with data, the change raster of
    each consecutive pair of them, and a QML beside each (see the module docstring); return
    the paths written, rasters and QMLs, in a fixed order."""
    site, grid = analysis.site.id, analysis.grid
    stretch = site_stretch(analysis)
    levels = overview_count(grid.shape)
    written: list[Path] = []

    def emit(path: Path, kind: str) -> None:
        written.append(path)
        written.append(atomic_write_text(path.with_suffix(".qml"), raster_style(kind)))

    for sy in analysis.years:
        if sy.composite is None:
            continue
        tags = {"site_id": site, "year": str(sy.year), "window": "/".join(sy.window)}
        path = year_raster_path(out, site, sy.year, "truecolour")
        write_cog(
            path,
            truecolour_rgba(sy.composite.reflectance, stretch),
            grid,
            nodata=None,
            band_names=["red", "green", "blue", "alpha"],
            colour_interpretation=["red", "green", "blue", "alpha"],
            tags={**tags, "stretch": stretch.describe()},
            resampling="average",
            overview_count=levels,
        )
        emit(path, "truecolour")
        path = year_raster_path(out, site, sy.year, "classes")
        write_cog(
            path,
            class_map(sy),
            grid,
            nodata=NODATA,
            band_names=["class"],
            tags=tags,
            colormap=_colour_table(CLASS_LEGEND),
            category_names=_category_names(CLASS_LEGEND),
            resampling="mode",
            overview_count=levels,
        )
        emit(path, "classes")
        # The run's coal frequency COG (``run_outputs.write_site_rasters``), when written: its
        # style (0-100%, transparent at 0, the counting rule's 50% in red).
        path = year_raster_path(out, site, sy.year, "coal_frequency")
        if path.is_file():
            written.append(
                atomic_write_text(path.with_suffix(".qml"), raster_style("coal_frequency"))
            )
    for before, after, change in consecutive_changes(analysis):
        path = change_raster_path(out, site, before.year, after.year)
        write_cog(
            path,
            change_map(before, after, change, grid),
            grid,
            nodata=NODATA,
            band_names=["change"],
            tags={
                "site_id": site,
                "year_from": str(before.year),
                "year_to": str(after.year),
                "window_from": "/".join(before.window),
                "window_to": "/".join(after.window),
            },
            colormap=_colour_table(CHANGE_LEGEND),
            category_names=_category_names(CHANGE_LEGEND),
            resampling="mode",
            overview_count=levels,
        )
        emit(path, "change")
    return written
