"""Reference samples for sample-based area estimates (Olofsson et al. 2014): the file edge.

Owns the GeoPackage an analyst labels in QGIS and the round trip around the statistics of
:mod:`pipeline.accuracy`:

1. :func:`draw_samples` reads a finished run directory, turns each site-year's map into strata
   (:data:`SAMPLE_CLASSES`: ``coal``, ``footprint_not_coal``, ``other``), allocates the sample
   (a minimum per stratum, the rest in proportion to area, or a fixed number per stratum) and
   draws a seeded stratified random sample of pixels; :func:`write_samples` writes it.
2. The analyst opens the GeoPackage in QGIS, sets ``label`` of each point from what the imagery
   shows (a drop-down of the allowed classes comes with the layer's default style) and saves.
3. :func:`estimate_areas` reads it back (:func:`read_labelled_samples`), tabulates map stratum
   against reference label per site-year and calls :func:`pipeline.accuracy.area_estimate`:
   areas per class with 95% intervals, user's, producer's and overall accuracy.

Strata. ``coal`` is the run's final coal mask: ``stockpiles.geojson`` rasterized back onto the
site grid (pixel-centre rule; the polygons are the vectorized mask, so this gives the mask's
pixels exactly, including the frequency rule, the opening and the edge unmixing, which a
threshold on ``coal_frequency.tif`` would not). ``footprint_not_coal`` is footprint (1 in
``*_footprint.tif``) that is not coal, ``other`` the rest of the analysis area; 255 (outside
the analysis area) is outside the sampling frame. The footprint of ``trends.csv`` includes coal,
so the reference estimate of it is the class ``footprint`` (coal + footprint_not_coal), with its
own standard error (the two classes' estimates are correlated).

The file. Layer ``samples``: points in EPSG:4326, because one layer holds every site and sites
lie in different UTM zones; QGIS reprojects them on the fly onto any basemap. The exact pixel
centre in the site's UTM grid is kept in ``x``/``y``/``crs``. Table ``strata``: the stratum
sizes, so that estimating needs nothing but this file. ``layer_styles``: the default QGIS style
(``pipeline/data/qml/samples.qml``). Same run, options and seed give the same bytes.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry import Point

from pipeline import accuracy, boundaries
from pipeline.errors import ConfigError, InsufficientDataError, SampleFileError
from pipeline.export import gpkg
from pipeline.export.atomic import atomic_path
from pipeline.export.tables import write_csv

logger = logging.getLogger(__name__)

__all__ = [
    "AREA_ESTIMATE_COLUMNS",
    "DEFAULT_SEED",
    "DEFAULT_TOTAL",
    "FOOTPRINT_CLASS",
    "SAMPLES_LAYER",
    "SAMPLE_CLASSES",
    "STRATA_LAYER",
    "AreaEstimateRow",
    "DrawnSample",
    "LabelledSamples",
    "SampleFileError",
    "SamplePoint",
    "StratumRow",
    "area_estimates_json",
    "draw_samples",
    "estimate_areas",
    "estimates_from_samples",
    "format_area_estimates",
    "format_sample_summary",
    "map_strata",
    "read_labelled_samples",
    "sample_based_areas",
    "samples_qml",
    "write_area_estimates",
    "write_samples",
]

#: Map classes, which are the strata and the allowed reference labels, in matrix order.
SAMPLE_CLASSES: tuple[str, ...] = ("coal", "footprint_not_coal", "other")
#: The reference class that ``trends.csv`` calls footprint: coal + footprint_not_coal.
FOOTPRINT_CLASS = "footprint"
SAMPLES_LAYER = "samples"
STRATA_LAYER = "strata"
#: Default sample size per site-year, allocated with ``accuracy.DEFAULT_MIN_PER_STRATUM`` (50)
#: per stratum at least and the rest in proportion to area.
DEFAULT_TOTAL = 200
DEFAULT_SEED = 0
#: ``gpkg_contents.last_change`` and ``layer_styles.update_time`` of every file written
#: (:mod:`pipeline.export.gpkg` fixes them), so that the bytes depend on the content only.
FIXED_TIMESTAMP = gpkg.FIXED_TIMESTAMP
_QML = ("qml", "samples.qml")
_OUTSIDE = -1


# --- Drawing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplePoint:
    """One sampled pixel: its centre in the site's UTM grid (``x``, ``y``, ``crs``) and in
    EPSG:4326 (``lon``, ``lat``), its map class (``stratum``) and, once labelled, ``label``."""

    sample_id: int
    site_id: str
    year: int
    stratum: str
    pixel_size_m: float
    x: float
    y: float
    crs: str
    lon: float
    lat: float
    label: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class StratumRow:
    """One stratum of one site-year: its size in the map and how many pixels were drawn."""

    site_id: str
    year: int
    stratum: str
    pixels: int
    map_area_ha: float
    n_sampled: int
    pixel_size_m: float
    seed: int


@dataclass(frozen=True)
class DrawnSample:
    """Points (``sample_id`` 1..n, by site, year, then the draw's blind random order) and the
    strata they were drawn from."""

    points: tuple[SamplePoint, ...]
    strata: tuple[StratumRow, ...]


def map_strata(footprint: NDArray[Any], coal: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Stratum index per pixel into :data:`SAMPLE_CLASSES`: 0 coal, 1 footprint not coal,
    2 other; -1 outside the frame (``footprint`` 255, the rasters' nodata).

    Coal counts as coal even where the footprint raster says 0 (the run puts coal into the
    footprint, so this only guards against inconsistent inputs)."""
    fp = np.asarray(footprint)
    if fp.shape != coal.shape:
        raise ValueError(f"footprint {fp.shape} and coal {coal.shape} must have the same shape")
    inside = fp != 255
    strata = np.full(fp.shape, _OUTSIDE, dtype=np.int64)
    strata[inside] = 2
    strata[inside & (fp == 1)] = 1
    strata[inside & coal] = 0
    return strata


def _site_years(run_dir: Path) -> list[tuple[str, int, Path]]:
    """(site_id, year, footprint COG) of every site-year in ``run_dir/rasters``, sorted."""
    found = []
    for path in sorted((run_dir / "rasters").glob("*/*_footprint.tif")):
        site = path.parent.name
        prefix, suffix = f"{site}_", "_footprint.tif"
        year = path.name[len(prefix) : -len(suffix)]
        if path.name.startswith(prefix) and year.isdigit():
            found.append((site, int(year), path))
    return sorted(found)


def _read_stockpiles(path: Path) -> gpd.GeoDataFrame:
    if not path.is_file():
        raise SampleFileError(
            f"{path}: not found; sitewatch sample needs a finished run directory (it reads "
            "stockpiles.geojson and rasters/<site>/<site>_<year>_footprint.tif)"
        )
    frame = gpd.read_file(path, engine="pyogrio")
    missing = {"site_id", "year"} - set(frame.columns)
    if missing:
        raise SampleFileError(f"{path}: features lack the fields {sorted(missing)}")
    return frame


def _coal_mask(
    stockpiles: gpd.GeoDataFrame, site_id: str, year: int, dataset: Any
) -> NDArray[np.bool_]:
    rows = stockpiles[(stockpiles["site_id"] == site_id) & (stockpiles["year"] == year)]
    geoms = rows.geometry.dropna()
    geoms = geoms[~geoms.is_empty]
    shape = (dataset.height, dataset.width)
    if geoms.empty:
        return np.zeros(shape, dtype=bool)
    projected = geoms.to_crs(dataset.crs)
    return boundaries.rasterize(list(projected), dataset.transform, shape)


def _derived_seed(seed: int, site_id: str, year: int) -> int:
    """A site-year's own seed: adding or dropping a site leaves the others' points unchanged."""
    sequence = np.random.SeedSequence([seed, year, *site_id.encode("utf-8")])
    return int(sequence.generate_state(1, dtype=np.uint64)[0])


def _allocation(
    pixels: tuple[int, ...], total: int | None, per_stratum: int | None, min_per_stratum: int
) -> tuple[int, ...]:
    if per_stratum is not None:
        return tuple(min(per_stratum, p) for p in pixels)
    assert total is not None
    n = min(total, sum(pixels))
    try:
        return accuracy.allocate_sample(pixels, n, min_per_stratum)
    except ValueError as exc:
        raise ConfigError(
            f"--total {total} with --min-per-stratum {min_per_stratum}: {exc}"
        ) from exc


def draw_samples(
    run_dir: str | os.PathLike[str],
    *,
    total: int | None = None,
    per_stratum: int | None = None,
    min_per_stratum: int = accuracy.DEFAULT_MIN_PER_STRATUM,
    seed: int = DEFAULT_SEED,
    sites: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
) -> DrawnSample:
    """A stratified random sample of pixels per site and year of the run in ``run_dir``.

    Allocation per site-year: ``per_stratum`` pixels from each stratum (all of a smaller one),
    or else ``total`` (default :data:`DEFAULT_TOTAL`) shared by :func:`pipeline.accuracy.allocate_sample` (Olofsson et al.'s
    recommendation: at least ``min_per_stratum`` in each stratum, the rest in proportion to
    area). Each site-year draws with its own seed derived from ``seed``, its site id and year.
    ``sites``/``years`` restrict the sample (unknown ones are a ``ConfigError``).
    """
    root = Path(run_dir)
    if total is not None and per_stratum is not None:
        raise ConfigError("give --total or --per-stratum, not both")
    if total is None and per_stratum is None:
        total = DEFAULT_TOTAL
    for name, value in (("--total", total), ("--per-stratum", per_stratum)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} {value}: allowed 1 or more")
    if min_per_stratum < 2:
        # Every stratum's variance divides by n_h - 1.
        raise ConfigError(f"--min-per-stratum {min_per_stratum}: allowed 2 or more")
    available = _site_years(root)
    if not available:
        raise SampleFileError(
            f"{root}: no rasters/<site>/<site>_<year>_footprint.tif found; give the folder of "
            "a finished run (sitewatch run or sitewatch demo)"
        )
    chosen = _select(available, sites, years)
    stockpiles = _read_stockpiles(root / "stockpiles.geojson")

    points: list[SamplePoint] = []
    strata_rows: list[StratumRow] = []
    for site_id, year, path in chosen:
        with rasterio.open(path) as ds:
            footprint = ds.read(1)
            coal = _coal_mask(stockpiles, site_id, year, ds)
            transform, crs = ds.transform, ds.crs
        pixel_size = abs(float(transform.a))
        if not math.isclose(pixel_size, abs(float(transform.e))):
            raise SampleFileError(f"{path}: pixels are not square ({transform.a} x {transform.e})")
        strata = map_strata(footprint, coal)
        pixels = accuracy.stratum_pixel_counts(strata, len(SAMPLE_CLASSES))
        if sum(pixels) == 0:
            logger.warning("%s %s: no pixel inside the analysis area; not sampled", site_id, year)
            continue
        n_h = _allocation(pixels, total, per_stratum, min_per_stratum)
        # stratified_sample counts labels up to the largest present: trim absent top strata.
        present = max(h for h, p in enumerate(pixels) if p > 0) + 1
        draw = accuracy.stratified_sample(
            strata, n_h[:present], seed=_derived_seed(seed, site_id, year)
        )
        crs_text = crs.to_string()
        xs, ys = (
            np.asarray(v, dtype=np.float64)
            for v in rasterio.transform.xy(transform, draw.rows, draw.cols, offset="center")
        )
        lons, lats = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xs, ys)
        for s, x, y, lon, lat in zip(draw.strata, xs, ys, lons, lats, strict=True):
            points.append(
                SamplePoint(
                    sample_id=len(points) + 1, site_id=site_id, year=year,
                    stratum=SAMPLE_CLASSES[s], pixel_size_m=pixel_size, x=float(x), y=float(y),
                    crs=crs_text, lon=float(lon), lat=float(lat),
                )
            )  # fmt: skip
        pixel_ha = pixel_size**2 / 10_000.0
        for h, name in enumerate(SAMPLE_CLASSES):
            strata_rows.append(
                StratumRow(site_id, year, name, pixels[h], pixels[h] * pixel_ha, n_h[h],
                           pixel_size, seed)
            )  # fmt: skip
    return DrawnSample(tuple(points), tuple(strata_rows))


def _select(
    available: list[tuple[str, int, Path]],
    sites: Sequence[str] | None,
    years: Sequence[int] | None,
) -> list[tuple[str, int, Path]]:
    known_sites = sorted({s for s, _, _ in available})
    known_years = sorted({y for _, y, _ in available})
    unknown_sites = sorted(set(sites or ()) - set(known_sites))
    if unknown_sites:
        raise ConfigError(f"--sites {unknown_sites}: not in the run; it has {known_sites}")
    unknown_years = sorted(set(years or ()) - set(known_years))
    if unknown_years:
        raise ConfigError(f"--years {unknown_years}: not in the run; it has {known_years}")
    return [
        (s, y, p)
        for s, y, p in available
        if (not sites or s in sites) and (not years or y in years)
    ]


# --- Writing the GeoPackage -------------------------------------------------------------------

_SAMPLE_COLUMNS = ("sample_id", "site_id", "year", "label", "note", "stratum", "pixel_size_m")
_STRATA_COLUMNS = tuple(f.name for f in fields(StratumRow))
_STYLE_DESCRIPTION = "sitewatch: labels of the reference sample"


def samples_qml() -> str:
    """The default QGIS style of the ``samples`` layer (``pipeline/data/qml/samples.qml``)."""
    return resources.files("pipeline").joinpath("data", *_QML).read_text(encoding="utf-8")


def write_samples(
    sample: DrawnSample, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write ``sample`` as a GeoPackage (layer ``samples``, table ``strata``, the default style
    in ``layer_styles``) atomically; return the path. Identical input gives identical bytes.

    An existing file may hold an analyst's labels: it is replaced only with ``overwrite``."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise SampleFileError(
            f"{target}: exists and may hold labels; choose another --out, or --force to replace it"
        )
    if not sample.points:
        raise InsufficientDataError("no site-year has pixels to sample; nothing written")
    p = sample.points
    frame = gpd.GeoDataFrame(
        {
            "sample_id": pd.Series([q.sample_id for q in p], dtype="int64"),
            "site_id": pd.Series([q.site_id for q in p], dtype=object),
            "year": pd.Series([q.year for q in p], dtype="int64"),
            "label": pd.Series([q.label for q in p], dtype=object),
            "note": pd.Series([q.note for q in p], dtype=object),
            "stratum": pd.Series([q.stratum for q in p], dtype=object),
            "pixel_size_m": pd.Series([q.pixel_size_m for q in p], dtype="float64"),
            "x": pd.Series([q.x for q in p], dtype="float64"),
            "y": pd.Series([q.y for q in p], dtype="float64"),
            "crs": pd.Series([q.crs for q in p], dtype=object),
        },
        geometry=[Point(q.lon, q.lat) for q in p],
        crs="EPSG:4326",
    )
    strata = pd.DataFrame(
        [asdict(r) for r in sample.strata] or None, columns=list(_STRATA_COLUMNS)
    ).astype({"year": "int64", "pixels": "int64", "n_sampled": "int64", "seed": "int64"})
    with atomic_path(path) as temp:
        pyogrio.write_dataframe(
            frame, temp, layer=SAMPLES_LAYER, driver="GPKG",
            dataset_options={"VERSION": gpkg.GPKG_VERSION},  # 1.3: what QGIS on GDAL 3.6 reads
        )  # fmt: skip
        pyogrio.write_dataframe(strata, temp, layer=STRATA_LAYER, driver="GPKG")
        gpkg.add_layer_styles(
            temp, {SAMPLES_LAYER: samples_qml()}, descriptions={SAMPLES_LAYER: _STYLE_DESCRIPTION}
        )
    return target


def format_sample_summary(sample: DrawnSample, path: Path) -> str:
    """What ``sitewatch sample`` wrote: points per site-year and stratum, and what to do next."""
    out = io.StringIO()
    out.write(f"wrote {path}: {len(sample.points)} points to label\n")
    rows: dict[tuple[str, int], list[StratumRow]] = {}
    for r in sample.strata:
        rows.setdefault((r.site_id, r.year), []).append(r)
    for (site_id, year), strata in rows.items():
        parts = ", ".join(f"{r.stratum} {r.n_sampled} of {r.pixels} px" for r in strata)
        out.write(f"  {site_id} {year}: {parts}\n")
    out.write(
        "next: open the file in QGIS, set label of every point (coal, footprint_not_coal or "
        f"other) from the imagery, save, then run: sitewatch area-estimate {path}\n"
    )
    return out.getvalue()


# --- Reading labels and estimating ------------------------------------------------------------


@dataclass(frozen=True)
class LabelledSamples:
    """What a labelled sample file holds: its classes (the strata, which are also the allowed
    labels), its points (``label`` None when not yet labelled) and its strata, in file order."""

    path: Path
    classes: tuple[str, ...]
    points: tuple[SamplePoint, ...]
    strata: tuple[StratumRow, ...]


def _need_columns(frame: pd.DataFrame, needed: Iterable[str], where: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise SampleFileError(
            f"{where}: fields {missing} are missing (it has {list(frame.columns)}); write the "
            "file with sitewatch sample and only edit label and note"
        )


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def read_labelled_samples(path: str | os.PathLike[str]) -> LabelledSamples:
    """Read a sample GeoPackage written by :func:`write_samples`, after labelling.

    The classes are the stratum names of its ``strata`` table, in table order (for files of
    ``sitewatch sample``: :data:`SAMPLE_CLASSES`). ``label`` is matched to them ignoring case
    and surrounding blanks; empty or NULL means not labelled yet. Any other label, a
    ``stratum`` that is not a class, a repeated ``sample_id`` or a site-year missing from
    ``strata`` is a :class:`SampleFileError` naming the file, layer, sample_id, field and value
    and what is allowed.
    """
    source = Path(path)
    if not source.is_file():
        raise SampleFileError(f"{source}: no such file (write one with sitewatch sample)")
    try:
        layers = {str(name) for name, _ in pyogrio.list_layers(source)}
    except pyogrio.errors.DataSourceError as exc:
        raise SampleFileError(f"{source}: not a GeoPackage GDAL can read ({exc})") from exc
    missing = [n for n in (SAMPLES_LAYER, STRATA_LAYER) if n not in layers]
    if missing:
        raise SampleFileError(
            f"{source}: layers {missing} are missing (it has {sorted(layers)}); write the file "
            "with sitewatch sample"
        )
    samples = pyogrio.read_dataframe(source, layer=SAMPLES_LAYER, read_geometry=False)
    strata = pyogrio.read_dataframe(source, layer=STRATA_LAYER, read_geometry=False)
    where_s, where_t = f"{source}, layer {SAMPLES_LAYER}", f"{source}, layer {STRATA_LAYER}"
    _need_columns(samples, (*_SAMPLE_COLUMNS, "x", "y", "crs"), where_s)
    _need_columns(strata, _STRATA_COLUMNS, where_t)

    rows = tuple(
        StratumRow(
            site_id=str(r["site_id"]), year=int(r["year"]), stratum=str(r["stratum"]),
            pixels=int(r["pixels"]), map_area_ha=float(r["map_area_ha"]),
            n_sampled=int(r["n_sampled"]), pixel_size_m=float(r["pixel_size_m"]),
            seed=int(r["seed"]),
        )
        for r in strata.to_dict("records")
    )  # fmt: skip
    classes = tuple(dict.fromkeys(r.stratum for r in rows))
    if not classes:
        raise SampleFileError(f"{where_t}: no rows; write the file with sitewatch sample")
    allowed = {c.lower(): c for c in classes}
    allowed_text = ", ".join(classes)
    bad_labels: list[str] = []
    points = []
    for rec in samples.to_dict("records"):
        sid = int(rec["sample_id"])
        stratum = _text(rec["stratum"])
        if stratum not in classes:
            raise SampleFileError(
                f"{where_s}, sample_id {sid}: field stratum is {rec['stratum']!r}; allowed "
                f"{allowed_text} (stratum is the map class: do not edit it)"
            )
        raw = _text(rec["label"])
        label = None if raw is None else allowed.get(raw.lower())
        if raw is not None and label is None:
            bad_labels.append(f"sample_id {sid}: {rec['label']!r}")
        points.append(
            SamplePoint(
                sample_id=sid, site_id=str(rec["site_id"]), year=int(rec["year"]),
                stratum=stratum, pixel_size_m=float(rec["pixel_size_m"]), x=float(rec["x"]),
                y=float(rec["y"]), crs=str(rec["crs"]), lon=math.nan, lat=math.nan,
                label=label, note=_text(rec["note"]),
            )
        )  # fmt: skip
    if bad_labels:
        shown = "; ".join(bad_labels[:10]) + (" ..." if len(bad_labels) > 10 else "")
        raise SampleFileError(
            f"{where_s}: field label has {len(bad_labels)} value(s) that are not a class: "
            f"{shown}; allowed {allowed_text}, or empty for not labelled yet"
        )
    ids = [q.sample_id for q in points]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise SampleFileError(f"{where_s}: sample_id {repeated[:10]} appear more than once")
    known = {(r.site_id, r.year) for r in rows}
    orphans = sorted({(q.site_id, q.year) for q in points} - known)
    if orphans:
        raise SampleFileError(
            f"{where_s}: site-years {orphans} have points but no rows in layer {STRATA_LAYER}"
        )
    return LabelledSamples(source, classes, tuple(points), rows)


@dataclass(frozen=True)
class AreaEstimateRow:
    """Sample-based estimate of one class of one site-year, in ha (Olofsson et al. 2014).

    ``class_name``: a class of the file (:data:`SAMPLE_CLASSES` for ``sitewatch sample``), or
    ``footprint`` (coal + footprint_not_coal, the footprint of ``trends.csv``; no accuracies). ``map_area_ha``: the
    class's mapped area; ``area_ha`` the estimate with 95% half-width ``area_pm_ha``, interval
    ``area_low_ha``..``area_high_ha`` (clipped to 0..the site's area) and standard error.
    Accuracies are proportions with their 95% half-widths (``*_pm``); NaN where the sample
    cannot estimate them. ``n_sampled``/``n_labelled``/``n_unlabelled`` count the points of the
    class's stratum (the sum of coal and footprint_not_coal for ``footprint``).
    """

    site_id: str
    year: int
    class_name: str
    map_area_ha: float
    area_ha: float
    area_pm_ha: float
    area_low_ha: float
    area_high_ha: float
    area_se_ha: float
    users_accuracy: float
    users_pm: float
    producers_accuracy: float
    producers_pm: float
    overall_accuracy: float
    overall_pm: float
    n_sampled: int
    n_labelled: int
    n_unlabelled: int


#: CSV columns of :func:`write_area_estimates` (``class`` is ``AreaEstimateRow.class_name``).
AREA_ESTIMATE_COLUMNS: tuple[str, ...] = (
    "site_id", "year", "class", "map_area_ha", "area_ha", "area_pm_ha", "area_low_ha",
    "area_high_ha", "area_se_ha", "users_accuracy", "users_pm", "producers_accuracy",
    "producers_pm", "overall_accuracy", "overall_pm", "n_sampled", "n_labelled", "n_unlabelled",
)  # fmt: skip


def estimate_areas(
    path: str | os.PathLike[str], *, skip_unlabelled: bool = False
) -> list[AreaEstimateRow]:
    """Area estimates per site, year and class from a labelled sample file.

    A site-year with no label at all is an ``InsufficientDataError`` listing every such
    site-year (with ``skip_unlabelled`` it is left out instead); so is a stratum with mapped
    area but fewer than 2 labelled points. Unlabelled points are left out and counted: the
    estimate assumes they are missing at random, so label every point when you can.
    """
    return estimates_from_samples(read_labelled_samples(path), skip_unlabelled=skip_unlabelled)


def estimates_from_samples(
    samples: LabelledSamples, *, skip_unlabelled: bool = False
) -> list[AreaEstimateRow]:
    """:func:`estimate_areas` on samples already read."""
    by_key: dict[tuple[str, int], list[SamplePoint]] = {}
    for q in samples.points:
        by_key.setdefault((q.site_id, q.year), []).append(q)
    strata: dict[tuple[str, int], dict[str, StratumRow]] = {}
    for r in samples.strata:
        strata.setdefault((r.site_id, r.year), {})[r.stratum] = r
    keys = sorted(strata)
    unlabelled = [k for k in keys if not any(q.label for q in by_key.get(k, []))]
    if unlabelled and not skip_unlabelled:
        names = ", ".join(f"{s} {y}" for s, y in unlabelled)
        raise InsufficientDataError(
            f"{samples.path}: no point is labelled for {names}; label them in QGIS (field "
            "label), or draw samples only for the site-years you will label "
            "(sitewatch sample --sites/--years)"
        )
    rows: list[AreaEstimateRow] = []
    for key in keys:
        if key in unlabelled:
            logger.info("%s %s: no labelled point; left out", *key)
            continue
        rows.extend(
            _site_year_estimates(
                samples.path, samples.classes, key, by_key.get(key, []), strata[key]
            )
        )
    return rows


def _site_year_estimates(
    path: Path,
    classes: tuple[str, ...],
    key: tuple[str, int],
    points: list[SamplePoint],
    strata: Mapping[str, StratumRow],
) -> list[AreaEstimateRow]:
    site_id, year = key
    missing = [c for c in classes if c not in strata]
    if missing:
        raise SampleFileError(
            f"{path}, layer {STRATA_LAYER}: {site_id} {year} has no row for strata {missing}"
        )
    k = len(classes)
    index = {c: i for i, c in enumerate(classes)}
    labelled = [(index[q.stratum], index[q.label]) for q in points if q.label is not None]
    counts = accuracy.tabulate_sample([h for h, _ in labelled], [j for _, j in labelled], k, k)
    pixels = np.array([strata[c].pixels for c in classes], dtype=np.int64)
    n_labelled = counts.sum(axis=1)
    short = [
        f"{c} ({int(n_labelled[i])} labelled)"
        for i, c in enumerate(classes)
        if pixels[i] > 0 and n_labelled[i] < 2
    ]
    if short:
        raise InsufficientDataError(
            f"{path}: {site_id} {year}: strata {', '.join(short)} need at least 2 labelled "
            "points each (the variances divide by n - 1); label more points of these strata"
        )
    sizes = {strata[c].pixel_size_m for c in classes}
    if len(sizes) != 1:
        raise SampleFileError(
            f"{path}, layer {STRATA_LAYER}: {site_id} {year} has pixel sizes {sorted(sizes)}"
        )
    pixel_ha = sizes.pop() ** 2 / 10_000.0
    est = accuracy.area_estimate(counts, pixels, pixel_ha)
    # Strata are the map classes (square counts): area_estimate gives the accuracies too.
    assert est.users is not None
    assert est.users_ci is not None
    assert est.producers is not None
    assert est.producers_ci is not None
    assert est.overall is not None
    assert est.overall_ci is not None
    total_ha = float(pixels.sum()) * pixel_ha
    n_sampled = np.bincount([index[q.stratum] for q in points], minlength=k)

    out = []
    for i, name in enumerate(classes):
        accuracies = (est.users[i], est.users_ci[i], est.producers[i], est.producers_ci[i],
                      est.overall, est.overall_ci)  # fmt: skip
        out.append(
            _estimate_row(
                site_id, year, name, est.stratum_area_ha[i], est.area_ha[i], est.area_ci_ha[i],
                est.proportions_se[i] * total_ha, total_ha, accuracies, int(n_sampled[i]),
                int(n_labelled[i]),
            )
        )  # fmt: skip
    if classes == SAMPLE_CLASSES:
        # Footprint = coal + footprint_not_coal: the same estimator on merged reference
        # columns, so that its standard error carries the covariance of the two classes.
        merged = np.column_stack([counts[:, 0] + counts[:, 1], counts[:, 2]])
        both = accuracy.area_estimate(merged, pixels, pixel_ha)
        out.append(
            _estimate_row(
                site_id, year, FOOTPRINT_CLASS, est.stratum_area_ha[0] + est.stratum_area_ha[1],
                both.area_ha[0], both.area_ci_ha[0], both.proportions_se[0] * total_ha,
                total_ha, (math.nan,) * 6, int(n_sampled[:2].sum()), int(n_labelled[:2].sum()),
            )
        )  # fmt: skip
    return out


def _estimate_row(
    site_id: str, year: int, name: str, mapped: float, area: float, pm: float, se: float,
    total_ha: float, accuracies: tuple[float, ...], n_sampled: int, n_labelled: int,
) -> AreaEstimateRow:  # fmt: skip
    users, users_pm, producers, producers_pm, overall, overall_pm = accuracies
    return AreaEstimateRow(
        site_id=site_id, year=year, class_name=name, map_area_ha=mapped, area_ha=area,
        area_pm_ha=pm, area_low_ha=max(0.0, area - pm), area_high_ha=min(total_ha, area + pm),
        area_se_ha=se, users_accuracy=users, users_pm=users_pm, producers_accuracy=producers,
        producers_pm=producers_pm, overall_accuracy=overall, overall_pm=overall_pm,
        n_sampled=n_sampled, n_labelled=n_labelled, n_unlabelled=n_sampled - n_labelled,
    )  # fmt: skip


def _row_dict(row: AreaEstimateRow) -> dict[str, Any]:
    values = asdict(row)
    values["class"] = values.pop("class_name")
    return {c: values[c] for c in AREA_ESTIMATE_COLUMNS}


#: Decimals in the CSV: hectares to 4 places as in trends.csv, accuracies to 5.
_DIGITS = {c: 5 for c in AREA_ESTIMATE_COLUMNS if "accuracy" in c or c.endswith("_pm")}


def write_area_estimates(rows: Sequence[AreaEstimateRow], path: str | os.PathLike[str]) -> Path:
    """Write ``rows`` as CSV (columns :data:`AREA_ESTIMATE_COLUMNS`, byte-stable); return it."""
    return write_csv(path, [_row_dict(r) for r in rows], AREA_ESTIMATE_COLUMNS, _DIGITS)


def area_estimates_json(rows: Sequence[AreaEstimateRow]) -> str:
    """``rows`` as a JSON list of objects (NaN as null), keys :data:`AREA_ESTIMATE_COLUMNS`."""
    plain = [
        {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in _row_dict(r).items()
        }
        for r in rows
    ]
    return json.dumps(plain, indent=2) + "\n"


def format_area_estimates(rows: Sequence[AreaEstimateRow]) -> str:
    """A table for the terminal: per site-year, each class's map and estimated area with its
    95% interval, user's and producer's accuracy, and the labelling progress."""

    def pct(value: float, pm: float) -> str:
        return "" if math.isnan(value) else f"{100 * value:5.1f} +/- {100 * pm:4.1f}"

    out = io.StringIO()
    current: tuple[str, int] | None = None
    for r in rows:
        if (r.site_id, r.year) != current:
            current = (r.site_id, r.year)
            labelled = sum(
                x.n_labelled
                for x in rows
                if (x.site_id, x.year) == current and x.class_name != FOOTPRINT_CLASS
            )
            unlabelled = sum(
                x.n_unlabelled
                for x in rows
                if (x.site_id, x.year) == current and x.class_name != FOOTPRINT_CLASS
            )
            out.write(
                f"\n{r.site_id} {r.year}: {labelled} points labelled, {unlabelled} not yet; "
                f"overall accuracy {pct(r.overall_accuracy, r.overall_pm)} %\n"
            )  # fmt: skip
            out.write(
                f"  {'class':<20}{'map ha':>10}{'estimate ha':>13}{'95% interval ha':>22}"
                f"{'user %':>17}{'producer %':>17}\n"
            )
        interval = f"{r.area_low_ha:.2f}..{r.area_high_ha:.2f}"
        out.write(
            f"  {r.class_name:<20}{r.map_area_ha:>10.2f}{r.area_ha:>13.2f}{interval:>22}"
            f"{pct(r.users_accuracy, r.users_pm):>17}"
            f"{pct(r.producers_accuracy, r.producers_pm):>17}\n"
        )
    return out.getvalue().lstrip("\n")


def sample_based_areas(
    path: str | os.PathLike[str],
) -> dict[tuple[str, int, str], tuple[float, float, float]]:
    """``{(site_id, year, class): (estimate_ha, low_ha, high_ha)}`` from a labelled sample file,
    for the trend tables: class ``coal`` and ``footprint`` (coal included, as ``trends.csv``
    counts it) and the other :data:`SAMPLE_CLASSES`. Site-years without labels are left out;
    a partly labelled one without 2 labelled points per stratum raises as in
    :func:`estimate_areas`."""
    return {
        (r.site_id, r.year, r.class_name): (r.area_ha, r.area_low_ha, r.area_high_ha)
        for r in estimate_areas(path, skip_unlabelled=True)
    }
