"""``report.html``: one self-contained page an analyst can read, mail or archive with a run.

Per site: the trend chart, the trend statistics, the event tests, the year-by-year table and a
true-colour thumbnail of each year's composite with the footprint outline; then the flags in
words (``trends.FLAG_MEANINGS``) and the run's provenance (config hash, software versions, the
scenes used and skipped per site-year with their offsets).

Everything is inline: the CSS in a ``<style>`` element, every image a ``data:image/png;base64``
URI; no script, no external URL, so the page renders the same offline and in ten years. Values
are escaped by Jinja2's autoescape. For identical inputs the bytes are identical: fixed
ordering, fixed decimals, no timestamps, PNGs without metadata (``charts.figure_png``).

The page is built in two steps: :func:`report_context` turns the run into plain strings
(pure), :func:`render_report` fills the template ``pipeline/data/report/report.html.j2``;
:func:`write_report` writes the result atomically.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray
from PIL import Image
from shapely.geometry import Polygon

from pipeline.bands import BAND_INDEX
from pipeline.export.atomic import atomic_write_text
from pipeline.export.charts import CHART_DPI, default_style, figure_png, point_style
from pipeline.export.manifest import software_versions
from pipeline.grid import Grid
from pipeline.results import RunResult, SiteAnalysis
from pipeline.trends import FLAG_MEANINGS

__all__ = [
    "REPORT_NAME",
    "THUMBNAIL_PX",
    "Stretch",
    "data_uri",
    "flag_glossary",
    "render_report",
    "report_context",
    "thumbnail_png",
    "true_colour",
    "true_colour_stretch",
    "write_report",
]

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"

THUMBNAIL_PX = 240
#: Palette size of a thumbnail (``palette_png``).
THUMBNAIL_COLOURS = 128
"""Longer side of a composite thumbnail, in pixels."""

_NONE = "–"  # shown for a missing value (en dash)


# --- value formatting: one place, fixed decimals ---------------------------------------------


def _number(value: object) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _fixed(value: object, digits: int = 2) -> str:
    number = _number(value)
    if number is None:
        return _NONE
    text = f"{number:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def _pm(value: object, half: object) -> str:
    if _number(value) is None:
        return _NONE
    return f"{_fixed(value)} ± {_fixed(half)}" if _number(half) is not None else _fixed(value)


def _coal(row: Mapping[str, Any]) -> str:
    """The coal area with its interval, and the undecided coal beside it when there is some:
    ground the year's looks were too few to count (``coal_undecided_ha``), not in the area."""
    text = _pm(row.get("coal_ha"), row.get("coal_pm_ha"))
    undecided = _number(row.get("coal_undecided_ha"))
    return f"{text} (+{_fixed(undecided)} undecided)" if undecided else text


def _footprint(row: Mapping[str, Any]) -> str:
    """The footprint area with its interval, and how much of it the year never saw clear when
    there is some: carried from the nearest year that saw it (``gap_filled_ha``)."""
    text = _pm(row.get("footprint_ha"), row.get("footprint_pm_ha"))
    filled = _number(row.get("gap_filled_ha"))
    return f"{text} (incl. {_fixed(filled)} carried over a gap)" if filled else text


def _interval(mean: object, low: object, high: object) -> str:
    if _number(mean) is None:
        return _NONE
    return f"{_fixed(mean)} [{_fixed(low)}, {_fixed(high)}]"


def _p(value: object) -> str:
    p = _number(value)
    if p is None:
        return _NONE
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _text(value: object) -> str:
    if value is None or value == "":
        return _NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _fixed(value)
    return str(value)


def _years(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace(";", ", ") if text else "none"


def _flags_text(value: object) -> str:
    text = "" if value is None else str(value)
    return ", ".join(f for f in text.split(";") if f)


def data_uri(png: bytes) -> str:
    """``png`` as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --- composite thumbnails ----------------------------------------------------------------------

_RGB = (BAND_INDEX["red"], BAND_INDEX["green"], BAND_INDEX["blue"])
_STRETCH_PERCENTILES = (2.0, 98.0)
_STRETCH_SAMPLE = 1_000_000  # values per band the percentiles are taken from, at most
_OUTLINE = "#F0E442"  # Okabe-Ito yellow: visible on dark coal and on bright bare ground


@dataclass(frozen=True)
class Stretch:
    """A linear stretch per display band (red, green, blue): reflectance ``low`` shows as 0,
    ``high`` as full brightness."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def describe(self) -> str:
        pairs = ", ".join(
            f"{band} {lo:.3f}–{hi:.3f}"
            for band, lo, hi in zip(("red", "green", "blue"), self.low, self.high, strict=True)
        )
        return f"reflectance {pairs}"


def true_colour_stretch(reflectances: Iterable[NDArray[np.floating[Any]]]) -> Stretch:
    """One stretch for every composite of a site: the 2nd and 98th percentile of each of red,
    green and blue over the clear pixels of all years pooled, so a year that is brighter is
    shown brighter. Composites are (band, y, x) in ``bands.BANDS`` order, NaN for no data; a
    deterministic stride keeps at most ``_STRETCH_SAMPLE`` values per band and year, and again
    over the years pooled (so a large site's years need not all be in memory at once). Without
    any clear pixel the stretch is 0-0.3, a usual range of land reflectance."""
    pooled: list[list[NDArray[np.floating[Any]]]] = [[], [], []]
    for refl in reflectances:
        for k, band in enumerate(_RGB):
            values = refl[band].ravel()
            values = values[np.isfinite(values)]
            pooled[k].append(values[:: max(1, values.size // _STRETCH_SAMPLE)].copy())
        del refl  # before the next year is read: one year's composite at a time
    low, high = [], []
    for values_list in pooled:
        values = np.concatenate(values_list) if values_list else np.empty(0, np.float32)
        if values.size == 0:
            low.append(0.0)
            high.append(0.3)
            continue
        step = max(1, values.size // _STRETCH_SAMPLE)
        lo, hi = np.percentile(values[::step].astype(np.float64), _STRETCH_PERCENTILES)
        low.append(float(lo))
        high.append(float(hi) if hi > lo else float(lo) + 1e-3)
    return Stretch(low=(low[0], low[1], low[2]), high=(high[0], high[1], high[2]))


def true_colour(reflectance: NDArray[np.floating[Any]], stretch: Stretch) -> NDArray[np.float32]:
    """(y, x, 4) RGBA in 0-1 from a (band, y, x) composite: stretched, clipped, and transparent
    where any of the three bands is NaN (no clear observation)."""
    rgb = np.stack([reflectance[b] for b in _RGB], axis=-1).astype(np.float64)
    low, high = np.asarray(stretch.low), np.asarray(stretch.high)
    seen = np.asarray(np.isfinite(rgb).all(axis=-1))
    scaled = np.clip((np.nan_to_num(rgb) - low) / (high - low), 0.0, 1.0)
    return np.concatenate([scaled, seen[..., np.newaxis]], axis=-1).astype(np.float32)


def thumbnail_png(
    reflectance: NDArray[np.floating[Any]],
    stretch: Stretch,
    grid: Grid,
    polygons: Sequence[Polygon],
    size: int = THUMBNAIL_PX,
) -> bytes:
    """A true-colour PNG of one composite, its longer side ``size`` pixels, with the outline of
    ``polygons`` (in ``grid``'s CRS) drawn over it; transparent where there is no data; reduced
    to a palette (:func:`palette_png`)."""
    return palette_png(true_colour_png(reflectance, stretch, grid, [(_OUTLINE, polygons)], size))


def true_colour_png(
    reflectance: NDArray[np.floating[Any]],
    stretch: Stretch,
    grid: Grid,
    outlines: Sequence[tuple[str, Sequence[Polygon]]],
    size: int,
    *,
    whole_pixels: bool = False,
    line_width: float = 1.2,
) -> bytes:
    """A true-colour PNG of ``reflectance`` (band, y, x) on ``grid`` with ``stretch``, its
    longer side ``size`` pixels (with ``whole_pixels``, a whole number of PNG pixels per grid
    pixel when the grid is smaller), each ``(colour, polygons)`` of ``outlines`` (in ``grid``'s
    CRS) drawn over it; transparent where there is no data. The one drawing of the report's
    thumbnails and the evidence chips."""
    height, width = grid.shape
    longest = max(height, width)
    scale = float(size // longest) if whole_pixels and longest <= size else size / longest
    px_w, px_h = max(1, round(width * scale)), max(1, round(height * scale))
    left, bottom, right, top = grid.bounds
    # A grid many times larger than the picture is thinned first (every step-th pixel, at least
    # two grid pixels per picture pixel left) and its outlines simplified to that pixel: the same
    # picture at a fraction of the cost (a 550 km2 site's thumbnails).
    step = max(1, longest // (2 * size))
    if step > 1:
        reflectance = reflectance[:, ::step, ::step]
        cell = grid.resolution * step
        image_right = left + reflectance.shape[2] * cell
        image_bottom = top - reflectance.shape[1] * cell
        outlines = [
            (colour, [p.simplify(cell / 2) for p in polygons]) for colour, polygons in outlines
        ]
    else:
        image_right, image_bottom = right, bottom
    with default_style():
        fig = Figure(figsize=(px_w / CHART_DPI, px_h / CHART_DPI), dpi=CHART_DPI)
        FigureCanvasAgg(fig)
        fig.patch.set_alpha(0.0)
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_axis_off()
        ax.imshow(
            true_colour(reflectance, stretch),
            extent=(left, image_right, image_bottom, top),
            interpolation="nearest",
            origin="upper",
        )
        for colour, polygons in outlines:
            for polygon in polygons:
                for ring in (polygon.exterior, *polygon.interiors):
                    xs, ys = ring.xy
                    ax.plot(list(xs), list(ys), color=colour, linewidth=line_width)
        ax.set_xlim(left, right)
        ax.set_ylim(bottom, top)
    return figure_png(fig)


def palette_png(png: bytes, colours: int = THUMBNAIL_COLOURS) -> bytes:
    """``png`` reduced to a palette of at most ``colours`` (no dithering, transparency kept): a
    thumbnail a quarter of the size, so a report of a hundred site-years stays a few MB. The
    same input gives the same bytes."""
    with Image.open(io.BytesIO(png)) as image:
        reduced = image.convert("RGBA").quantize(
            colors=colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        )
    out = io.BytesIO()
    reduced.save(out, format="PNG", optimize=True)
    return out.getvalue()


# --- the page ----------------------------------------------------------------------------------


def flag_glossary(trend_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """A row per flag of ``trends.FLAG_MEANINGS`` (its order), with the site-years that carry
    it; then any flag found in the rows but not described, so none goes unexplained silently."""
    where: dict[str, list[str]] = {}
    for row in trend_rows:
        for flag in _flags_text(row.get("flags")).split(", "):
            if flag:
                where.setdefault(flag, []).append(f"{row['site_id']} {row['year']}")
    undescribed = sorted(set(where) - set(FLAG_MEANINGS))
    if undescribed:
        logger.warning("report: flags without a meaning in FLAG_MEANINGS: %s", undescribed)
    return [
        {
            "flag": flag,
            "meaning": FLAG_MEANINGS.get(flag, "(not described yet)"),
            "where": ", ".join(where.get(flag, [])) or "none",
        }
        for flag in [*FLAG_MEANINGS, *undescribed]
    ]


def _summary_context(row: Mapping[str, Any], min_years: int) -> dict[str, str]:
    n = int(row["n_years"])
    insufficient = f"insufficient (n = {n} < {min_years})"

    def test(p: object, trend: object) -> str:
        return (
            insufficient if trend == "insufficient" or _number(p) is None else f"{_p(p)}, {trend}"
        )

    before, after = row.get("pettitt_last_year_before"), row.get("pettitt_first_year_after")
    if _number(row.get("pettitt_p")) is None or before in (None, ""):
        pettitt = insufficient if n < min_years else _NONE
    else:
        at_break = (
            " (at a radiometry break)" if row.get("pettitt_at_break") in (True, "true") else ""
        )
        pettitt = f"between {before} and {after}, {_p(row.get('pettitt_p'))}{at_break}"
    left = int(row.get("n_years_left_out") or 0)
    return {
        "metric": str(row["metric"]),
        "n": str(n),
        "left_out": f"{left}: {_years(row.get('years_left_out'))}" if left else "0",
        "change": (
            f"{row['first_year']}: {_fixed(row.get('first'))} → {row['last_year']}: "
            f"{_fixed(row.get('last'))} ({_fixed(row.get('change'))})"
            if row.get("first_year") not in (None, "")
            else _NONE
        ),
        "slope": _interval(row.get("slope_per_year"), row.get("slope_low"), row.get("slope_high")),
        "mk": test(row.get("mk_p"), row.get("trend")),
        "hr": test(row.get("hr_p"), row.get("trend_hr")),
        "pettitt": pettitt,
        "breaks": _years(row.get("radiometry_breaks")),
    }


def _event_context(row: Mapping[str, Any]) -> dict[str, str]:
    def side(prefix: str) -> str:
        years = _years(row.get(f"{prefix}_years"))
        mean = row.get(f"{prefix}_mean")
        return f"{_interval(mean, row.get(f'{prefix}_low'), row.get(f'{prefix}_high'))} ({years})"

    if row.get("its_status") == "tested":
        its = (
            f"{_fixed(row.get('its_level_change'))} / {_fixed(row.get('its_slope_change'))} ha/yr, "
            f"{_p(row.get('its_p'))} ({_p(row.get('its_p_holm'))} Holm)"
        )
    else:
        its = _text(row.get("its_status"))
    difference = _interval(
        row.get("difference"), row.get("difference_low"), row.get("difference_high")
    )
    status = str(row.get("status") or "")
    same = row.get("same_split_as")
    note = f"{status}; same years as {same}" if same else status
    return {
        "metric": str(row["metric"]),
        "event": str(row["event"]),
        "date": _text(row.get("event_date")),
        "before": side("before"),
        "after": side("after"),
        "difference": difference if _number(row.get("difference")) is not None else note,
        "its": its,
    }


def _trend_context(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "year": str(row["year"]),
        "low_data": not point_style(row.get("flags")).filled,
        "footprint": _footprint(row),
        "coal": _coal(row),
        "compared_to": _text(row.get("compared_to_year")),
        "added": _pm(row.get("added_ha"), row.get("added_pm_ha")),
        "removed": _pm(row.get("removed_ha"), row.get("removed_pm_ha")),
        "net": _pm(row.get("net_change_ha"), row.get("net_change_pm_ha")),
        "kind": _text(row.get("change_kind")),
        "sample": _interval(
            row.get("footprint_sample_ha"),
            row.get("footprint_sample_low_ha"),
            row.get("footprint_sample_high_ha"),
        ),
        "significant": _text(row.get("net_change_significant")),
        "scenes": f"{row.get('n_scenes')} / {row.get('n_skipped')}",
        "coverage": _fixed(row.get("coverage")),
        "median_clear": _fixed(row.get("median_clear_obs"), 1),
        "window": f"{row.get('window_start')} to {row.get('window_end')}",
        "flags": _flags_text(row.get("flags")),
    }


def _site_context(
    a: SiteAnalysis,
    trend_rows: Sequence[Mapping[str, Any]],
    summary_rows: Sequence[Mapping[str, Any]],
    event_rows: Sequence[Mapping[str, Any]],
    chart: bytes | None,
    min_years: int,
) -> dict[str, Any]:
    sid = a.site.id
    rows = [r for r in trend_rows if r["site_id"] == sid]
    flags_by_year = {int(r["year"]): _flags_text(r.get("flags")) for r in rows}
    stretch = true_colour_stretch(
        sy.composite.reflectance for sy in a.years if sy.composite is not None
    )
    thumbnails = []
    for sy, m in zip(a.years, a.metrics, strict=True):
        entry = {"year": str(sy.year), "flags": flags_by_year.get(sy.year, ""), "src": ""}
        if sy.composite is not None:
            png = thumbnail_png(sy.composite.reflectance, stretch, a.grid, m.footprint_polygons)
            scale = THUMBNAIL_PX / max(a.grid.shape)
            entry |= {
                "src": data_uri(png),
                "width": str(max(1, round(a.grid.width * scale))),
                "height": str(max(1, round(a.grid.height * scale))),
            }
        thumbnails.append(entry)
    scenes = [
        {
            "year": str(sy.year),
            "used": str(sy.n_used),
            "skipped": str(sy.n_skipped),
            "rows": [
                {
                    "id": s.scene_id,
                    "datetime": s.datetime,
                    "role": s.role,
                    "platform": _text(s.platform),
                    "collection": _text(s.collection),
                    "offset": _fixed(s.offset_dn, 0),
                    "radiometry": _text(s.radiometry),
                    "clear_share": _fixed(s.clear_fraction),
                    "skipped": _text(s.skipped),
                }
                for s in sy.scenes
            ],
        }
        for sy in a.years
    ]
    heading = a.site.name if a.site.name == sid else f"{a.site.name} ({sid})"
    return {
        "id": sid,
        "heading": heading,
        "area_ha": _fixed(a.area_ha),
        "grid": f"{a.grid.crs}, {a.grid.width} × {a.grid.height} pixels of {a.grid.resolution:g} m",
        "chart": data_uri(chart) if chart is not None else "",
        "summary": [_summary_context(s, min_years) for s in summary_rows if s["site_id"] == sid],
        "events": [_event_context(e) for e in event_rows if e["site_id"] == sid],
        "trends": [_trend_context(r) for r in rows],
        "stretch": stretch.describe(),
        "thumbnails": thumbnails,
        "scenes": scenes,
    }


def report_context(
    result: RunResult,
    trend_rows: Sequence[Mapping[str, Any]],
    summary_rows: Sequence[Mapping[str, Any]],
    event_rows: Sequence[Mapping[str, Any]],
    charts: Mapping[str, bytes],
    versions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as plain strings (the template only lays it out).

    ``charts``: PNG bytes per site id (a site without one gets no chart). ``versions``: the
    software versions to report, default ``manifest.software_versions()``.
    """
    cfg = result.config
    min_years = cfg.trends.min_years
    sites = [
        _site_context(a, trend_rows, summary_rows, event_rows, charts.get(a.site.id), min_years)
        for a in result.sites
    ]
    found = software_versions() if versions is None else versions
    return {
        "title": f"sitewatch report: {cfg.name}",
        "run_name": cfg.name,
        "config_hash": cfg.hash(),
        "keep_flagged": cfg.trends.keep_flagged,
        "source": cfg.source.kind,
        "harmonize": str(cfg.harmonize.to),
        "versions": sorted(found.items()),
        "thumb_width": str(THUMBNAIL_PX),
        "sites": sites,
        "flags": flag_glossary(trend_rows),
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline", "data/report"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_report(context: Mapping[str, Any]) -> str:
    """The HTML of :func:`report_context`'s ``context``; every value escaped."""
    return _environment().get_template("report.html.j2").render(**context)


def write_report(
    folder: Path,
    result: RunResult,
    trend_rows: Sequence[Mapping[str, Any]],
    summary_rows: Sequence[Mapping[str, Any]],
    event_rows: Sequence[Mapping[str, Any]],
    charts: Mapping[str, Path],
) -> Path:
    """Write ``folder/report.html`` atomically and return its path. ``charts``: the chart PNG of
    each site id, as ``charts.write_charts`` returns them (embedded, not linked)."""
    pngs = {site: Path(path).read_bytes() for site, path in charts.items()}
    html = render_report(report_context(result, trend_rows, summary_rows, event_rows, pngs))
    return atomic_write_text(folder / REPORT_NAME, html)
