"""The output layers of a run, built once as typed tables with a declared schema.

Owns what every format writer consumes: a :class:`Table` is a name, its :class:`Column` s (name,
kind, description, decimals) and rows whose values were made plain data once, on construction,
by one function per column kind (:data:`PLAIN`); spatial tables carry a geometry per row and its
CRS. Writers (GeoJSON, CSV, Parquet, GeoPackage) only serialise those values, so a date, a NaN,
a numpy scalar, an enum or a mapping reads the same in every file:

========  ======================================  =============================================
kind      plain value                             missing
========  ======================================  =============================================
int       ``int`` (32-bit signed)                 None
float     finite ``float``                        None (also NaN and infinities)
bool      ``bool``                                None
date      ``datetime.date`` (from an ISO string)  None
text      ``str`` (an enum as its value)          None
json      lists and str-keyed dicts of these      None (text formats: compact JSON, sorted keys)
========  ======================================  =============================================

:func:`build_tables` turns a run's analyses into the tables of :class:`OutputTables`; the rows of
the trend tables come from :func:`trend_rows`, :func:`summary_rows` and :func:`event_rows`.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.config import TrendsConfig
from pipeline.events import Event, event_tests
from pipeline.expansion import outline
from pipeline.export.expansion import (
    analysis_records,
    expansion_features,
    expansion_rows,
    sector_rows,
)
from pipeline.grid import reproject_geometry
from pipeline.results import SceneRecord, SiteAnalysis, SiteYear, YearMetrics
from pipeline.sites import Site
from pipeline.trends import SeriesSelection, select_series, summarise

__all__ = [
    "ADJACENT_ZONE_KIND",
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "EXPANSION_PAIR_SCHEMA",
    "EXPANSION_SCHEMA",
    "EXPANSION_SECTOR_SCHEMA",
    "FOOTPRINT_SCHEMA",
    "KINDS",
    "PLAIN",
    "SITE_SCHEMA",
    "STOCKPILE_SCHEMA",
    "SUMMARY_COLUMNS",
    "SUMMARY_SCHEMA",
    "TREND_COLUMNS",
    "TREND_SCHEMA",
    "WGS84",
    "Column",
    "Kind",
    "OutputTables",
    "SampleAreas",
    "Table",
    "TableOptions",
    "adjacent_zone_of",
    "build_tables",
    "event_rows",
    "json_text",
    "plain",
    "summary_rows",
    "trend_rows",
]

WGS84 = "EPSG:4326"
#: ``Site.kind`` of the zones ``sites.adjacent_zones`` derives beside the camps.
ADJACENT_ZONE_KIND = "adjacent_zone"

Kind = Literal["int", "float", "bool", "date", "text", "json"]
KINDS: tuple[Kind, ...] = get_args(Kind)
_INT32 = (-(2**31), 2**31 - 1)


# --- one conversion to plain data ---------------------------------------------------------------


def _int(value: Any) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError("expected an int")
    number = int(value)
    if not _INT32[0] <= number <= _INT32[1]:
        raise ValueError(f"outside the 32-bit range {_INT32[0]}..{_INT32[1]}")
    return number


def _float(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise TypeError("expected a number")
    number = float(value)
    return number if math.isfinite(number) else None


def _bool(value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError("expected a bool")
    return bool(value)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return dt.date.fromisoformat(str(value.astype("datetime64[D]")))
    if isinstance(value, str):
        return dt.date.fromisoformat(value)  # ValueError for anything but YYYY-MM-DD
    raise TypeError("expected a date or an ISO 8601 date string")


def _text(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return _text(value.value)
    if not isinstance(value, str):
        raise TypeError("expected a str or a str enum")
    return str(value)


def _json(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return _json(value.value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"mapping keys must be strings, got {sorted(map(repr, value))}")
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json(v) for v in value]
    raise TypeError("expected None, bool, int, float, str, date, enum, or lists/mappings of these")


#: The conversion of each column kind to plain data (see the module's table).
PLAIN: Mapping[Kind, Callable[[Any], Any]] = {
    "int": _int, "float": _float, "bool": _bool, "date": _date, "text": _text, "json": _json,
}  # fmt: skip


def plain(value: Any, kind: Kind) -> Any:
    """``value`` as plain data of ``kind``; None and NaN are None (missing).
    ``TypeError``/``ValueError`` saying what the kind allows."""
    if value is None:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    return PLAIN[kind](value)


def json_text(value: Any) -> str | None:
    """A ``json`` cell in a text format (CSV, Parquet, GeoPackage): compact, keys sorted."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


# --- schema -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One field of a table: its ``kind`` (:data:`KINDS`), what it holds, and the decimals text
    formats write its floats with (``digits``; None: the writer's default)."""

    name: str
    kind: Kind
    description: str
    digits: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.digits is not None and (self.kind not in ("float", "json") or self.digits < 0):
            raise ValueError(
                f"column {self.name!r}: digits {self.digits!r} need a float or json column and "
                "a value >= 0"
            )


@dataclass(frozen=True)
class Table:
    """A layer or attribute table: rows holding every column, made plain on construction.

    ``geometries`` (one per row, None for none) makes it spatial, in ``crs``. ``ValueError``
    naming the table, row and column for a missing or unknown column, a repeated column name,
    geometries that do not match the rows, and a value its kind does not allow."""

    name: str
    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Any], ...]
    geometries: tuple[BaseGeometry | None, ...] | None = None
    crs: str | None = None

    def __post_init__(self) -> None:
        columns = tuple(self.columns)
        names = [c.name for c in columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"table {self.name!r}: columns {repeated} appear more than once")
        rows = tuple(self._plain_row(i, row, columns) for i, row in enumerate(self.rows))
        geometries = None if self.geometries is None else tuple(self.geometries)
        if geometries is not None and len(geometries) != len(rows):
            raise ValueError(
                f"table {self.name!r}: {len(geometries)} geometries for {len(rows)} rows"
            )
        if (geometries is None) != (self.crs is None):
            raise ValueError(f"table {self.name!r}: geometries and a crs go together")
        # Frozen: the normalised values replace what was given, once.
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "geometries", geometries)

    def _plain_row(
        self, index: int, row: Mapping[str, Any], columns: tuple[Column, ...]
    ) -> dict[str, Any]:
        where = f"table {self.name!r} row {index}"
        unknown = sorted(set(row) - {c.name for c in columns})
        if unknown:
            raise ValueError(f"{where}: columns {unknown} are not in the schema")
        out: dict[str, Any] = {}
        for c in columns:
            if c.name not in row:
                raise ValueError(f"{where}: no column {c.name!r} (it has {sorted(row)})")
            try:
                out[c.name] = plain(row[c.name], c.kind)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{where} column {c.name!r}: {row[c.name]!r} is not a {c.kind} value: {exc}"
                ) from None
        return out

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def spatial(self) -> bool:
        return self.geometries is not None

    def float_digits(self) -> dict[str, int]:
        """Decimals of the columns that declare them, for the text writers."""
        return {c.name: c.digits for c in self.columns if c.digits is not None}

    def flat_rows(self) -> list[dict[str, Any]]:
        """The rows with ``json`` cells as JSON text (:func:`json_text`): for CSV, Parquet and
        GeoPackage, which have no nested values."""
        nested = [c.name for c in self.columns if c.kind == "json"]
        return [{**r, **{n: json_text(r[n]) for n in nested}} for r in self.rows]

    def features(self) -> list[tuple[BaseGeometry | None, Mapping[str, Any]]]:
        """``(geometry, row)`` pairs of a spatial table (GeoJSON's features)."""
        if self.geometries is None:
            raise ValueError(f"table {self.name!r} has no geometries")
        return list(zip(self.geometries, self.rows, strict=True))


def _columns(*specs: tuple[str, Kind, str] | tuple[str, Kind, str, int]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


# --- schemas of the layers ----------------------------------------------------------------------

SITE_SCHEMA = _columns(
    ("site_id", "text", "site id from the sites file"),
    ("name", "text", "site name"),
    ("kind", "text", "site kind (sites.SITE_KINDS)"),
    ("parent", "text", "id of the site this one is a focus area or adjacent zone of"),
    ("confidence", "text", "location_confidence.level (high, medium, low)"),
    ("sources", "json", "every cited source (list)"),
    ("analysis_area_ha", "float", "area analysed (ha), the site without its buffer"),
    ("grid_crs", "text", "CRS of the site's analysis grid (its UTM zone)"),
)
_SITE_YEAR = _columns(
    ("site_id", "text", "site id"),
    ("site_name", "text", "site name"),
    ("year", "int", "year of the season"),
    ("n_scenes", "int", "scenes in the season composite"),
    ("median_clear_obs", "float", "median clear observations over the analysis area"),
    ("coverage", "float", "share of the analysis area seen clear at least once"),
    ("window", "text", "season window as start/end (ISO 8601 interval)"),
    ("flags", "text", "data-sufficiency and dating flags, ';'-joined (see trends.csv)"),
)
_DATES = _columns(
    ("date_start", "date", "first day of the season window (QGIS temporal controller)"),
    ("date_end", "date", "last day of the season window (QGIS temporal controller)"),
)
FOOTPRINT_SCHEMA = (
    *_SITE_YEAR,
    *_columns(
        ("area_ha", "float", "footprint area (ha); empty for a year without data"),
        ("area_pm_ha", "float", "95% half-width of area_ha from the boundary (ha)"),
    ),
    *_DATES,
)
STOCKPILE_SCHEMA = (
    *_SITE_YEAR,
    *_columns(
        ("area_ha", "float", "coal stockpile area (ha); empty for a year without data"),
        ("area_pm_ha", "float", "95% half-width of area_ha from the boundary (ha)"),
        ("mean_frequency", "float", "mean coal detection frequency over the stockpiles"),
        ("measure", "text", "what area_ha measures (area, not tonnage)"),
    ),
    *_DATES,
)
#: The columns naming a pair of years in the expansion tables (the CSVs have no site name).
_PAIR = _columns(
    ("site_id", "text", "site id"),
    ("source", "text", "outlines compared: footprint (imagery) or perimeter (drawn)"),
    ("year_from", "int", "earlier year"),
    ("year_to", "int", "later year"),
    ("pair", "text", "consecutive or first-last"),
)
_NAMED_PAIR = (*_PAIR[:1], Column("site_name", "text", "site name"), *_PAIR[1:])


EXPANSION_SCHEMA = (
    *_NAMED_PAIR,
    *_columns(
        ("change", "text", "added or removed ring"),
        ("area_ha", "float", "ring area (ha)", 4),
        ("net_change_significant", "bool", "the net change exceeds its 95% interval (footprints)"),
        ("summary", "text", "how the boundary moved, in words"),
        ("max_outward_m", "float", "largest outward move of the boundary (m)", 1),
        ("max_retreat_m", "float", "largest retreat of the boundary (m)", 1),
        ("main_direction", "text", "compass sector of the largest added area"),
        ("hausdorff_m", "float", "Hausdorff distance between the outlines (m)", 1),
        ("displacement_pm_m", "float", "uncertainty of the distances (m): a pixel", 1),
        ("sectors", "json", "per compass sector: bearing, median/max move, areas"),
    ),
)
EXPANSION_PAIR_SCHEMA = (
    *_PAIR,
    *_columns(
        ("area_from_ha", "float", "area in year_from (ha)"),
        ("area_to_ha", "float", "area in year_to (ha)"),
        ("perimeter_from_m", "float", "perimeter in year_from (m)", 1),
        ("perimeter_to_m", "float", "perimeter in year_to (m)", 1),
        ("added_ha", "float", "added ring (ha)"),
        ("removed_ha", "float", "removed ring (ha)"),
        ("net_ha", "float", "added - removed (ha)"),
        ("net_change_significant", "bool", "the net change exceeds its 95% interval (footprints)"),
        ("max_outward_m", "float", "largest outward move (m)", 1),
        ("max_retreat_m", "float", "largest retreat (m)", 1),
        ("main_direction", "text", "compass sector of the largest added area"),
        ("hausdorff_m", "float", "Hausdorff distance between the outlines (m)", 1),
        ("displacement_pm_m", "float", "uncertainty of the distances (m)", 1),
        ("summary", "text", "how the boundary moved, in words"),
    ),
)
EXPANSION_SECTOR_SCHEMA = (
    *_PAIR,
    *_columns(
        ("sector", "text", "compass sector"),
        ("bearing_deg", "float", "bearing of the sector's centre (degrees)", 1),
        ("median_m", "float", "median outward move in the sector (m)", 1),
        ("max_m", "float", "largest outward move in the sector (m)", 1),
        ("max_retreat_m", "float", "largest retreat in the sector (m)", 1),
        ("added_ha", "float", "added area in the sector (ha)"),
        ("removed_ha", "float", "removed area in the sector (ha)"),
    ),
)
TREND_SCHEMA = _columns(
    ("site_id", "text", "site id"),
    ("year", "int", "year of the season"),
    ("footprint_ha", "float", "footprint area (ha)"),
    ("footprint_pm_ha", "float", "95% half-width of footprint_ha from internal edges (ha)"),
    ("footprint_perimeter_m", "float", "perimeter of the footprint outline (m)"),
    ("coal_ha", "float", "coal stockpile area (ha)"),
    ("coal_pm_ha", "float", "95% half-width of coal_ha (ha)"),
    ("compared_to_year", "int", "previous year with data, the change columns' base"),
    ("added_ha", "float", "footprint added since compared_to_year (ha)"),
    ("removed_ha", "float", "footprint removed since compared_to_year (ha)"),
    ("coal_added_ha", "float", "coal added (ha)"),
    ("coal_removed_ha", "float", "coal removed (ha)"),
    ("net_change_significant", "bool", "|net_change_ha| > net_change_pm_ha"),
    ("n_scenes", "int", "scenes in the season composite"),
    ("n_skipped", "int", "scenes found but not used"),
    ("coverage", "float", "share of the analysis area seen clear"),
    ("median_clear_obs", "float", "median clear observations"),
    ("window_start", "date", "first day of the season window"),
    ("window_end", "date", "last day of the season window"),
    ("flags", "text", "data-sufficiency, sensor-break and dating flags, ';'-joined"),
    ("net_change_ha", "float", "footprint net change within pixels seen in both years (ha)"),
    ("net_change_pm_ha", "float", "95% half-width of net_change_ha (ha)"),
    ("added_pm_ha", "float", "95% half-width of added_ha (ha)"),
    ("removed_pm_ha", "float", "95% half-width of removed_ha (ha)"),
    ("change_kind", "text", "kind of the change (trends.change_kind)"),
    ("coal_net_change_ha", "float", "coal net change (ha)"),
    ("coal_net_change_pm_ha", "float", "95% half-width of coal_net_change_ha (ha)"),
    ("adjacent_built_ha", "float", "footprint of the site's adjacent zone (ha)"),
    ("adjacent_built_pm_ha", "float", "95% half-width of adjacent_built_ha (ha)"),
    ("coal_mean_frequency", "float", "mean coal detection frequency over the coal mask"),
    ("coal_median_frequency", "float", "median coal detection frequency over the coal mask"),
    ("redated_ha", "float", "ground cleared in this season, dated by the next year (ha)"),
    ("unseen_fields_ha", "float", "ground removed as a field unseen while crops stand (ha)"),
    ("exposed_bed_ha", "float", "exposed bed of water drawn down, not counted (ha)"),
    ("terrain_shadow_ha", "float", "terrain-shadowed slope left out of footprint and coal (ha)"),
    ("coal_undecided_ha", "float", "flagged as coal but seen in too few clear looks (ha)"),
    ("gap_filled_ha", "float", "footprint never seen clear this year, carried from another (ha)"),
    ("shift_x_px", "float", "imagery east of the site's common frame before co-registration (px)"),
    ("shift_y_px", "float", "imagery north of the site's common frame before co-registration (px)"),
    ("sensors", "text", "platforms of the scenes used, ';'-joined"),
    ("processing_baselines", "text", "Sentinel-2 processing baselines, ';'-joined"),
    ("interval_basis", "text", "edge or sample: where the intervals come from"),
    ("footprint_sample_ha", "float", "sample-based footprint area (ha)"),
    ("footprint_sample_low_ha", "float", "its 95% interval, low end (ha)"),
    ("footprint_sample_high_ha", "float", "its 95% interval, high end (ha)"),
    ("coal_sample_ha", "float", "sample-based coal area (ha)"),
    ("coal_sample_low_ha", "float", "its 95% interval, low end (ha)"),
    ("coal_sample_high_ha", "float", "its 95% interval, high end (ha)"),
)
SUMMARY_SCHEMA = _columns(
    ("site_id", "text", "site id"),
    ("metric", "text", "trends.csv column summarised"),
    ("n_years", "int", "years in the statistics"),
    ("n_years_left_out", "int", "years left out"),
    ("years_left_out", "text", "year:reasons (a year's flags ','-joined), ';'-joined"),
    ("radiometry_breaks", "text", "years after a radiometry break, ';'-joined"),
    ("first_year", "int", "first year kept"),
    ("last_year", "int", "last year kept"),
    ("first", "float", "value in first_year"),
    ("last", "float", "value in last_year"),
    ("change", "float", "last - first"),
    ("slope_per_year", "float", "Theil-Sen slope per year"),
    ("slope_low", "float", "slope 95% interval, low end"),
    ("slope_high", "float", "slope 95% interval, high end"),
    ("mk_tau", "float", "Mann-Kendall tau"),
    ("mk_p", "float", "Mann-Kendall p"),
    ("trend", "text", "Mann-Kendall verdict"),
    ("hr_p", "float", "Hamed-Rao corrected p"),
    ("hr_correction", "float", "Hamed-Rao n/n*"),
    ("trend_hr", "text", "Hamed-Rao verdict"),
    ("pettitt_last_year_before", "int", "Pettitt: last year before the change"),
    ("pettitt_first_year_after", "int", "Pettitt: first year of the new level"),
    ("pettitt_p", "float", "Pettitt permutation p"),
    ("pettitt_at_break", "bool", "the change point falls on a radiometry break"),
)
EVENT_SCHEMA = _columns(
    ("site_id", "text", "site id"),
    ("metric", "text", "trends.csv column tested"),
    ("event", "text", "event name"),
    ("event_date", "date", "event date"),
    ("status", "text", "before/after comparison status"),
    ("before_years", "text", "years before the event, ';'-joined"),
    ("after_years", "text", "years after the event, ';'-joined"),
    ("straddling_years", "text", "years whose window contains the event, ';'-joined"),
    ("before_mean", "float", "mean before"),
    ("before_low", "float", "bootstrap 95% interval, low end"),
    ("before_high", "float", "bootstrap 95% interval, high end"),
    ("after_mean", "float", "mean after"),
    ("after_low", "float", "bootstrap 95% interval, low end"),
    ("after_high", "float", "bootstrap 95% interval, high end"),
    ("difference", "float", "after - before"),
    ("difference_low", "float", "95% interval, low end"),
    ("difference_high", "float", "95% interval, high end"),
    ("its_status", "text", "interrupted time series status"),
    ("its_level_change", "float", "level change at the event"),
    ("its_slope_change", "float", "slope change at the event"),
    ("its_p", "float", "permutation p"),
    ("its_p_holm", "float", "its_p Holm-adjusted over the distinct splits"),
    ("its_level_p", "float", "p of the level change"),
    ("its_slope_p", "float", "p of the slope change"),
    ("same_split_as", "text", "an earlier event splitting the years the same way"),
)

TREND_COLUMNS = tuple(c.name for c in TREND_SCHEMA)
SUMMARY_COLUMNS = tuple(c.name for c in SUMMARY_SCHEMA)
EVENT_COLUMNS = tuple(c.name for c in EVENT_SCHEMA)
SUMMARY_METRICS = ("footprint_ha", "coal_ha")


# --- trend rows ---------------------------------------------------------------------------------

#: ``interval_basis`` of a row whose areas carry only the boundary's interval (``*_pm_ha``).
EDGE_BASIS = "edge"
#: ``interval_basis`` of a row with a sample-based estimate (``*_sample_*``, Olofsson et al.).
SAMPLE_BASIS = "sample"
#: Classes of a sample-based estimate that enter ``trends.csv``, and their column prefix.
SAMPLE_METRICS = (("footprint", "footprint"), ("coal", "coal"))
#: Sample-based areas ``{(site_id, year, class): (estimate_ha, low_ha, high_ha)}``, 95%
#: interval, as ``pipeline.sampling.sample_based_areas`` returns them.
SampleAreas = Mapping[tuple[str, int, str], tuple[float, float, float]]

# A Sentinel-2 rule's reason names the processing baseline it was decided from
# (``sources.sensors.s2_radiometry``: "baseline 04.00 >= 04.00: DN - 1000").
_BASELINE = re.compile(r"\bbaseline (\d{2}\.\d{2})\b")

# Below this share of the analysis area seen clear, areas undercount: flagged.
MIN_COVERAGE = 0.95


def _flags(sy: SiteYear, previous: SiteYear | None, min_clear: int) -> list[str]:
    """Data-sufficiency and sensor-break flags for one site-year row; ``previous`` is the last
    earlier year that had data."""
    flags = []
    if sy.composite is None:
        flags.append("no-data")
    elif sy.median_clear < min_clear:
        flags.append("few-clear-observations")
    if sy.composite is not None and sy.coverage < MIN_COVERAGE:
        flags.append("partial-coverage")
    if sy.widened:
        flags.append("widened-window")
    if any(s.skipped for s in sy.scenes):
        flags.append("scenes-skipped")
    offsets = {s.offset_dn for s in sy.scenes if s.skipped is None}
    if previous is not None:
        before = {s.offset_dn for s in previous.scenes if s.skipped is None}
        if before and offsets and before != offsets:
            flags.append("radiometry-break")  # e.g. Sentinel-2 baseline 04.00 (Jan 2022)
    return flags


def _scenes_used(sy: SiteYear) -> list[SceneRecord]:
    """The scenes counted in ``n_scenes``: read, and in the season composite."""
    return [s for s in sy.scenes if s.skipped is None and s.role == "season"]


def scene_sensors(sy: SiteYear) -> str:
    """The distinct platforms (``sentinel-2a``, ``landsat-8``, ...) of the scenes used, sorted
    and ';'-joined; the scene ids themselves are in the manifest."""
    return ";".join(sorted({s.platform for s in _scenes_used(sy) if s.platform}))


def processing_baselines(sy: SiteYear) -> str:
    """The distinct Sentinel-2 processing baselines (``NN.NN``) of the scenes used, sorted and
    ';'-joined: the scene's ``s2:processing_baseline``, else the one its radiometric rule names
    (site-years stored before the field existed); empty for other sensors."""
    found = set()
    for s in _scenes_used(sy):
        named = _BASELINE.search(s.radiometry)
        if s.processing_baseline or named:
            found.add(s.processing_baseline or (named.group(1) if named else ""))
    return ";".join(sorted(found))


def coal_frequency_stats(sy: SiteYear) -> tuple[float | None, float | None]:
    """Mean and median coal detection frequency (share of a pixel's clear looks flagged coal)
    over the year's coal mask; None without coal pixels."""
    if sy.coal is None:
        return None, None
    values = np.asarray(sy.coal.frequency[sy.coal_mask], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    return float(values.mean()), float(np.median(values))


def adjacent_zone_of(analyses: Sequence[SiteAnalysis]) -> dict[str, SiteAnalysis]:
    """``{parent site id: analysis of its adjacent zone}`` for the zones in ``analyses``
    (``sites.adjacent_zones``: kind ``adjacent_zone``, ``parent`` the camp)."""
    return {
        a.site.parent: a
        for a in analyses
        if a.site.kind == ADJACENT_ZONE_KIND and a.site.parent is not None
    }


def _sample(
    sample_areas: SampleAreas | None, site_id: str, year: int, cls: str
) -> tuple[float, float, float] | None:
    if sample_areas is None or (site_id, year, cls) not in sample_areas:
        return None
    est, low, high = (float(v) for v in sample_areas[(site_id, year, cls)])
    if not (math.isfinite(est) and low <= est <= high):
        raise ValueError(
            f"sample-based area of {site_id} {year} {cls}: (estimate, low, high) = "
            f"({est}, {low}, {high}); allowed: finite, low <= estimate <= high"
        )
    return est, low, high


def trend_rows(
    analysis: SiteAnalysis,
    min_clear: int,
    *,
    adjacent: SiteAnalysis | None = None,
    sample_areas: SampleAreas | None = None,
) -> list[dict[str, Any]]:
    """A row per year of ``analysis`` with every column of :data:`TREND_COLUMNS`.

    The change columns compare with the previous year that had data. ``adjacent``: the
    analysis of the site's adjacent zone in the same run (:func:`adjacent_zone_of`), whose
    footprint in the same year fills ``adjacent_built_*``. ``sample_areas``: sample-based
    estimates (:data:`SampleAreas`, classes ``footprint`` and ``coal``) that fill the
    ``*_sample_*`` columns where present; such a row's ``interval_basis`` is ``sample``, any
    other row with data ``edge``. A year without data has no areas (None, never 0).
    """
    site_id = analysis.site.id
    changes = {(c.year_from, c.year_to): c for c in analysis.changes}
    # The zone's footprint per year it was seen (a year without data has no area).
    zone: dict[int, YearMetrics] = (
        {
            sy.year: m
            for sy, m in zip(adjacent.years, adjacent.metrics, strict=True)
            if sy.composite is not None
        }
        if adjacent is not None
        else {}
    )
    rows = []
    prev: SiteYear | None = None  # the last earlier year with data
    for sy, m in zip(analysis.years, analysis.metrics, strict=True):
        change = changes.get((prev.year, sy.year)) if prev is not None else None
        seen = sy.composite is not None
        zone_m = zone.get(sy.year)
        mean_freq, median_freq = coal_frequency_stats(sy) if seen else (None, None)
        row: dict[str, Any] = {
            "site_id": site_id,
            "year": sy.year,
            "footprint_ha": m.footprint_ha if seen else None,
            "footprint_pm_ha": m.footprint_pm_ha if seen else None,
            "footprint_perimeter_m": (
                outline(MultiPolygon(list(m.footprint_polygons))).perimeter_m if seen else None
            ),
            "coal_ha": m.coal_ha if seen else None,
            "coal_pm_ha": m.coal_pm_ha if seen else None,
            "compared_to_year": change.year_from if change else None,
            "added_ha": change.added_ha if change else None,
            "removed_ha": change.removed_ha if change else None,
            "coal_added_ha": change.coal_added_ha if change else None,
            "coal_removed_ha": change.coal_removed_ha if change else None,
            "net_change_significant": change.significant if change else None,
            "n_scenes": sy.n_used,
            "n_skipped": sy.n_skipped,
            "coverage": sy.coverage,
            "median_clear_obs": sy.median_clear,
            "window_start": sy.window[0],
            "window_end": sy.window[1],
            "flags": ";".join([*_flags(sy, prev, min_clear), *m.flags]),
            "net_change_ha": change.net_ha if change else None,
            "net_change_pm_ha": change.net_pm_ha if change else None,
            "added_pm_ha": change.added_pm_ha if change else None,
            "removed_pm_ha": change.removed_pm_ha if change else None,
            "change_kind": change.kind if change else None,
            "coal_net_change_ha": change.coal_net_ha if change else None,
            "coal_net_change_pm_ha": change.coal_net_pm_ha if change else None,
            "adjacent_built_ha": zone_m.footprint_ha if zone_m else None,
            "adjacent_built_pm_ha": zone_m.footprint_pm_ha if zone_m else None,
            "coal_mean_frequency": mean_freq,
            "coal_median_frequency": median_freq,
            "redated_ha": m.redated_ha if seen else None,
            "unseen_fields_ha": m.unseen_fields_ha if seen else None,
            "exposed_bed_ha": m.exposed_bed_ha if seen else None,
            "terrain_shadow_ha": m.terrain_shadow_ha if seen else None,
            "coal_undecided_ha": m.coal_undecided_ha if seen else None,
            "gap_filled_ha": m.gap_filled_ha if seen else None,
            "shift_x_px": m.shift_x_px if seen else None,
            "shift_y_px": m.shift_y_px if seen else None,
            "sensors": scene_sensors(sy),
            "processing_baselines": processing_baselines(sy),
        }
        sampled = False
        for cls, prefix in SAMPLE_METRICS:
            est = _sample(sample_areas, site_id, sy.year, cls)
            sampled |= est is not None
            values = est if est is not None else (None, None, None)
            for suffix, value in zip(("ha", "low_ha", "high_ha"), values, strict=True):
                row[f"{prefix}_sample_{suffix}"] = value
        row["interval_basis"] = SAMPLE_BASIS if sampled else EDGE_BASIS if seen else None
        rows.append(row)
        if seen:
            prev = sy
    return rows


def _selected(rows: Sequence[dict[str, Any]], metric: str, keep_flagged: bool) -> SeriesSelection:
    return select_series(
        [{"year": r["year"], metric: r[metric], "flags": r["flags"]} for r in rows],
        metric,
        keep_flagged=keep_flagged,
    )


def summary_rows(
    analysis: SiteAnalysis, rows: Sequence[dict[str, Any]], trends: TrendsConfig
) -> list[dict[str, Any]]:
    """A row per metric: the statistics over the years kept (flagged years left out unless
    ``trends.keep_flagged``; how many and why is in the row)."""
    out = []
    for metric in SUMMARY_METRICS:
        sel = _selected(rows, metric, trends.keep_flagged)
        s = summarise(
            sel.years, sel.values, min_n=trends.min_years, alpha=trends.alpha,
            breaks=sel.radiometry_breaks,
        )  # fmt: skip
        out.append(
            {
                "site_id": analysis.site.id,
                "metric": metric,
                "n_years": s.n,
                "n_years_left_out": sel.n_left_out,
                "years_left_out": ";".join(
                    f"{y}:{why.replace(';', ',')}"
                    for y, why in zip(sel.left_out, sel.left_out_reasons, strict=True)
                ),
                "radiometry_breaks": ";".join(map(str, sel.radiometry_breaks)),
                "first_year": s.first_year,
                "last_year": s.last_year,
                "first": s.first,
                "last": s.last,
                "change": s.change,
                "slope_per_year": s.slope,
                "slope_low": s.slope_low,
                "slope_high": s.slope_high,
                "mk_tau": s.mk_tau,
                "mk_p": s.mk_p,
                "trend": s.trend,
                "hr_p": s.hr_p,
                "hr_correction": s.hr_correction,
                "trend_hr": s.hr_trend,
                "pettitt_last_year_before": s.pettitt_year,
                "pettitt_first_year_after": s.pettitt_first_after,
                "pettitt_p": s.pettitt_p,
                "pettitt_at_break": s.pettitt_at_break,
            }
        )
    return out


def event_rows(
    analysis: SiteAnalysis, rows: Sequence[dict[str, Any]], trends: TrendsConfig
) -> list[dict[str, Any]]:
    """A row per metric and configured event: before/after means with bootstrap intervals and
    the interrupted-time-series level and slope change with permutation p (``events``)."""
    events = [Event(e.name, e.date) for e in trends.events]
    windows = {r["year"]: (r["window_start"], r["window_end"]) for r in rows}
    out = []
    for metric in SUMMARY_METRICS:
        sel = _selected(rows, metric, trends.keep_flagged)
        for t in event_tests(sel.years, sel.values, events, windows):
            out.append(
                {
                    "site_id": analysis.site.id,
                    "metric": metric,
                    **{k: v for k, v in asdict(t).items() if k in EVENT_COLUMNS},
                    "before_years": ";".join(map(str, t.before_years)),
                    "after_years": ";".join(map(str, t.after_years)),
                    "straddling_years": ";".join(map(str, t.straddling_years)),
                }
            )
    return out


# --- the layers of a run ------------------------------------------------------------------------


@dataclass(frozen=True)
class TableOptions:
    """What the tables need of a run's config: the clear-observation threshold of the flags,
    the trend settings, and sample-based areas (:data:`SampleAreas`) for ``trends``."""

    min_clear_observations: int
    trends: TrendsConfig
    sample_areas: SampleAreas | None = None


@dataclass(frozen=True)
class OutputTables:
    """Every table of a run. Vector layers in EPSG:4326: ``sites`` and ``adjacent_zones`` (the
    run's sites, its derived zones apart), ``footprints`` and ``stockpiles`` (a feature per site
    and year, dated by its season window), ``expansion`` (an added and a removed ring per site
    and year pair). Attribute tables: ``trends``, ``trend_summary``, ``trend_events``,
    ``expansion_pairs`` and ``expansion_sectors`` (``expansion.csv``, ``expansion_sectors.csv``).
    """

    sites: Table
    adjacent_zones: Table
    footprints: Table
    expansion: Table
    stockpiles: Table
    trends: Table
    trend_summary: Table
    trend_events: Table
    expansion_pairs: Table
    expansion_sectors: Table
    #: Site id -> site name (chart titles).
    titles: Mapping[str, str] = field(default_factory=dict)

    def by_name(self) -> dict[str, Table]:
        """Every table by its name."""
        return {
            t.name: t
            for t in (*self.vector_layers, *self.attribute_tables, self.expansion_pairs,
                      self.expansion_sectors)
        }  # fmt: skip

    @property
    def vector_layers(self) -> tuple[Table, ...]:
        return (self.sites, self.adjacent_zones, self.footprints, self.expansion, self.stockpiles)

    @property
    def attribute_tables(self) -> tuple[Table, ...]:
        return (self.trends, self.trend_summary, self.trend_events)


def _in_wgs84(polygons: Sequence[Polygon], crs: str) -> MultiPolygon:
    out = reproject_geometry(MultiPolygon(list(polygons)), crs, WGS84)
    assert isinstance(out, MultiPolygon)
    return out


def _site_table(name: str, analyses: Iterable[SiteAnalysis]) -> Table:
    chosen = list(analyses)

    def row(a: SiteAnalysis) -> dict[str, Any]:
        s: Site = a.site
        return {
            "site_id": s.id, "name": s.name, "kind": s.kind, "parent": s.parent,
            "confidence": s.confidence, "sources": list(s.sources),
            "analysis_area_ha": a.area_ha, "grid_crs": a.grid.crs,
        }  # fmt: skip

    return Table(
        name, SITE_SCHEMA, tuple(row(a) for a in chosen),
        geometries=tuple(a.site.geometry for a in chosen), crs=WGS84,
    )  # fmt: skip


def _projected(name: str, schema: tuple[Column, ...], rows: Iterable[Mapping[str, Any]]) -> Table:
    """A table of the schema's columns of ``rows`` (the expansion rows also carry the site name,
    which only the layer shows)."""
    return Table(name, schema, tuple({c.name: r[c.name] for c in schema} for r in rows))


def build_tables(analyses: Sequence[SiteAnalysis], options: TableOptions) -> OutputTables:
    """The tables of a run's ``analyses`` (``RunResult.sites``): sites in run order, years
    ascending within a site."""
    footprints: list[tuple[BaseGeometry, dict[str, Any]]] = []
    stockpiles: list[tuple[BaseGeometry, dict[str, Any]]] = []
    records = []
    trends: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    zones = adjacent_zone_of(analyses)
    for a in analyses:
        crs = a.grid.crs
        rows = trend_rows(
            a,
            options.min_clear_observations,
            adjacent=zones.get(a.site.id),
            sample_areas=options.sample_areas,
        )
        for sy, m, row in zip(a.years, a.metrics, rows, strict=True):
            seen = sy.composite is not None  # a year without data has no area, not 0 ha
            common = {
                "site_id": a.site.id,
                "site_name": a.site.name,
                "year": sy.year,
                "n_scenes": sy.n_used,
                "median_clear_obs": sy.median_clear,
                "coverage": sy.coverage,
                "window": f"{sy.window[0]}/{sy.window[1]}",
                "flags": row["flags"],
            }
            dates = {"date_start": sy.window[0], "date_end": sy.window[1]}
            footprints.append(
                (
                    _in_wgs84(m.footprint_polygons, crs),
                    {
                        **common,
                        "area_ha": m.footprint_ha if seen else None,
                        "area_pm_ha": m.footprint_pm_ha if seen else None,
                        **dates,
                    },
                )
            )
            stockpiles.append(
                (
                    _in_wgs84(m.coal_polygons, crs),
                    {
                        **common,
                        "area_ha": m.coal_ha if seen else None,
                        "area_pm_ha": m.coal_pm_ha if seen else None,
                        "mean_frequency": row["coal_mean_frequency"],
                        "measure": "area (not tonnage)",
                        **dates,
                    },
                )
            )
        records.extend(analysis_records(a))
        trends.extend(rows)
        summaries.extend(summary_rows(a, rows, options.trends))
        events.extend(event_rows(a, rows, options.trends))

    def spatial(name: str, schema: tuple[Column, ...], items: Sequence[Any]) -> Table:
        return Table(
            name, schema, tuple(p for _, p in items),
            geometries=tuple(g for g, _ in items), crs=WGS84,
        )  # fmt: skip

    is_zone = [a.site.kind == ADJACENT_ZONE_KIND for a in analyses]
    return OutputTables(
        sites=_site_table("sites", (a for a, z in zip(analyses, is_zone, strict=True) if not z)),
        adjacent_zones=_site_table(
            "adjacent_zones", (a for a, z in zip(analyses, is_zone, strict=True) if z)
        ),
        footprints=spatial("footprints", FOOTPRINT_SCHEMA, footprints),
        expansion=spatial("expansion", EXPANSION_SCHEMA, expansion_features(records)),
        stockpiles=spatial("stockpiles", STOCKPILE_SCHEMA, stockpiles),
        trends=Table("trends", TREND_SCHEMA, tuple(trends)),
        trend_summary=Table("trend_summary", SUMMARY_SCHEMA, tuple(summaries)),
        trend_events=Table("trend_events", EVENT_SCHEMA, tuple(events)),
        expansion_pairs=_projected("expansion_pairs", EXPANSION_PAIR_SCHEMA, expansion_rows(records)),
        expansion_sectors=_projected("expansion_sectors", EXPANSION_SECTOR_SCHEMA, sector_rows(records)),
        titles={a.site.id: a.site.name for a in analyses},
    )  # fmt: skip
