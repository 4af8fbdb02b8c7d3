"""The public entry points behind the CLI and notebooks: demo, run a config, report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.compare import compare
from pipeline.config import load_config
from pipeline.demo import demo_config
from pipeline.export.run_outputs import summary_rows, trend_rows
from pipeline.results import RunResult
from pipeline.run import Progress, run

__all__ = ["compare", "demo", "report", "run_config"]


def demo(
    out: str | Path = "runs/demo",
    *,
    workers: int = 2,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> RunResult:
    """Run the whole pipeline on the built-in synthetic scenario (no network, no files needed);
    ``force`` recomputes every site-year instead of resuming."""
    out = Path(out)
    config = demo_config(out, Path(cache_dir) if cache_dir is not None else None)
    return run(config.updated(workers=workers), out, progress=progress, force=force)


def run_config(
    config_path: str | Path,
    out: str | Path | None = None,
    *,
    sites: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    workers: int | None = None,
    offline: bool = False,
    progress: Progress | None = None,
    force: bool = False,
) -> RunResult:
    """Load a YAML config and run it; ``offline`` searches and reads from the cache only;
    ``force`` recomputes every site-year instead of resuming an unfinished run."""
    config = load_config(config_path)
    if workers is not None:
        config = config.updated(workers=workers)
    if offline:
        config = config.updated(offline=True)
    return run(config, out, progress=progress, sites=sites, years=years, force=force)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def report(result: RunResult) -> str:
    """A plain-text summary per site: footprint per year, expansion, coal trend, accuracy. The
    rows, flags and trend statistics are the ones written to trends.csv and trend_summary.csv."""
    cfg = result.config
    lines = [f"outputs: {result.out_dir}", ""]
    for a in result.sites:
        rows = trend_rows(a, cfg.season.min_clear_observations)
        lines.append(f"{a.site.id} ({a.site.name}), analysis area {a.area_ha:.1f} ha")
        lines.append("  year  footprint ha (+/-)   coal ha (+/-)   clear obs  flags")
        for row in rows:
            if row["footprint_ha"] is None:
                lines.append(f"  {row['year']}  no clear observations")
                continue
            lines.append(
                f"  {row['year']}  {row['footprint_ha']:8.2f} ({row['footprint_pm_ha']:5.2f})"
                f"   {row['coal_ha']:6.2f} ({row['coal_pm_ha']:4.2f})"
                f"   {row['median_clear_obs']:5.1f}      {row['flags']}"
            )
        if a.changes:
            first_last = a.changes[-1]
            lines.append(
                f"  expansion {first_last.year_from}->{first_last.year_to}: "
                f"+{first_last.added_ha:.2f} ha added, -{first_last.removed_ha:.2f} ha removed"
            )
        summary = summary_rows(a, rows, cfg.trends.min_years, cfg.trends.alpha)
        coal = next(s for s in summary if s["metric"] == "coal_ha")
        lines.append(
            f"  coal area trend: {coal['trend']}, Theil-Sen {_fmt(coal['slope_per_year'])} ha/yr "
            f"(95% {_fmt(coal['slope_low'])}..{_fmt(coal['slope_high'])}), "
            f"Mann-Kendall p {_fmt(coal['mk_p'], 3)}"
        )
        if a.accuracy:
            acc = a.accuracy["summary"]
            fe = acc["max_false_expansion_share"]
            lines.append(
                f"  accuracy vs truth ({acc['years_scored']} years with enough clear "
                f"observations): footprint IoU min {_fmt(acc['min_footprint_iou'], 3)}, "
                f"area error max {_pct(acc['max_abs_footprint_area_error'])}, "
                f"coal area error max {_pct(acc['max_abs_coal_area_error'])}"
                + (f", false expansion max {_pct(fe, 2)} of area" if fe is not None else "")
            )
            if acc["years_with_too_few_clear_observations"]:
                lines.append(
                    "  not scored (too few clear observations): "
                    + ", ".join(map(str, acc["years_with_too_few_clear_observations"]))
                )
        lines.append("")
    return "\n".join(lines)


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"
