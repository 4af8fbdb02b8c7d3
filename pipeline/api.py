"""The public entry points behind the CLI and notebooks: demo, run a config, report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import shapely

from pipeline.analysis import perimeter_changes
from pipeline.compare import compare
from pipeline.config import load_config
from pipeline.demo import demo_config
from pipeline.errors import SiteError
from pipeline.export.atomic import atomic_write_text
from pipeline.export.expansion import (
    ExpansionRecord,
    analysis_records,
    perimeter_records,
    write_expansion,
)
from pipeline.export.layers import summary_rows, trend_rows
from pipeline.export.manifest import canonical_json, sha256_file, software_versions
from pipeline.grid import utm_crs_for
from pipeline.perimeters import load_perimeters, perimeters_by_site
from pipeline.results import RunResult
from pipeline.run import Progress, run
from pipeline.sites import Site, SiteFileCheck, load_sites, validate_site_files

__all__ = [
    "compare",
    "demo",
    "describe_site",
    "expansion_from_perimeters",
    "format_site_list",
    "library_files",
    "list_sites",
    "report",
    "run_config",
    "validate_sites",
]

#: The site library shipped with sitewatch (``aoi/`` of the project).
LIBRARY_DIR = Path(__file__).resolve().parents[1] / "aoi"


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
    scheduler: str | None = None,
    offline: bool = False,
    progress: Progress | None = None,
    force: bool = False,
    perimeters: str | Path | None = None,
) -> RunResult:
    """Load a YAML config and run it; ``offline`` searches and reads from the cache only;
    ``force`` recomputes every site-year instead of resuming an unfinished run; ``perimeters``
    (a file of analyst-drawn perimeters) replaces the config's ``expansion.perimeters`` path;
    ``scheduler`` (a dask.distributed address) runs the site-years on that cluster."""
    config = load_config(config_path)
    if perimeters is not None:
        drawn = config.expansion.perimeters
        fields = drawn.model_dump() if drawn is not None else {}
        expansion = {
            **config.expansion.model_dump(),
            "perimeters": {**fields, "path": Path(perimeters).resolve()},
        }
        config = config.updated(expansion=expansion)
    if workers is not None:
        config = config.updated(workers=workers)
    if scheduler is not None:
        config = config.updated(scheduler=scheduler)
    if offline:
        config = config.updated(offline=True)
    return run(config, out, progress=progress, sites=sites, years=years, force=force)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def report(result: RunResult) -> str:
    """A plain-text summary per site: footprint per year with its net change since the previous
    year with data (+/- its 95% half-width, and the kind of change), expansion, coal trend,
    accuracy. The rows, flags and trend statistics are the ones written to trends.csv and
    trend_summary.csv."""
    cfg = result.config
    lines = [f"outputs: {result.out_dir}", ""]
    for a in result.sites:
        rows = trend_rows(a, cfg.season.min_clear_observations)
        lines.append(f"{a.site.id} ({a.site.name}), analysis area {a.area_ha:.1f} ha")
        lines.append(
            "  year  footprint ha (+/-)   coal ha (+/-)   net change ha (+/-), kind        "
            "clear obs  flags"
        )
        for row in rows:
            if row["footprint_ha"] is None:
                lines.append(f"  {row['year']}  no clear observations")
                continue
            net = (
                f"{row['net_change_ha']:+7.2f} ({row['net_change_pm_ha']:4.2f}) "
                f"{row['change_kind']:<21}"
                if row["net_change_ha"] is not None
                else " " * 36
            )
            lines.append(
                f"  {row['year']}  {row['footprint_ha']:8.2f} ({row['footprint_pm_ha']:5.2f})"
                f"   {row['coal_ha']:6.2f} ({row['coal_pm_ha']:4.2f})   {net}"
                f"   {row['median_clear_obs']:5.1f}      {row['flags']}"
            )
        lines.extend(expansion_lines(analysis_records(a)))
        summary = summary_rows(a, rows, cfg.trends)
        coal = next(s for s in summary if s["metric"] == "coal_ha")
        left_out = (
            f", {coal['n_years_left_out']} flagged year(s) left out ({coal['years_left_out']})"
            if coal["n_years_left_out"]
            else ""
        )
        lines.append(
            f"  coal area trend over {coal['n_years']} years: {coal['trend_hr']}, Theil-Sen "
            f"{_fmt(coal['slope_per_year'])} ha/yr (95% {_fmt(coal['slope_low'])}.."
            f"{_fmt(coal['slope_high'])}), Mann-Kendall (Hamed-Rao) p {_fmt(coal['hr_p'], 3)}"
            f"{left_out}"
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
            exp = acc["first_last_expansion"]
            if exp is not None and exp["true_added_ha"] > 0:
                lines.append(
                    f"  expansion vs truth, first-last: {exp['added_ha']:.1f} ha added (truth "
                    f"{exp['true_added_ha']:.1f}), mostly {exp['main_direction'] or '-'} (truth "
                    f"{exp['true_main_direction'] or '-'}), up to {exp['max_outward_m']:.0f} m "
                    f"(truth {exp['true_max_outward_m']:.0f}); per-sector reach error median "
                    f"{_fmt(exp['median_sector_max_error_m'], 0)} m"
                )
            if acc["years_with_too_few_clear_observations"]:
                lines.append(
                    "  not scored (too few clear observations): "
                    + ", ".join(map(str, acc["years_with_too_few_clear_observations"]))
                )
        lines.append("")
    return "\n".join(lines)


def expansion_lines(records: Sequence[ExpansionRecord]) -> list[str]:
    """The report's expansion lines: each pair's summary, and for the first-last change (or
    the only one) the outward displacement per sector."""
    lines = []
    for r in records:
        c = r.change
        pm = f" (+/- {r.displacement_pm_m:g} m)" if r.displacement_pm_m and c.sectors else ""
        lines.append(f"  expansion {c.year_from}->{c.year_to} ({r.source}): {c.summary}{pm}")
    for source in ("footprint", "perimeter"):
        mine = [r for r in records if r.source == source]
        if not mine or not mine[-1].change.sectors:
            continue
        last = mine[-1].change
        cells = [f"{s.sector} {_metres(s.median_m)}/{_metres(s.max_m)}" for s in last.sectors]
        lines.append(
            f"    outward m by sector {last.year_from}->{last.year_to} ({source}, median/max): "
            + ", ".join(cells)
        )
    return lines


def _metres(value: float | None) -> str:
    return "-" if value is None else f"{round(value) + 0:d}"


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


# -- the site library -------------------------------------------------------------------------


def library_files(paths: Sequence[str | Path] = ()) -> list[Path]:
    """The site files ``paths`` names (a folder stands for its ``*.geojson``), or else the
    shipped library: ``aoi/*.geojson`` of the project."""
    given = [Path(p) for p in paths] or [LIBRARY_DIR]
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            found = sorted(path.glob("*.geojson"))
            if not found:
                raise SiteError(f"{path}: no *.geojson site files in this folder")
            files.extend(found)
        else:
            files.append(path)
    return files


def list_sites(
    paths: Sequence[str | Path] = (), kinds: Sequence[str] | None = None
) -> list[tuple[Path, Site]]:
    """Every site of the files (see :func:`library_files`), optionally of ``kinds`` only."""
    out: list[tuple[Path, Site]] = []
    for path in library_files(paths):
        out.extend((path, s) for s in load_sites(path) if kinds is None or s.kind in kinds)
    return out


def format_site_list(sites: Sequence[tuple[Path, Site]]) -> str:
    """One line per site (id, kind, confidence, area, name), its sources indented below."""
    if not sites:
        return "no sites\n"
    width = max(len(s.id) for _p, s in sites)
    kind_width = max(len(s.kind) for _p, s in sites)
    lines = [
        f"{'id':<{width}}  {'kind':<{kind_width}}  confidence  {'area km2':>9}  name",
    ]
    for _path, site in sites:
        lines.append(
            f"{site.id:<{width}}  {site.kind:<{kind_width}}  {site.confidence or '-':<10}  "
            f"{site.area_km2:>9,.2f}  {site.name}"
        )
        lines.extend(f"{'':<{width}}    source: {src}" for src in site.sources)
    return "\n".join(lines) + "\n"


def describe_site(site_id: str, paths: Sequence[str | Path] = ()) -> str:
    """Everything the site file says about ``site_id``, with its area, UTM zone and grid."""
    found = [(p, s) for p, s in list_sites(paths) if s.id == site_id]
    if not found:
        known = sorted(s.id for _p, s in list_sites(paths))
        raise SiteError(f"site id {site_id!r} not found; available: {', '.join(known)}")
    path, site = found[0]
    grid = site.grid(10.0, 200.0)
    detail = {
        "id": site.id,
        "name": site.name,
        "kind": site.kind,
        "file": str(path),
        "area_km2": round(site.area_km2, 3),
        "bounds_lonlat": [round(v, 6) for v in site.geometry.bounds],
        "utm_crs": site.utm_crs,
        "grid_10m": f"{grid.width} x {grid.height} px (200 m buffer)",
        "source": site.source,
        **site.properties,
    }
    return json.dumps(detail, indent=2, ensure_ascii=False) + "\n"


def validate_sites(paths: Sequence[str | Path] = ()) -> tuple[list[SiteFileCheck], str]:
    """Check the files against the site library's rules; the checks and a text report."""
    checks = validate_site_files(library_files(paths))
    lines = []
    for check in checks:
        if check.problems:
            lines.append(f"FAILED {check.path}: {len(check.problems)} problem(s)")
            lines.extend(f"  {p}" for p in check.problems)
        else:
            lines.append(f"ok {check.path}: {len(check.sites)} sites")
    return checks, "\n".join(lines) + "\n"


# -- expansion of analyst-drawn perimeters alone ---------------------------------------------


def expansion_from_perimeters(
    perimeters: str | Path,
    out: str | Path,
    *,
    layer: str | None = None,
    site_field: str = "site_id",
    year_field: str = "year",
    date_field: str = "date",
    default_site: str | None = None,
    sectors: int = 16,
    sites_file: str | Path | None = None,
) -> tuple[list[ExpansionRecord], str]:
    """Boundary expansion between the years of analyst-drawn perimeters, no imagery needed.

    Each site is measured in one UTM zone: its site's (``sites_file``), as in a run, or else the
    zone of the centroid of all its perimeters. Writes ``expansion.geojson``, ``expansion.csv``,
    ``expansion_sectors.csv`` and ``manifest.json`` into ``out``; returns the records and the
    report text."""
    source = Path(perimeters)
    drawn = perimeters_by_site(
        load_perimeters(
            source, layer=layer, site_field=site_field, year_field=year_field,
            date_field=date_field, default_site=default_site,
        )
    )  # fmt: skip
    known = {s.id: s for s in load_sites(sites_file)} if sites_file is not None else {}
    if known:
        unknown = sorted(set(drawn) - set(known))
        if unknown:
            raise SiteError(
                f"{source}: perimeters of site id(s) {', '.join(unknown)} that {sites_file} does "
                f"not have; allowed: {', '.join(sorted(known))}"
            )
    records: list[ExpansionRecord] = []
    crs_of: dict[str, str] = {}
    for site_id, by_year in drawn.items():
        site = known.get(site_id)
        if site is not None:
            crs, name = site.utm_crs, site.name
        else:
            centre = shapely.union_all(list(by_year.values())).centroid
            crs, name = utm_crs_for(centre.x, centre.y), site_id
        crs_of[site_id] = crs
        changes = perimeter_changes(by_year, crs, sectors=sectors)
        records.extend(perimeter_records(site_id, name, crs, changes))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    provenance = {
        "perimeters": {"path": str(source.resolve()), "sha256": sha256_file(source)},
        "sectors": sectors,
    }
    written = write_expansion(folder, records, provenance)
    manifest = {
        "sitewatch_manifest": 1,
        "command": "expansion",
        **provenance,
        "sites_file": (
            {"path": str(Path(sites_file).resolve()), "sha256": sha256_file(Path(sites_file))}
            if sites_file is not None
            else None
        ),
        "fields": {"site": site_field, "year": year_field, "date": date_field, "layer": layer},
        "sites": {
            site_id: {"years": sorted(by_year), "crs": crs_of[site_id]}
            for site_id, by_year in drawn.items()
        },
        "versions": software_versions(),
        "outputs": [{"path": p.name, "sha256": sha256_file(p)} for p in written],
    }
    atomic_write_text(folder / "manifest.json", canonical_json(manifest))
    lines = [f"outputs: {folder}", ""]
    for site_id in drawn:
        mine = [r for r in records if r.site_id == site_id]
        lines.append(f"{site_id}: perimeters of {', '.join(map(str, sorted(drawn[site_id])))}")
        lines.extend(expansion_lines(mine))
        lines.append("")
    return records, "\n".join(lines)
