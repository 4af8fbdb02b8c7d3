"""Everything a run directory holds, assembled from a ``RunResult``.

Tables (CSV and ``trends.parquet``) and GeoJSON are byte-identical for identical inputs (and
library versions): sites in file order, years ascending, fixed decimals, no timestamps.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import MultiPolygon, Polygon

from pipeline.bands import BANDS
from pipeline.config import TrendsConfig
from pipeline.events import Event, event_tests
from pipeline.expansion import outline
from pipeline.export.atomic import atomic_path, atomic_write_text
from pipeline.export.charts import write_charts
from pipeline.export.expansion import ExpansionRecord, analysis_records, write_expansion
from pipeline.export.geojson import write_feature_collection
from pipeline.export.manifest import canonical_json, sha256_file, software_versions, write_manifest
from pipeline.export.rasters import write_cog
from pipeline.export.report import write_report
from pipeline.export.tables import write_csv
from pipeline.grid import reproject_geometry
from pipeline.results import RunResult, SceneRecord, SiteAnalysis, SiteYear, YearMetrics
from pipeline.sources.base import SceneSource
from pipeline.trends import SeriesSelection, select_series, summarise

WGS84 = "EPSG:4326"
#: ``Site.kind`` of the zones ``sites.adjacent_zones`` derives beside the camps.
ADJACENT_ZONE_KIND = "adjacent_zone"

TREND_COLUMNS = (
    "site_id", "year", "footprint_ha", "footprint_pm_ha", "footprint_perimeter_m", "coal_ha",
    "coal_pm_ha",
    "compared_to_year", "added_ha", "removed_ha", "coal_added_ha", "coal_removed_ha",
    "net_change_significant",
    "n_scenes", "n_skipped", "coverage", "median_clear_obs", "window_start", "window_end", "flags",
    # appended (issue 9): the net change with its correlated interval, the rings' intervals
    "net_change_ha", "net_change_pm_ha", "added_pm_ha", "removed_pm_ha", "change_kind",
    "coal_net_change_ha", "coal_net_change_pm_ha",
    "adjacent_built_ha", "adjacent_built_pm_ha",
    "coal_mean_frequency", "coal_median_frequency",
    "redated_ha", "unseen_fields_ha",
    "sensors", "processing_baselines",
    "interval_basis",
    "footprint_sample_ha", "footprint_sample_low_ha", "footprint_sample_high_ha",
    "coal_sample_ha", "coal_sample_low_ha", "coal_sample_high_ha",
)  # fmt: skip
#: Arrow type of each ``trends.csv`` column in ``trends.parquet`` (every column nullable).
TREND_TYPES: Mapping[str, str] = {
    "site_id": "string", "year": "int32", "footprint_ha": "float64",
    "footprint_pm_ha": "float64", "footprint_perimeter_m": "float64", "coal_ha": "float64",
    "coal_pm_ha": "float64", "compared_to_year": "int32", "added_ha": "float64",
    "removed_ha": "float64", "coal_added_ha": "float64", "coal_removed_ha": "float64",
    "net_change_significant": "bool", "n_scenes": "int32", "n_skipped": "int32",
    "coverage": "float64", "median_clear_obs": "float64", "window_start": "date32",
    "window_end": "date32", "flags": "string",
    "net_change_ha": "float64", "net_change_pm_ha": "float64", "added_pm_ha": "float64",
    "removed_pm_ha": "float64", "change_kind": "string", "coal_net_change_ha": "float64",
    "coal_net_change_pm_ha": "float64", "adjacent_built_ha": "float64",
    "adjacent_built_pm_ha": "float64", "coal_mean_frequency": "float64",
    "coal_median_frequency": "float64", "redated_ha": "float64", "unseen_fields_ha": "float64",
    "sensors": "string", "processing_baselines": "string", "interval_basis": "string",
    "footprint_sample_ha": "float64", "footprint_sample_low_ha": "float64",
    "footprint_sample_high_ha": "float64", "coal_sample_ha": "float64",
    "coal_sample_low_ha": "float64", "coal_sample_high_ha": "float64",
}  # fmt: skip
SUMMARY_COLUMNS = (
    "site_id", "metric", "n_years", "n_years_left_out", "years_left_out", "radiometry_breaks",
    "first_year", "last_year", "first", "last", "change",
    "slope_per_year", "slope_low", "slope_high", "mk_tau", "mk_p", "trend",
    "hr_p", "hr_correction", "trend_hr",
    "pettitt_last_year_before", "pettitt_first_year_after", "pettitt_p", "pettitt_at_break",
)  # fmt: skip
EVENT_COLUMNS = (
    "site_id", "metric", "event", "event_date", "status", "before_years", "after_years",
    "straddling_years", "before_mean", "before_low", "before_high", "after_mean", "after_low",
    "after_high", "difference", "difference_low", "difference_high", "its_status",
    "its_level_change", "its_slope_change", "its_p", "its_p_holm", "its_level_p", "its_slope_p",
    "same_split_as",
)  # fmt: skip
SUMMARY_METRICS = ("footprint_ha", "coal_ha")


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


def _multipolygon(polygons: Sequence[Polygon], crs: str) -> MultiPolygon:
    out = reproject_geometry(MultiPolygon(list(polygons)), crs, WGS84)
    assert isinstance(out, MultiPolygon)
    return out


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


def _parquet_value(value: Any, kind: str) -> Any:
    """One cell as ``trends.parquet`` holds it: NaN as null, ISO dates as dates."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if kind == "date32":
        return dt.date.fromisoformat(value) if isinstance(value, str) else value
    return value


def write_trends_parquet(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``rows`` (``trend_rows``) as a Parquet file with the schema of :data:`TREND_TYPES`
    (columns in :data:`TREND_COLUMNS` order, all nullable, dates as date32); atomically, and
    byte-identical for identical rows (no pandas metadata, no timestamps). Return the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([pa.field(c, pa.type_for_alias(TREND_TYPES[c])) for c in TREND_COLUMNS])
    columns = {c: [_parquet_value(r[c], TREND_TYPES[c]) for r in rows] for c in TREND_COLUMNS}
    table = pa.Table.from_pydict(columns, schema=schema)
    with atomic_path(path) as temp:
        pq.write_table(table, temp, compression="zstd")
    return path


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
                    f"{y}:{why}" for y, why in zip(sel.left_out, sel.left_out_reasons, strict=True)
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


def export_run(
    result: RunResult,
    source: SceneSource,
    progress: Callable[[str, int, int], None],
    folder: Path | None = None,
    carried: Sequence[Path] = (),
    *,
    sample_areas: SampleAreas | None = None,
) -> None:
    """Write every output of ``result`` into ``folder`` (default ``result.out_dir``; ``run``
    gives its staging folder), then the manifest, which lists paths relative to ``folder``.
    ``carried``: files already in ``folder`` that the manifest lists too (inputs kept with the
    run, such as the demo's sites file). ``sample_areas``: sample-based estimates for the
    trend tables (:func:`trend_rows`)."""
    cfg = result.config
    out = result.out_dir if folder is None else folder
    footprints: list[tuple[Any, dict[str, Any]]] = []
    expansion: list[ExpansionRecord] = []
    stockpiles: list[tuple[Any, dict[str, Any]]] = []
    trends: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    rasters: list[Path] = []
    total = len(result.sites)
    zones = adjacent_zone_of(result.sites)
    for n, a in enumerate(result.sites, start=1):
        crs = a.grid.crs
        base = {"site_id": a.site.id, "site_name": a.site.name}
        rows = trend_rows(
            a,
            cfg.season.min_clear_observations,
            adjacent=zones.get(a.site.id),
            sample_areas=sample_areas,
        )
        for sy, m, row in zip(a.years, a.metrics, rows, strict=True):
            seen = sy.composite is not None  # a year without data has no area, not 0 ha
            common = {
                **base,
                "year": sy.year,
                "n_scenes": sy.n_used,
                "median_clear_obs": sy.median_clear,
                "coverage": sy.coverage,
                "window": f"{sy.window[0]}/{sy.window[1]}",
                "flags": row["flags"],
            }
            footprints.append(
                (
                    _multipolygon(m.footprint_polygons, crs),
                    {
                        **common,
                        "area_ha": m.footprint_ha if seen else None,
                        "area_pm_ha": m.footprint_pm_ha if seen else None,
                    },
                )
            )
            stockpiles.append(
                (
                    _multipolygon(m.coal_polygons, crs),
                    {
                        **common,
                        "area_ha": m.coal_ha if seen else None,
                        "area_pm_ha": m.coal_pm_ha if seen else None,
                        "mean_frequency": row["coal_mean_frequency"],
                        "measure": "area (not tonnage)",
                    },
                )
            )
        expansion.extend(analysis_records(a))
        trends.extend(rows)
        summaries.extend(summary_rows(a, rows, cfg.trends))
        events.extend(event_rows(a, rows, cfg.trends))
        if cfg.write_rasters:
            rasters.extend(write_site_rasters(out, a))
        progress("writing outputs", n, total)

    meta = {"run": cfg.name, "config_hash": cfg.hash()}
    written = [
        write_feature_collection(
            out / "footprints.geojson", footprints, WGS84, name="footprints", metadata=meta
        ),
        *write_expansion(out, expansion, meta),
        write_feature_collection(
            out / "stockpiles.geojson", stockpiles, WGS84, name="stockpiles", metadata=meta
        ),
        write_csv(out / "trends.csv", trends, TREND_COLUMNS),
        write_trends_parquet(out / "trends.parquet", trends),
        write_csv(out / "trend_summary.csv", summaries, SUMMARY_COLUMNS),
        write_csv(out / "trend_events.csv", events, EVENT_COLUMNS),
    ]
    charts = write_charts(
        out, trends, summaries, events,
        titles={a.site.id: a.site.name for a in result.sites}, min_years=cfg.trends.min_years,
    )  # fmt: skip
    written.extend(charts.values())
    written.append(write_report(out, result, trends, summaries, events, charts))
    if result.accuracy is not None:
        path = out / "accuracy.json"
        atomic_write_text(path, canonical_json(result.accuracy))
        written.append(path)
    write_manifest(
        out / "manifest.json",
        build_manifest(result, source, [*written, *rasters, *carried], root=out),
    )


def write_site_rasters(out: Path, a: SiteAnalysis) -> list[Path]:
    """Per site-year COGs: footprint, coal frequency, clear count, the composite and its spread
    (median absolute deviation of the clear observations, per band)."""
    paths = []
    folder = out / "rasters" / a.site.id
    for sy in a.years:
        if sy.composite is None or sy.coal is None:
            continue
        stem = folder / f"{a.site.id}_{sy.year}"
        tags = {"site_id": a.site.id, "year": str(sy.year), "window": "/".join(sy.window)}
        outside = ~sy.valid
        fp = np.where(outside, 255, sy.footprint.astype(np.uint8)).astype(np.uint8)
        freq = np.where(
            outside | ~np.isfinite(sy.coal.frequency), 255, np.round(sy.coal.frequency * 100)
        ).astype(np.uint8)
        refl, mad = sy.composite.reflectance, sy.composite.mad
        # Reflectance x 10000 as Sentinel-2 delivers it; 0 is nodata, so real values start at 1.
        comp = np.where(np.isfinite(refl), np.clip(np.round(refl * 10000), 1, 65535), 0)
        spread = np.where(np.isfinite(mad), np.clip(np.round(mad * 10000), 0, 65534), 65535)
        items: list[tuple[str, np.ndarray[Any, Any], int, list[str]]] = [
            (f"{stem}_footprint.tif", fp, 255, ["footprint"]),
            (f"{stem}_coal_frequency.tif", freq, 255, ["coal_frequency_percent"]),
            (
                f"{stem}_clear_count.tif",
                sy.composite.clear_count.astype(np.int16),
                -1,
                ["clear_count"],
            ),
            (f"{stem}_composite.tif", comp.astype(np.uint16), 0, list(BANDS)),
            (f"{stem}_spread.tif", spread.astype(np.uint16), 65535, [f"{b}_mad" for b in BANDS]),
        ]
        for path, data, nodata, names in items:
            write_cog(Path(path), data, a.grid, nodata=nodata, band_names=names, tags=tags)
            paths.append(Path(path))
    return paths


def build_manifest(
    result: RunResult, source: SceneSource, outputs: Sequence[Path], root: Path | None = None
) -> dict[str, Any]:
    """The manifest of a run; output paths relative to ``root`` (default ``result.out_dir``)."""
    cfg = result.config
    base = result.out_dir if root is None else root
    sites = []
    for a in result.sites:
        sites.append(
            {
                "id": a.site.id,
                "name": a.site.name,
                "source": a.site.source,
                "grid": {
                    "crs": a.grid.crs,
                    "transform": list(a.grid.transform)[:6],
                    "width": a.grid.width,
                    "height": a.grid.height,
                },
                "analysis_area_ha": a.area_ha,
                "years": [
                    {
                        "year": sy.year,
                        "window": list(sy.window),
                        "widened": sy.widened,
                        "median_clear_obs": sy.median_clear,
                        "coverage": sy.coverage,
                        "scenes": [asdict(s) for s in sy.scenes],
                    }
                    for sy in a.years
                ],
            }
        )
    return {
        "sitewatch_manifest": 1,
        "run": cfg.name,
        "config_hash": cfg.hash(),
        "config": json.loads(cfg.model_dump_json()),
        "sites_file": {"path": str(cfg.sites), "sha256": sha256_file(cfg.sites)},
        "reference_samples": (
            None
            if cfg.trends.reference_samples is None
            else {
                "path": str(cfg.trends.reference_samples),
                "sha256": sha256_file(cfg.trends.reference_samples),
            }
        ),
        "source": {"kind": cfg.source.kind, "name": source.name},
        "masks": {
            "scl_masked": list(cfg.masking.scl_masked),
            "scl_dilated": list(cfg.masking.scl_dilated),
            "qa_pixel_masked_bits": list(cfg.masking.qa_pixel_masked_bits),
            "qa_pixel_dilated_bits": list(cfg.masking.qa_pixel_dilated_bits),
            "qa_radsat": cfg.masking.qa_radsat,
            "cloud_dilation_m": cfg.masking.cloud_dilation_m,
            "reasons": "per scene, `mask` gives the share of the site grid per MaskReason",
        },
        "harmonize": cfg.harmonize.to,
        "versions": software_versions(),
        "sites": sites,
        "outputs": [
            {"path": p.relative_to(base).as_posix(), "sha256": sha256_file(p)} for p in outputs
        ],
    }
