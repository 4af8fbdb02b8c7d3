"""Trend charts: a PNG per site, each metric over the years with its 95% interval.

A chart is drawn from the plain rows of the run's tables (``trends.csv``, ``trend_summary.csv``,
``trend_events.csv`` as ``layers.trend_rows``/``summary_rows``/``event_rows`` build them),
so what it shows is what the tables say:

- each year's value at the middle of its season window, with the ``*_pm_ha`` half-width as a
  95% interval;
- years whose area is undercounted or absent (``trends.EXCLUDING_FLAGS``) drawn hollow and
  labelled; they are left out of the statistics unless the run kept them (:func:`point_style`);
- the Theil-Sen line over the years the summary used, and a caption with the Hamed-Rao p and how
  many years were left out (:func:`caption`);
- a vertical line per configured event at its date, so an event after a season falls between
  that year and the next;
- footprint added and removed since the previous year with data, as bars.

Rendering is Agg through ``matplotlib.figure.Figure`` (no pyplot state), at a fixed DPI and
matplotlib's default style whatever the user's matplotlibrc says, with no ``Software`` or date
metadata, so the PNG bytes are identical for identical rows and matplotlib version.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib import style as mpl_style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.export.atomic import atomic_write_bytes
from pipeline.trends import EXCLUDING_FLAGS, NOTED_FLAGS

__all__ = [
    "CHART_DPI",
    "CHART_METRICS",
    "FLAG_LABELS",
    "PNG_METADATA",
    "ChartEvent",
    "PointStyle",
    "caption",
    "chart_events",
    "chart_png",
    "decimal_year",
    "default_style",
    "figure_png",
    "point_style",
    "season_position",
    "site_chart",
    "site_ids",
    "theil_sen_points",
    "write_charts",
]

CHART_DPI = 100
"""Dots per inch of every chart and thumbnail: pixel sizes are fixed, so are the bytes."""

PNG_METADATA: Mapping[str, str | None] = {"Software": None}
"""PNG text chunks: matplotlib would write its version as ``Software``; nothing is written."""

#: Metrics drawn with their interval: (value column, half-width column, axis label).
CHART_METRICS: tuple[tuple[str, str, str], ...] = (
    ("footprint_ha", "footprint_pm_ha", "Footprint (ha)"),
    ("coal_ha", "coal_pm_ha", "Coal on the ground (ha, area not tonnage)"),
)

#: Short chart labels of the flags that change how a year is drawn.
FLAG_LABELS: Mapping[str, str] = {
    "no-data": "no data",
    "few-clear-observations": "few clear looks",
    "partial-coverage": "partial coverage",
    "radiometry-break": "radiometry break",
}

# Okabe-Ito colours: told apart with the common colour-vision deficiencies.
_COLOURS = {
    "footprint_ha": "#0072B2",
    "coal_ha": "#E69F00",
    "added": "#009E73",
    "removed": "#D55E00",
    "event": "#666666",
    "line": "#000000",
}
_EVENT_STYLES: tuple[Any, ...] = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


@dataclass(frozen=True)
class PointStyle:
    """How one year is drawn: ``filled`` (its area is a full measurement) or hollow (low data:
    undercounted or absent), and ``label``, the words written under it ("" for none)."""

    filled: bool
    label: str


def _flag_set(flags: str | Iterable[str] | None) -> frozenset[str]:
    if flags is None:
        return frozenset()
    parts = flags.split(";") if isinstance(flags, str) else flags
    return frozenset(f.strip() for f in parts if f.strip())


def point_style(flags: str | Iterable[str] | None) -> PointStyle:
    """The marker of a year from its row's ``flags`` (';'-separated or a list).

    A year with any of ``trends.EXCLUDING_FLAGS`` is low data: hollow, labelled with those
    flags. ``radiometry-break`` keeps the marker filled but is labelled, since a step there may
    be the sensor's. Other flags (``widened-window``, ``scenes-skipped``) do not change the
    marker; the report's table lists them.
    """
    found = _flag_set(flags)
    excluding = sorted(found & EXCLUDING_FLAGS)
    noted = sorted(found & NOTED_FLAGS)
    label = ", ".join(FLAG_LABELS.get(f, f) for f in [*excluding, *noted])
    return PointStyle(filled=not excluding, label=label)


def decimal_year(day: dt.date) -> float:
    """``day`` as a fractional year: 2016-01-01 is 2016.0, 2016-07-02 is 2016.5."""
    start = dt.date(day.year, 1, 1)
    length = (dt.date(day.year + 1, 1, 1) - start).days
    return day.year + (day - start).days / length


def _date(value: object, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise ValueError(f"{what} must be a date (YYYY-MM-DD), got {value!r}")


def season_position(row: Mapping[str, Any]) -> float:
    """Where a year is drawn: the middle of its season window as a fractional year (the middle
    of the calendar year without a window)."""
    start, end = row.get("window_start"), row.get("window_end")
    if not start or not end:
        return float(row["year"]) + 0.5
    what = f"year {row['year']}: window"
    first, last = _date(start, what + "_start"), _date(end, what + "_end")
    return (decimal_year(first) + decimal_year(last)) / 2.0


def _number(value: object) -> float | None:
    """A finite float, or None for a missing value (None, NaN or "")."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ChartEvent:
    """A configured event as drawn: its name and date."""

    name: str
    date: dt.date

    @property
    def position(self) -> float:
        return decimal_year(self.date)


def chart_events(event_rows: Iterable[Mapping[str, Any]], site_id: str) -> tuple[ChartEvent, ...]:
    """The distinct events of ``site_id``'s event rows (one row per metric and event), by date
    then name."""
    found = {
        (str(r["event"]), _date(r["event_date"], f"event {r['event']!r}: event_date"))
        for r in event_rows
        if r["site_id"] == site_id
    }
    return tuple(ChartEvent(name, day) for name, day in sorted(found, key=lambda e: (e[1], e[0])))


def _left_out_years(summary: Mapping[str, Any]) -> set[int]:
    text = summary.get("years_left_out") or ""
    return {int(part.split(":", 1)[0]) for part in str(text).split(";") if part}


def theil_sen_points(
    rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]
) -> list[tuple[float, float]] | None:
    """Points (position, value) of the summary's Theil-Sen line over the years it used.

    The summary carries the slope, not the intercept; as in ``scipy.stats.theilslopes`` the
    intercept is median(value) - slope * median(year) over the years used, which are the years
    with a value less ``years_left_out``. None when there is no slope, or when those years do
    not number ``n_years`` (rows and summary do not belong together).
    """
    slope = _number(summary.get("slope_per_year"))
    metric = str(summary["metric"])
    if slope is None:
        return None
    left_out = _left_out_years(summary)
    used = [
        (int(r["year"]), season_position(r), value)
        for r in rows
        if (value := _number(r.get(metric))) is not None and int(r["year"]) not in left_out
    ]
    if len(used) < 2 or len(used) != int(summary["n_years"]):
        return None
    intercept = statistics.median(v for _, _, v in used) - slope * statistics.median(
        y for y, _, _ in used
    )
    return [(pos, intercept + slope * year) for year, pos, _ in used]


def _p_text(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def caption(summary: Mapping[str, Any], min_years: int) -> str:
    """One line under a metric: Theil-Sen slope and interval, the Mann-Kendall p with the
    Hamed-Rao correction (or "insufficient (n < min_years)"), and the years left out."""
    n = int(summary["n_years"])
    slope = _number(summary.get("slope_per_year"))
    low, high = _number(summary.get("slope_low")), _number(summary.get("slope_high"))
    parts = []
    if slope is not None:
        interval = f" [{low:+.2f}, {high:+.2f}]" if low is not None and high is not None else ""
        parts.append(f"Theil-Sen {slope:+.2f} ha/yr{interval}")
    if summary.get("trend_hr") == "insufficient" or _number(summary.get("hr_p")) is None:
        parts.append(f"Mann-Kendall (Hamed-Rao): insufficient (n = {n} < {min_years})")
    else:
        parts.append(
            f"Mann-Kendall (Hamed-Rao) {_p_text(_number(summary.get('hr_p')))}, "
            f"{summary.get('trend_hr')}"
        )
    left = int(summary.get("n_years_left_out") or 0)
    years = sorted(_left_out_years(summary))
    listed = f" ({', '.join(map(str, years))})" if years else ""
    parts.append(f"{n} years used, {left} left out{listed}")
    return "; ".join(parts)


def site_ids(trend_rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Site ids in the order of their first row (the run's site order)."""
    return list(dict.fromkeys(str(r["site_id"]) for r in trend_rows))


def _draw_metric(
    ax: Axes,
    rows: Sequence[Mapping[str, Any]],
    metric: str,
    pm: str,
    label: str,
    summary: Mapping[str, Any] | None,
    min_years: int,
) -> None:
    colour = _COLOURS[metric]
    for row in rows:
        x = season_position(row)
        style = point_style(row.get("flags"))
        value = _number(row.get(metric))
        if value is None:
            ax.annotate(
                style.label or "no value",
                (x, 0.02),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=7,
                color="#444444",
                rotation=90,
            )
            continue
        half = _number(row.get(pm)) or 0.0
        ax.errorbar(
            [x],
            [value],
            yerr=[[half], [half]],
            fmt="o",
            markersize=6,
            capsize=3,
            color=colour,
            markerfacecolor=colour if style.filled else "white",
            markeredgewidth=1.5,
            zorder=3,
        )
        if style.label:
            ax.annotate(
                style.label,
                (x, value - half),
                xytext=(0, -4),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=7,
                color="#444444",
            )
    ax.margins(y=0.2)  # room for the flag labels under the lowest points
    if summary is None:
        ax.set_title(label, loc="left", fontsize=9)
        return
    line = theil_sen_points(rows, summary)
    if line is not None:
        xs, ys = zip(*line, strict=True)
        ax.plot(xs, ys, color=_COLOURS["line"], linewidth=1.2, zorder=2)
    ax.set_title(f"{label}\n{caption(summary, min_years)}", loc="left", fontsize=9)


def _draw_changes(ax: Axes, rows: Sequence[Mapping[str, Any]]) -> None:
    width = 0.35
    for row in rows:
        added, removed = _number(row.get("added_ha")), _number(row.get("removed_ha"))
        if added is None or removed is None:
            continue
        x = season_position(row)
        for value, pm, colour in (
            (added, row.get("added_pm_ha"), _COLOURS["added"]),
            (-removed, row.get("removed_pm_ha"), _COLOURS["removed"]),
        ):
            half = _number(pm)
            ax.bar(
                [x],
                [value],
                width=width,
                color=colour,
                zorder=3,
                yerr=None if half is None else [[half], [half]],
                capsize=2,
                error_kw={"elinewidth": 0.8, "ecolor": "#333333"},
            )
        net, net_pm = _number(row.get("net_change_ha")), _number(row.get("net_change_pm_ha"))
        if net is not None:
            ax.errorbar(
                [x],
                [net],
                yerr=None if net_pm is None else [[net_pm], [net_pm]],
                fmt="D",
                markersize=4,
                color=_COLOURS["line"],
                capsize=3,
                zorder=4,
            )
        if row.get("net_change_significant") in (True, "true"):
            tops = [added + (_number(row.get("added_pm_ha")) or 0.0)]
            if net is not None:
                tops.append(net + (net_pm or 0.0))
            ax.annotate(
                "*",
                (x, max(*tops, 0.0)),
                xytext=(0, 1),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=11,
            )
    ax.axhline(0.0, color="#000000", linewidth=0.6)
    ax.margins(y=0.15)
    ax.set_title(
        "Footprint added (up) and removed (down) since the previous year with data, and the "
        "net change (ha, 95%); * net change significant",
        loc="left",
        fontsize=9,
    )


def site_chart(
    trend_rows: Sequence[Mapping[str, Any]],
    summary_rows: Sequence[Mapping[str, Any]],
    event_rows: Sequence[Mapping[str, Any]],
    site_id: str,
    *,
    title: str | None = None,
    min_years: int = 5,
) -> Figure:
    """The chart of one site as a ``Figure`` (Agg canvas attached, nothing written).

    Rows of other sites are ignored. ``min_years`` is the run's ``trends.min_years``, quoted
    when a series is too short for a p. Raises ``ValueError`` when no trend row is of
    ``site_id``.
    """
    rows = sorted((r for r in trend_rows if r["site_id"] == site_id), key=lambda r: r["year"])
    if not rows:
        raise ValueError(
            f"no trend rows for site {site_id!r}; sites present: {site_ids(trend_rows)}"
        )
    summaries = {str(s["metric"]): s for s in summary_rows if s["site_id"] == site_id}
    events = chart_events(event_rows, site_id)
    with default_style():
        fig = Figure(figsize=(9.0, 9.5), dpi=CHART_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(CHART_METRICS) + 1, 1, sharex=True)
        for ax, (metric, pm, label) in zip(axes, CHART_METRICS, strict=False):
            _draw_metric(ax, rows, metric, pm, label, summaries.get(metric), min_years)
        _draw_changes(axes[-1], rows)
        positions = [season_position(r) for r in rows]
        low, high = min(positions) - 0.6, max(positions) + 0.6
        for ax in axes:
            ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
            ax.set_axisbelow(True)
            for n, event in enumerate(events):
                if low <= event.position <= high:
                    ax.axvline(
                        event.position,
                        color=_COLOURS["event"],
                        linewidth=1.0,
                        linestyle=_EVENT_STYLES[n % len(_EVENT_STYLES)],
                        zorder=1,
                    )
        axes[-1].set_xlim(low, high)
        axes[-1].set_xticks(positions, [str(r["year"]) for r in rows])
        axes[-1].set_xlabel("Year (drawn at the middle of its season window)")
        fig.suptitle(title or site_id, fontsize=12, fontweight="bold")
        fig.legend(
            handles=_legend_handles(events, low, high),
            loc="outside lower center",
            ncols=2,
            fontsize=8,
            frameon=False,
        )
    return fig


def _legend_handles(events: Sequence[ChartEvent], low: float, high: float) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    grey = "#444444"
    handles: list[Any] = [
        Line2D([], [], marker="o", color=grey, linestyle="", label="year used (95% interval)"),
        Line2D(
            [],
            [],
            marker="o",
            color=grey,
            markerfacecolor="white",
            linestyle="",
            label="low-data year (flag below it)",
        ),
        Line2D([], [], color=_COLOURS["line"], label="Theil-Sen line over the years used"),
        Patch(color=_COLOURS["added"], label="added"),
        Patch(color=_COLOURS["removed"], label="removed"),
        Line2D([], [], marker="D", color=_COLOURS["line"], linestyle="", label="net change"),
    ]
    for n, event in enumerate(events):
        if low <= event.position <= high:
            handles.append(
                Line2D(
                    [],
                    [],
                    color=_COLOURS["event"],
                    linestyle=_EVENT_STYLES[n % len(_EVENT_STYLES)],
                    label=f"{event.name}, {event.date.isoformat()}",
                )
            )
    return handles


def default_style() -> AbstractContextManager[None]:
    """matplotlib's default style for the ``with`` block, whatever the user's matplotlibrc
    sets (fonts, sizes, ``savefig.bbox``...), so that figures drawn and saved inside it look
    and encode the same on every machine. It swaps the global rcParams while it lasts: do not
    draw from several threads at once."""
    return mpl_style.context("default", after_reset=True)


def figure_png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes at ``CHART_DPI`` with no ``Software`` chunk: identical bytes for an
    identical figure."""
    buffer = io.BytesIO()
    with default_style():
        fig.savefig(buffer, format="png", dpi=CHART_DPI, metadata=dict(PNG_METADATA))
    return buffer.getvalue()


def chart_png(
    trend_rows: Sequence[Mapping[str, Any]],
    summary_rows: Sequence[Mapping[str, Any]],
    event_rows: Sequence[Mapping[str, Any]],
    site_id: str,
    *,
    title: str | None = None,
    min_years: int = 5,
) -> bytes:
    """:func:`site_chart` rendered as PNG bytes (:func:`figure_png`)."""
    fig = site_chart(
        trend_rows, summary_rows, event_rows, site_id, title=title, min_years=min_years
    )
    return figure_png(fig)


def write_charts(
    folder: Path,
    trend_rows: Sequence[Mapping[str, Any]],
    summary_rows: Sequence[Mapping[str, Any]],
    event_rows: Sequence[Mapping[str, Any]],
    *,
    titles: Mapping[str, str] | None = None,
    min_years: int = 5,
) -> dict[str, Path]:
    """Write ``folder/charts/<site_id>.png`` for every site of ``trend_rows``, atomically;
    return the paths by site id, in site order. ``titles``: a heading per site id (default the
    id)."""
    names = titles or {}
    written: dict[str, Path] = {}
    for site_id in site_ids(trend_rows):
        png = chart_png(
            trend_rows,
            summary_rows,
            event_rows,
            site_id,
            title=names.get(site_id),
            min_years=min_years,
        )
        written[site_id] = atomic_write_bytes(folder / "charts" / f"{site_id}.png", png)
    return written
