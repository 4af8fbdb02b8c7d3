"""Everything a run directory holds, assembled from a ``RunResult``.

Tables and GeoJSON are byte-identical for identical inputs: sites in file order, years ascending,
fixed decimals, no timestamps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import MultiPolygon, Polygon

from pipeline.bands import BANDS
from pipeline.config import TrendsConfig
from pipeline.events import Event, event_tests
from pipeline.expansion import outline
from pipeline.export.atomic import atomic_write_text
from pipeline.export.expansion import ExpansionRecord, analysis_records, write_expansion
from pipeline.export.geojson import write_feature_collection
from pipeline.export.manifest import canonical_json, sha256_file, software_versions, write_manifest
from pipeline.export.rasters import write_cog
from pipeline.export.tables import write_csv
from pipeline.grid import reproject_geometry
from pipeline.results import RunResult, SiteAnalysis, SiteYear
from pipeline.sources.base import SceneSource
from pipeline.trends import SeriesSelection, select_series, summarise

WGS84 = "EPSG:4326"

TREND_COLUMNS = (
    "site_id", "year", "footprint_ha", "footprint_pm_ha", "footprint_perimeter_m", "coal_ha",
    "coal_pm_ha",
    "compared_to_year", "added_ha", "removed_ha", "coal_added_ha", "coal_removed_ha",
    "net_change_significant",
    "n_scenes", "n_skipped", "coverage", "median_clear_obs", "window_start", "window_end", "flags",
)  # fmt: skip
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


def _multipolygon(polygons: Sequence[Polygon], crs: str) -> MultiPolygon:
    out = reproject_geometry(MultiPolygon(list(polygons)), crs, WGS84)
    assert isinstance(out, MultiPolygon)
    return out


# Below this share of the analysis area seen clear, areas undercount: flagged.
MIN_COVERAGE = 0.95


def _flags(sy: SiteYear, previous: SiteYear | None, min_clear: int) -> str:
    """Data-sufficiency and sensor-break flags for one site-year row (';'-separated);
    ``previous`` is the last earlier year that had data."""
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
    return ";".join(flags)


def trend_rows(analysis: SiteAnalysis, min_clear: int) -> list[dict[str, Any]]:
    """A row per year; the change columns compare with the previous year that had data."""
    changes = {(c.year_from, c.year_to): c for c in analysis.changes}
    rows = []
    prev: SiteYear | None = None  # the last earlier year with data
    for sy, m in zip(analysis.years, analysis.metrics, strict=True):
        change = changes.get((prev.year, sy.year)) if prev is not None else None
        seen = sy.composite is not None
        rows.append(
            {
                "site_id": analysis.site.id,
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
                "flags": _flags(sy, prev, min_clear),
            }
        )
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
) -> None:
    """Write every output of ``result`` into ``folder`` (default ``result.out_dir``; ``run``
    gives its staging folder), then the manifest, which lists paths relative to ``folder``.
    ``carried``: files already in ``folder`` that the manifest lists too (inputs kept with the
    run, such as the demo's sites file)."""
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
    for n, a in enumerate(result.sites, start=1):
        crs = a.grid.crs
        base = {"site_id": a.site.id, "site_name": a.site.name}
        rows = trend_rows(a, cfg.season.min_clear_observations)
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
            mean_freq = (
                float(np.nanmean(sy.coal.frequency[sy.coal_mask]))
                if sy.coal is not None and sy.coal_mask.any()
                else None
            )
            stockpiles.append(
                (
                    _multipolygon(m.coal_polygons, crs),
                    {
                        **common,
                        "area_ha": m.coal_ha if seen else None,
                        "area_pm_ha": m.coal_pm_ha if seen else None,
                        "mean_frequency": mean_freq,
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
        write_csv(out / "trend_summary.csv", summaries, SUMMARY_COLUMNS),
        write_csv(out / "trend_events.csv", events, EVENT_COLUMNS),
    ]
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
