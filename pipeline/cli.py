"""The ``sitewatch`` command line: parses arguments, calls the library, reports."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from pipeline import __version__
from pipeline.errors import ConfigError, SitewatchError
from pipeline.export.atomic import atomic_write_text
from pipeline.sites import SITE_KINDS
from pipeline.sources.base import RedactSecrets

console = Console(stderr=True)


@contextmanager
def progress_display(quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar per task name; the callback the library takes."""
    if quiet:

        def silent(_task: str, _done: int, _total: int) -> None:
            return None

        yield silent
        return
    with Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        yield update


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", type=Path, help="output folder (default: output_dir/name of the config)"
    )
    p.add_argument("--workers", type=int, help="parallel processes over (site, year)")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the site-years on an existing dask.distributed cluster (tcp://HOST:PORT); "
        "its workers must see the output folder's file system",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitewatch",
        description="Map and measure footprints and coal stockpiles of watched sites, year by year.",
    )
    parser.add_argument("--version", action="version", version=f"sitewatch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the whole pipeline on the built-in synthetic scenario")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    demo.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    demo.add_argument("--cache-dir", type=Path, help="where the synthetic imagery is cached")

    run = sub.add_parser("run", help="run a YAML config")
    run.add_argument("config", type=Path)
    _add_run_options(run)
    run.add_argument("--sites", nargs="+", metavar="ID", help="only these site ids")
    run.add_argument("--years", nargs="+", type=int, metavar="YEAR", help="only these years")
    run.add_argument(
        "--perimeters",
        type=Path,
        metavar="FILE",
        help="analyst-drawn perimeters (GeoJSON, GeoPackage or KML; fields site_id and year or "
        "date) to measure expansion from as well (overrides expansion.perimeters)",
    )
    run.add_argument(
        "--force", action="store_true", help="recompute everything; ignore finished site-years"
    )
    run.add_argument(
        "--offline",
        action="store_true",
        help="no network: searches and image chips from the cache only (fails naming what is missing)",
    )

    cfg = sub.add_parser("config", help="inspect configs")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = cfg_sub.add_parser("show", help="print the resolved config with every default")
    show.add_argument("config", type=Path)
    cfg_sub.add_parser("reference", help="print every config key with its default (Markdown)")

    sites = sub.add_parser("sites", help="the site library: list, show, validate")
    sites_sub = sites.add_subparsers(dest="sites_command", required=True, metavar="ACTION")
    files_help = "site GeoJSON files or folders (default: the shipped library, aoi/)"
    ls = sites_sub.add_parser("list", help="every site with kind, confidence, area and sources")
    ls.add_argument("files", nargs="*", type=Path, metavar="FILE", help=files_help)
    ls.add_argument("--kind", nargs="+", choices=SITE_KINDS, help="only these kinds")
    ls.add_argument("--json", action="store_true", help="as JSON (id, kind, confidence, sources)")
    one = sites_sub.add_parser("show", help="everything known about one site")
    one.add_argument("id", metavar="ID")
    one.add_argument("files", nargs="*", type=Path, metavar="FILE", help=files_help)
    check = sites_sub.add_parser(
        "validate", help="check site files: geometry, winding, WGS84, ids, sources, size"
    )
    check.add_argument("files", nargs="*", type=Path, metavar="FILE", help=files_help)

    acc = sub.add_parser(
        "accuracy",
        help="detection accuracy: synthetic hard cases on unseen seeds, and real labelled pairs",
        description="Prints a table of case x metric with the targets; exit 1 when one is missed.",
    )
    acc.add_argument(
        "--suite", choices=("synthetic", "real", "all"), default="all", help="which cases"
    )
    acc.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="synthetic seeds")
    acc.add_argument("--cases", nargs="+", metavar="CASE", help="only these synthetic cases")
    acc.add_argument(
        "--workdir",
        type=Path,
        default=Path(".sitewatch-cache/accuracy"),
        help="scenario cache and runs (default .sitewatch-cache/accuracy)",
    )
    acc.add_argument("--json", type=Path, help="also write the results as JSON")

    exp = sub.add_parser(
        "expansion",
        help="boundary expansion between the years of analyst-drawn perimeters (no imagery)",
        description="Writes expansion.geojson, expansion.csv, expansion_sectors.csv and "
        "manifest.json in --out; prints a summary per site.",
    )
    exp.add_argument("perimeters", type=Path, help="GeoJSON, GeoPackage or KML of perimeters")
    exp.add_argument("--out", type=Path, required=True, help="output folder")
    exp.add_argument("--layer", help="GeoPackage layer or KML folder")
    exp.add_argument("--site", help="site id for every perimeter (when the file has no site_id)")
    exp.add_argument("--site-field", default="site_id", help="field with the site id")
    exp.add_argument("--year-field", default="year", help="field with the year")
    exp.add_argument("--date-field", default="date", help="field with an ISO date (if no year)")
    exp.add_argument("--sectors", type=int, default=16, help="direction sectors (default 16)")
    exp.add_argument(
        "--sites-file", type=Path, help="site GeoJSON: measure each site in its own UTM zone"
    )

    cmp = sub.add_parser(
        "compare",
        help="change between two dates of one place (rasters or folders of band files)",
        description="Writes change.tif, expansion.tif, change.geojson in --out; prints a JSON summary.",
    )
    cmp.add_argument(
        "before",
        type=Path,
        help="multi-band raster, or folder of band files: Sentinel-2 L1C/L2A (B02.tif, "
        "T51SUH_..._B02_10m.jp2, a .SAFE) or Landsat C2 L2 (..._SR_B2.TIF as USGS names them)",
    )
    cmp.add_argument(
        "after",
        type=Path,
        help="as BEFORE; both are read onto BEFORE's finest grid (UTM when BEFORE is geographic)",
    )
    cmp.add_argument("--out", type=Path, required=True, help="output folder")
    cmp.add_argument(
        "--bands",
        help="band order of multi-band inputs, comma-separated (e.g. B02,B03,B04,B08,B11,B12, "
        "blue,green,red,nir,swir16,swir22, or SR_B2,...,SR_B7 for a Landsat file named by its "
        "USGS product id)",
    )
    cmp.add_argument(
        "--baseline",
        metavar="BEFORE[,AFTER]",
        help="Sentinel-2 processing baseline per date, NN.NN (e.g. 02.09,04.00; one value for "
        "both; ,04.00 leaves BEFORE's to its metadata); wins over the metadata, with a warning "
        "when they disagree. Default: from a STAC item, MTD_MSIL2A.xml/MTD_MSIL1C.xml or the "
        "product name, else checked from the pixels",
    )
    cmp.add_argument(
        "--scale",
        type=float,
        default=None,
        help="DN scale to reflectance for both dates (overrides each date's own rule)",
    )
    cmp.add_argument(
        "--offset",
        type=float,
        default=None,
        help="added after scaling, for both dates (overrides each date's own rule; default 0)",
    )
    cmp.add_argument(
        "--alpha",
        type=float,
        default=None,
        metavar="P",
        help="false-alarm rate per pixel of each change test (default 0.001): smaller finds "
        "only stronger change, fewer false alarms where much real change is not of interest "
        "(seasons, shade, traffic) and more change missed (docs/design.md, compare)",
    )
    cmp.add_argument(
        "--training",
        type=Path,
        metavar="FILE",
        help="polygons labelled on BEFORE (GeoPackage or GeoJSON, field class: footprint, coal, "
        "other, water, vegetation): classify both dates with a model trained on them "
        "(docs/supervised.md)",
    )
    cmp.add_argument("--training-layer", metavar="NAME", help="layer of --training to read")
    tpl = sub.add_parser(
        "training-template",
        help="an empty GeoPackage of training polygons to label in QGIS (supervised mode)",
    )
    tpl.add_argument("out", type=Path, metavar="OUT", help="the GeoPackage to write")
    tpl.add_argument("--force", action="store_true", help="replace an existing file")
    _add_sample_commands(sub)
    return parser


def _add_sample_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``sample`` and ``area-estimate``: sample-based area estimates (Olofsson et al. 2014)."""
    smp = sub.add_parser(
        "sample",
        help="a stratified random sample of pixels of a run's maps, to label in QGIS",
        description="Writes a GeoPackage: layer samples (points with an empty label field and "
        "a QGIS style), table strata (map area per class); label it, then run area-estimate.",
    )
    smp.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished run's folder")
    smp.add_argument(
        "--out", type=Path, help="GeoPackage to write (default RUN_DIR-samples.gpkg beside RUN_DIR)"
    )
    size = smp.add_mutually_exclusive_group()
    size.add_argument(
        "--total", type=int, metavar="N", help="points per site-year, at least "
        "--min-per-stratum per class, the rest in proportion to area (default 200)",
    )  # fmt: skip
    size.add_argument("--per-stratum", type=int, metavar="N", help="N points from each class")
    smp.add_argument(
        "--min-per-stratum", type=int, default=50, metavar="N", help="with --total (default 50)"
    )
    smp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    smp.add_argument("--sites", nargs="+", metavar="ID", help="only these site ids")
    smp.add_argument("--years", nargs="+", type=int, metavar="YEAR", help="only these years")
    smp.add_argument("--force", action="store_true", help="replace an existing --out file")
    est = sub.add_parser(
        "area-estimate",
        help="areas per class with 95%% intervals and accuracies from a labelled sample",
        description="Reads a GeoPackage written by sitewatch sample and labelled in QGIS.",
    )
    est.add_argument("samples", type=Path, metavar="SAMPLES", help="the labelled GeoPackage")
    est.add_argument("--out", type=Path, help="also write the estimates as CSV")
    est.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _sample_commands(args: argparse.Namespace) -> int:
    from pipeline import sampling

    if args.command == "sample":
        drawn = sampling.draw_samples(
            args.run_dir, total=args.total, per_stratum=args.per_stratum,
            min_per_stratum=args.min_per_stratum, seed=args.seed, sites=args.sites,
            years=args.years,
        )  # fmt: skip
        # Beside the run folder, never in it: a rerun replaces the run folder whole, labels included.
        out = args.out or args.run_dir.parent / f"{args.run_dir.name}-samples.gpkg"
        sampling.write_samples(drawn, out, overwrite=args.force)
        sys.stdout.write(sampling.format_sample_summary(drawn, out))
        return 0
    rows = sampling.estimate_areas(args.samples)
    if args.out is not None:
        sampling.write_area_estimates(rows, args.out)
    text = sampling.area_estimates_json(rows) if args.json else sampling.format_area_estimates(rows)
    sys.stdout.write(text)
    return 0


#: Exit codes: 0 done; 2 an input to fix (config, sites, rasters, options); 3 the environment
#: (files, folders, disk, network, cache, memory); 4 a bug (please report it); 130 interrupted.
EXIT_INPUT, EXIT_ENVIRONMENT, EXIT_BUG, EXIT_INTERRUPTED = 2, 3, 4, 130


def main(argv: Sequence[str] | None = None) -> int:
    """The command line's one error boundary: every fault becomes one ``error:`` line and an
    exit code; the traceback only with ``--debug``."""
    args = build_parser().parse_args(argv)
    # The console shows warnings (more with -v); the run's log file (run.run_log) takes INFO
    # whatever the console shows, so the level is the console handler's, not the logger's.
    console_handler = logging.StreamHandler()
    console_handler.setLevel(max(logging.WARNING - 10 * args.verbose, logging.DEBUG))
    console_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    console_handler.addFilter(RedactSecrets())
    logging.basicConfig(level=logging.DEBUG, handlers=[console_handler])
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        console.print("interrupted; rerun the same command to resume where it stopped")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        message, code = describe_failure(exc)
        console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
        return code


def describe_failure(exc: BaseException) -> tuple[str, int]:
    """One line for a failure, and its exit code."""
    from concurrent.futures.process import BrokenProcessPool

    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    if isinstance(exc, SitewatchError):
        return str(exc), EXIT_ENVIRONMENT if isinstance(exc, OSError) else EXIT_INPUT
    if isinstance(exc, BrokenProcessPool):  # a worker killed (the OOM killer, kill -9)
        return (
            "a worker process died abruptly (killed by the system, often for lack of memory): "
            "use fewer --workers or a coarser grid (grid.resolution_m) and rerun; the rerun "
            "resumes where this one stopped",
            EXIT_ENVIRONMENT,
        )
    if isinstance(exc, MemoryError):
        return (
            "out of memory: use fewer --workers, a coarser grid (grid.resolution_m) or smaller "
            "sites",
            EXIT_ENVIRONMENT,
        )
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else "a file or folder"
        what = exc.strerror or str(exc)
        hint = {
            errno.ENOSPC: "free disk space (or point output_dir/cache_dir elsewhere) and rerun",
            errno.EACCES: "check the permissions, or choose another --out / cache_dir",
            errno.EROFS: "the file system is read-only: choose another --out / cache_dir",
            errno.ENOTDIR: "a file stands where a folder is needed: move it or choose another path",
            errno.EEXIST: "a file stands where a folder is needed: move it or choose another path",
        }.get(exc.errno or 0, "check the path and rerun; a rerun resumes where this one stopped")
        return f"{where}: {what}; {hint}", EXIT_ENVIRONMENT
    if isinstance(exc, RasterioError | CPLE_BaseError):  # GDAL's own errors are no RasterioError
        return f"GDAL/rasterio: {exc}; check the raster named above and rerun", EXIT_ENVIRONMENT
    return (
        f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for the traceback "
        "and report it",
        EXIT_BUG,
    )


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("sample", "area-estimate"):
        return _sample_commands(args)
    if args.command == "config":
        from pipeline.config import config_reference, config_to_yaml, load_config

        if args.config_command == "reference":
            sys.stdout.write(config_reference())
        else:
            sys.stdout.write(config_to_yaml(load_config(args.config)))
        return 0
    if args.command == "sites":
        return _sites(args)
    if args.command == "accuracy":
        from pipeline.accuracy_suite import DEFAULT_SEEDS, format_table, run_suite

        with progress_display(args.quiet) as progress:
            suite = run_suite(
                args.suite, tuple(args.seeds or DEFAULT_SEEDS), args.workdir, args.cases, progress
            )
        sys.stdout.write(format_table(suite) + "\n")
        if args.json is not None:
            atomic_write_text(args.json, suite.to_json())
        return 0 if suite.passed else 1
    if args.command == "expansion":
        from pipeline.api import expansion_from_perimeters

        if not 1 <= args.sectors <= 360:
            raise ConfigError(f"--sectors {args.sectors}: allowed 1..360")
        _records, text = expansion_from_perimeters(
            args.perimeters, args.out, layer=args.layer, site_field=args.site_field,
            year_field=args.year_field, date_field=args.date_field, default_site=args.site,
            sectors=args.sectors, sites_file=args.sites_file,
        )  # fmt: skip
        sys.stdout.write(text)
        return 0
    if args.command == "compare":
        from pipeline.compare import compare
        from pipeline.pairwise import ALPHA

        bands = args.bands.split(",") if args.bands else None
        summary = compare(
            args.before, args.after, args.out, bands=bands, scale=args.scale,
            offset=args.offset, baseline=args.baseline,
            alpha=ALPHA if args.alpha is None else args.alpha, training=args.training,
            training_layer=args.training_layer,
        )  # fmt: skip
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0
    if args.command == "training-template":
        from pipeline.supervised import write_training_template

        path = write_training_template(args.out, overwrite=args.force)
        sys.stdout.write(
            f"wrote {path}: draw polygons in QGIS (fields class, year, optional site_id), then "
            f"set classify.mode: supervised and classify.training: {path} in the run config\n"
        )
        return 0
    from pipeline import api

    with progress_display(args.quiet) as progress:
        if args.command == "demo":
            result = api.demo(
                args.out, workers=args.workers, cache_dir=args.cache_dir, progress=progress
            )
        else:
            result = api.run_config(
                args.config, args.out, sites=args.sites, years=args.years,
                workers=args.workers, scheduler=args.scheduler, offline=args.offline,
                force=args.force, progress=progress, perimeters=args.perimeters,
            )  # fmt: skip
    sys.stdout.write(api.report(result))
    return 0


def _sites(args: argparse.Namespace) -> int:
    from pipeline import api

    if args.sites_command == "list":
        sites = api.list_sites(args.files, args.kind)
        if args.json:
            rows = [
                {"id": s.id, "kind": s.kind, "confidence": s.confidence, "name": s.name,
                 "area_km2": round(s.area_km2, 3), "parent": s.parent, "file": str(p),
                 "sources": list(s.sources)}
                for p, s in sites
            ]  # fmt: skip
            sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(api.format_site_list(sites))
        return 0
    if args.sites_command == "show":
        sys.stdout.write(api.describe_site(args.id, args.files))
        return 0
    checks, text = api.validate_sites(args.files)
    sys.stdout.write(text)
    return EXIT_INPUT if any(c.problems for c in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
