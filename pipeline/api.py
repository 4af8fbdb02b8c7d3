"""The public entry points behind the CLI and notebooks: demo, run a config, report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.compare import compare
from pipeline.config import load_config
from pipeline.demo import demo_config
from pipeline.results import RunResult
from pipeline.run import Progress, run

__all__ = ["compare", "demo", "report", "run_config"]


def demo(
    out: str | Path = "runs/demo",
    *,
    workers: int = 2,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run the whole pipeline on the built-in synthetic scenario (no network, no files needed)."""
    out = Path(out)
    config = demo_config(out, Path(cache_dir) if cache_dir is not None else None)
    return run(config.updated(workers=workers), out, progress=progress)


def run_config(
    config_path: str | Path,
    out: str | Path | None = None,
    *,
    sites: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Load a YAML config and run it."""
    config = load_config(config_path)
    if workers is not None:
        config = config.updated(workers=workers)
    return run(config, out, progress=progress, sites=sites, years=years)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(result: RunResult) -> str:
    """A plain-text summary per site: footprint per year, expansion, coal trend, accuracy."""
    lines = [f"outputs: {result.out_dir}", ""]
    for a in result.sites:
        lines.append(f"{a.site.id} ({a.site.name}), analysis area {a.area_ha:.1f} ha")
        lines.append("  year  footprint ha (+/-)   coal ha (+/-)   clear obs  flags")
        for sy, m in zip(a.years, a.metrics, strict=True):
            if sy.composite is None:
                lines.append(f"  {sy.year}  no clear observations")
                continue
            lines.append(
                f"  {sy.year}  {m.footprint_ha:8.2f} ({m.footprint_pm_ha:5.2f})"
                f"   {m.coal_ha:6.2f} ({m.coal_pm_ha:4.2f})   {sy.median_clear:5.1f}"
                f"      {'widened window' if sy.widened else ''}"
            )
        if a.changes:
            first_last = a.changes[-1]
            lines.append(
                f"  expansion {first_last.year_from}->{first_last.year_to}: "
                f"+{first_last.added_ha:.2f} ha added, -{first_last.removed_ha:.2f} ha removed"
            )
        from pipeline.trends import summarise

        years = [
            m.year for m, sy in zip(a.metrics, a.years, strict=True) if sy.composite is not None
        ]
        coal = [
            m.coal_ha for m, sy in zip(a.metrics, a.years, strict=True) if sy.composite is not None
        ]
        s = summarise(
            years, coal, min_n=result.config.trends.min_years, alpha=result.config.trends.alpha
        )
        lines.append(
            f"  coal area trend: {s.trend}, Theil-Sen {_fmt(s.slope)} ha/yr "
            f"(95% {_fmt(s.slope_low)}..{_fmt(s.slope_high)}), Mann-Kendall p {_fmt(s.mk_p, 3)}"
        )
        if a.accuracy:
            years_acc = a.accuracy["years"].values()
            ious = [y["footprint_iou"] for y in years_acc]
            fp_err = [
                abs(y["footprint_area_error"])
                for y in years_acc
                if y["footprint_area_error"] is not None
            ]
            coal_err = [
                abs(y["coal_area_error"]) for y in years_acc if y["coal_area_error"] is not None
            ]
            fe = a.accuracy["false_expansion_share"].values()
            lines.append(
                f"  accuracy vs truth: footprint IoU min {_fmt(min(ious, default=None), 3)}, "
                f"area error max {_fmt(100 * max(fp_err, default=0), 1)}%, "
                f"coal area error max {_fmt(100 * max(coal_err, default=0), 1)}%"
                + (f", false expansion max {_fmt(100 * max(fe), 2)}% of area" if fe else "")
            )
        lines.append("")
    return "\n".join(lines)
