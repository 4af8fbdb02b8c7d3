"""Realistic STAC archives built from the real sample scenes in ``../shared/real-data``, with a
known truth.

Everything here is deterministic (seeded numpy RNG) and offline. The rasters are Cloud-Optimized
GeoTIFFs (GDAL ``COG`` driver, deflate, 256 px internal tiles, overviews) on the source scene's own
pixel lattice, and the STAC item/collection dicts follow the layouts of the real providers, so that a
reader written against Earth Search v1 / Planetary Computer works on them unchanged.

Builders (each takes ``root``, where the files go, and ``base_href``, the prefix of asset hrefs: a
local folder path or the ``http://127.0.0.1:PORT`` URL of a test range server serving ``root``;
``href = base_href + "/" + relative path``):

* :func:`build_sentinel2_archive` - 15 dates (2019-2023, 3 per year, 1 Sep - 15 Nov) in three
  provider flavours of the same series (Earth Search v1 ``sentinel-2-l2a``, Planetary Computer
  ``sentinel-2-l2a``, Earth Search v1 ``sentinel-2-c1-l2a``) with the BOA offset (+1000 DN) in the
  data where, and only where, the per-item truth table says so.
* :func:`build_landsat_archive` - 8 dates (2018-2021, 2 per year) of Landsat 8 C2 L2.
* :func:`build_fullsize_band` - one full-size 10980 x 10980 Sentinel-2 10 m band COG (cached).
* :func:`write_static_catalog` - a self-contained static STAC catalog of given collections/items.

Documented changes (the truth):

* Sentinel-2: from 2021 on, a 6 x 6 px (100 m grid, 600 m x 600 m) rectangle of bare desert becomes a
  coal stockpile: flat dark reflectance (``S2_COAL_REFLECTANCE``, 0.040 blue .. 0.050 swir22), SCL 5.
  The rectangle is aligned to the 200 m lattice too (3 x 3 px of the 20 m-band grid).
* Landsat: from 2020 on, a 6 x 6 px (~600 m grid, 3.6 km) rectangle of forest becomes coal-dark.

Series effects (Sentinel-2): Gaussian noise sigma 0.003 reflectance on every band and date; haze
(+0.015 blue, +0.010 green) on the last 2021 date; a bright cloud block (SCL 9) over the change
rectangle on the middle 2022 date; the first 2023 date misregistered by one 100 m pixel to the east
(content at column c is the ground of column c-1; 200 m bands shifted by half a pixel, i.e. the
mean of two neighbours; SCL takes the western neighbour).

Notes on the real data that shape these archives:

* The Sentinel-2 scene (29RKH, 2020-02-19) is Saharan desert: no water and no vegetation at all
  (SCL classes 2, 5, 7, 8, 9, 10 only; NDVI <= 0.11; B08 < B04 on 62 of 1.2 M pixels, in cloud
  shadows). The crop holds bare ground and dark basalt outcrops (red ~0.17), the darkest natural
  surface; its B12 0.1 % quantile is ~1900 DN, so "dark pixels below 1000 DN" never occur in
  unshifted data here: only the coal (0.05 -> 500 DN, 1500 DN shifted) is that dark.
* Its JSON already has the Earth Search v1 asset keys and ``earthsearch:boa_offset_applied``.
* The Landsat scene (001/062, 2020-10-31) is 99.94 % cloud by its own QA_PIXEL (every valid
  pixel has the cloud bit), although the north-east shows clear forest. The archive's QA_PIXEL is
  therefore derived: fill where the real QA says fill (284 of those pixels have non-zero SR; they
  are written as SR 0 too), real cloud code 22280 where blue > 0.12, clear-land 21824 elsewhere.
  Its pixels are not square (600.079 x 600.855 m, from ``gdal_translate -outsize 5%``), its files
  are strip-organised plain GeoTIFFs (no tiles, no overviews), QA_PIXEL has no nodata tag. Forest
  red (~0.03-0.05) is as dark as coal: the Landsat change is visible in NIR/SWIR only.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from pyproj import Transformer
from rasterio.windows import Window
from shapely.geometry import Polygon, box, mapping

SEED = 20_240_917
S2_DIR = "sentinel2-l2a-29RKH-20200219"
LS_DIR = "landsat-c2-l2-LC08-001062-20201031"
LS_PRODUCT = "LC08_L2SP_001062_20201031_20201106_02_T2"

COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
EXT_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
EXT_PROJ = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
EXT_PROJ2 = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
EXT_RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
EXT_VIEW = "https://stac-extensions.github.io/view/v1.0.0/schema.json"
EXT_LANDSAT = "https://stac-extensions.github.io/landsat/v2.0.0/schema.json"

# ---------------------------------------------------------------------------------------------
# Sentinel-2 constants
# ---------------------------------------------------------------------------------------------

#: canonical band name -> (source file stem, resolution in metres of the source/assets)
S2_BANDS: dict[str, tuple[str, int]] = {
    "blue": ("B02", 100),
    "green": ("B03", 100),
    "red": ("B04", 100),
    "nir": ("B08", 100),
    "nir08": ("B8A", 200),
    "swir16": ("B11", 200),
    "swir22": ("B12", 200),
    "scl": ("SCL", 200),
}
S2_REFLECTANCE = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22")
#: asset keys per flavour, by canonical band name
S2_ASSET_KEYS: dict[str, dict[str, str]] = {
    "earthsearch": {b: b for b in S2_BANDS},
    "planetary": {b: S2_BANDS[b][0] for b in S2_BANDS},
    "earthsearch-c1": {b: b for b in S2_BANDS},
}
S2_FLAVOURS = ("earthsearch", "planetary", "earthsearch-c1")
S2_COLLECTION_IDS = {
    "earthsearch": "sentinel-2-l2a",
    "planetary": "sentinel-2-l2a",
    "earthsearch-c1": "sentinel-2-c1-l2a",
}
S2_BOA_OFFSET_DN = 1000
S2_NOISE_SIGMA = 0.003
S2_EO = {
    "blue": ("B02", 0.49, 0.098),
    "green": ("B03", 0.56, 0.045),
    "red": ("B04", 0.665, 0.038),
    "nir": ("B08", 0.842, 0.145),
    "nir08": ("B8A", 0.865, 0.033),
    "swir16": ("B11", 1.61, 0.143),
    "swir22": ("B12", 2.19, 0.242),
}
#: flat coal-like reflectance of the change rectangle (slightly rising towards the SWIR)
S2_COAL_REFLECTANCE = {
    "blue": 0.040,
    "green": 0.042,
    "red": 0.043,
    "nir": 0.045,
    "nir08": 0.046,
    "swir16": 0.048,
    "swir22": 0.050,
}
S2_CLOUD_REFLECTANCE = {
    "blue": 0.62,
    "green": 0.60,
    "red": 0.60,
    "nir": 0.62,
    "nir08": 0.62,
    "swir16": 0.45,
    "swir22": 0.35,
}
#: crop of the 1098 x 1098 (100 m) source grid: bare desert with dark basalt outcrops in the
#: north-east (the scene has no water and no vegetation, see the module notes in the report)
S2_CROP = Window(col_off=340, row_off=40, width=200, height=200)
#: change rectangle, crop pixel coordinates of the 100 m grid (even offsets: on the 200 m lattice)
S2_CHANGE = Window(col_off=60, row_off=140, width=6, height=6)
#: cloud block of the cloudy date, crop pixel coordinates of the 100 m grid
S2_CLOUD = Window(col_off=46, row_off=126, width=34, height=34)
S2_CHANGE_FIRST_YEAR = 2021
S2_YEARS = (2019, 2020, 2021, 2022, 2023)
S2_DAYS = ((9, 14), (10, 9), (11, 3))  # month, day of the three acquisitions per year
S2_HAZE = (2021, 2)  # (year, index within the year)
S2_HAZE_ADD = {"blue": 0.015, "green": 0.010}
S2_CLOUDY = (2022, 1)
S2_SHIFTED = (2023, 0)
S2_SHIFT_PX = (0, 1)  # rows, cols of the 100 m grid: content moves one pixel east
#: Earth Search v1 truth for baseline >= 04.00: (year, index) -> (flag, offset_in_data, raster offset)
S2_ES_OFFSETS: dict[tuple[int, int], tuple[bool, int, float]] = {
    (2022, 0): (True, 0, -0.1),  # flag right, raster:bands offset -0.1 wrong (earth-search #9)
    (2022, 1): (False, 1000, -0.1),  # all right
    (2022, 2): (True, 1000, 0.0),  # WRONG flag: says applied, data still shifted
    (2023, 0): (False, 1000, -0.1),  # all right
    (2023, 1): (True, 0, 0.0),  # all right
    (2023, 2): (False, 0, -0.1),  # WRONG flag: says not applied, data unshifted
}
S2_SITE_HALF_SIZE_M = 3000.0

# ---------------------------------------------------------------------------------------------
# Landsat constants
# ---------------------------------------------------------------------------------------------

#: asset key -> (file suffix, common name, center wavelength, fwhm); Earth Search v1 and PC keys
LS_SR_BANDS: dict[str, tuple[str, str, float, float]] = {
    "coastal": ("SR_B1", "coastal", 0.44, 0.02),
    "blue": ("SR_B2", "blue", 0.48, 0.06),
    "green": ("SR_B3", "green", 0.56, 0.06),
    "red": ("SR_B4", "red", 0.65, 0.04),
    "nir08": ("SR_B5", "nir08", 0.86, 0.03),
    "swir16": ("SR_B6", "swir16", 1.6, 0.08),
    "swir22": ("SR_B7", "swir22", 2.2, 0.2),
}
LS_QA_BANDS = {"qa_pixel": "QA_PIXEL", "qa_radsat": "QA_RADSAT"}
LS_SCALE = 2.75e-05
LS_OFFSET = -0.2
LS_NOISE_SIGMA = 0.003
LS_YEARS = (2018, 2019, 2020, 2021)
LS_CHANGE_FIRST_YEAR = 2020
#: change rectangle in source pixel coordinates (the full scene is kept, on its own lattice)
LS_CHANGE = Window(col_off=296, row_off=80, width=6, height=6)
LS_CLOUD = Window(col_off=284, row_off=68, width=30, height=30)
LS_CLOUDY = (2021, 0)
LS_SITE_MARGIN_PX = 8
LS_COAL_REFLECTANCE = {
    "coastal": 0.039,
    "blue": 0.040,
    "green": 0.042,
    "red": 0.043,
    "nir08": 0.046,
    "swir16": 0.048,
    "swir22": 0.050,
}
LS_CLOUD_REFLECTANCE = {
    "coastal": 0.60,
    "blue": 0.60,
    "green": 0.58,
    "red": 0.58,
    "nir08": 0.62,
    "swir16": 0.42,
    "swir22": 0.32,
}
#: real-cloud threshold for the derived QA_PIXEL (the real QA_PIXEL flags 99.94 % as cloud)
LS_REAL_CLOUD_BLUE = 0.12
# QA_PIXEL words (bit 0 fill, 1 dilated cloud, 3 cloud, 6 clear, 8-9 cloud conf, 10-11 shadow
# conf, 12-13 snow conf, 14-15 cirrus conf)
QA_FILL = 1
QA_CLEAR = (1 << 6) | (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14)  # 21824, real "clear land"
QA_CLOUD = (1 << 3) | (3 << 8) | (1 << 10) | (1 << 12) | (1 << 14)  # 22280, as in the real file
QA_CLOUD_DILATED = QA_CLOUD | (1 << 1)  # 22282
QA_DILATED = (1 << 1) | (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14)  # dilation ring, not clear

# ---------------------------------------------------------------------------------------------
# Data classes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS string (``EPSG:x``), affine transform and (rows, cols) shape."""

    crs: str
    transform: Affine
    shape: tuple[int, int]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        h, w = self.shape
        xs = (t.c, t.c + t.a * w)
        ys = (t.f, t.f + t.e * h)
        return (min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True)
class ItemTruth:
    """What one STAC item really holds (side table, never inside the item)."""

    item_id: str
    flavour: str
    collection: str
    date: dt.date
    baseline: str | None  #: ``s2:processing_baseline`` written (None for Landsat)
    boa_flag: bool | None  #: ``earthsearch:boa_offset_applied`` written, None if absent
    raster_offset: float | None  #: raster:bands offset on reflectance assets, None if absent
    offset_in_data: int  #: DN added in the data: 0 or 1000 (S2); 0 for Landsat
    flag_correct: bool  #: the item's own offset signal (flag, else baseline rule) tells the truth
    raster_offset_correct: bool | None  #: raster:bands offset agrees with the data
    cloudy: bool  #: has the synthetic cloud block
    shifted: bool  #: misregistered by ``shift_px``
    hazy: bool
    changed: bool  #: the change rectangle is coal on this date
    shift_px: tuple[int, int] = (0, 0)  #: (rows, cols) content shift, grid of the finest band


@dataclass
class S2Archive:
    root: Path
    base_href: str
    collections: dict[str, dict[str, Any]]  #: flavour -> collection dict
    items: dict[str, list[dict[str, Any]]]  #: flavour -> item dicts (date order)
    truth: dict[str, list[ItemTruth]]  #: flavour -> truth rows, same order as ``items``
    grid: Grid  #: the 100 m crop grid (blue, green, red, nir)
    grid_20m: Grid  #: the 200 m crop grid (nir08, swir16, swir22, scl)
    source_grid: Grid  #: the real scene's 100 m grid
    source_window: Window  #: crop in source 100 m pixels
    change_window: Window  #: change rectangle, crop pixels of ``grid``
    change_polygon_utm: Polygon
    change_polygon_wgs84: Polygon
    change_years: tuple[int, ...]  #: years in which the change rectangle is coal
    change_reflectance: dict[str, float]
    cloud_window: Window  #: cloud block (crop pixels of ``grid``) on the cloudy date
    site_polygon_utm: Polygon
    site_polygon_wgs84: Polygon  #: ~6 km box around the change, well inside the crop
    asset_keys: dict[str, dict[str, str]] = field(default_factory=lambda: dict(S2_ASSET_KEYS))
    build_seconds: float = 0.0

    def truth_by_id(self, item_id: str) -> ItemTruth:
        for rows in self.truth.values():
            for row in rows:
                if row.item_id == item_id:
                    return row
        raise KeyError(item_id)

    def asset_path(self, item: dict[str, Any], key: str) -> Path:
        """Local path of an asset (whatever ``base_href`` was)."""
        return self.root / _relative(item["assets"][key]["href"], self.base_href)


@dataclass
class LandsatArchive:
    root: Path
    base_href: str
    collection: dict[str, Any]
    items: list[dict[str, Any]]
    truth: list[ItemTruth]
    grid: Grid  #: the scene's own grid (~600 m, non-square pixels), kept unchanged
    change_window: Window  #: pixels of ``grid``
    change_polygon_utm: Polygon
    change_polygon_wgs84: Polygon
    change_years: tuple[int, ...]
    change_reflectance: dict[str, float]
    cloud_window: Window
    site_polygon_utm: Polygon
    site_polygon_wgs84: Polygon
    build_seconds: float = 0.0

    @property
    def collections(self) -> list[dict[str, Any]]:
        return [self.collection]

    def truth_by_id(self, item_id: str) -> ItemTruth:
        for row in self.truth:
            if row.item_id == item_id:
                return row
        raise KeyError(item_id)

    def asset_path(self, item: dict[str, Any], key: str) -> Path:
        return self.root / _relative(item["assets"][key]["href"], self.base_href)


@dataclass
class FullSizeBand:
    path: Path
    crs: str
    transform: Affine
    shape: tuple[int, int]
    block_size: tuple[int, int]  #: (rows, cols) of the internal tiles
    build_seconds: float  #: 0.0 when reused from the cache
    reused: bool

    def tile_bytes(self, window: Window) -> int:
        """Total compressed bytes of the full-resolution internal tiles intersecting ``window``."""
        return tile_bytes(self.path, window)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _relative(href: str, base_href: str) -> str:
    prefix = base_href.rstrip("/") + "/"
    if not href.startswith(prefix):
        raise ValueError(f"{href} does not start with {prefix}")
    return href[len(prefix) :]


def _href(base_href: str, rel: str) -> str:
    return base_href.rstrip("/") + "/" + rel


def _write_cog(
    path: Path,
    array: np.ndarray,
    transform: Affine,
    crs: str,
    nodata: float | None,
    *,
    blocksize: int = 256,
    overview_count: int = 2,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = array.shape
    profile: dict[str, Any] = {
        "driver": "COG",
        "width": w,
        "height": h,
        "count": 1,
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": transform,
        "compress": "DEFLATE",
        "blocksize": blocksize,
        "overview_count": overview_count,
        "overview_resampling": "nearest",
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


_CogJob = tuple[Path, np.ndarray, Affine, str, float | None]


def _write_cogs(jobs: Sequence[_CogJob]) -> None:
    """Write many small COGs on a few threads (GDAL releases the GIL while encoding)."""
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for fut in [pool.submit(_write_cog, *job) for job in jobs]:
            fut.result()


def _to_wgs84(crs: str) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def _poly_wgs84(poly: Polygon, crs: str, densify: int = 4) -> Polygon:
    tr = _to_wgs84(crs)
    coords = list(poly.exterior.coords)
    pts: list[tuple[float, float]] = []
    for (x0, y0), (x1, y1) in itertools.pairwise(coords):
        for k in range(densify):
            f = k / densify
            pts.append(tr.transform(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f))
    return Polygon(pts)


def _apply(t: Affine, col: float, row: float) -> tuple[float, float]:
    return (t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f)


def _window_polygon(transform: Affine, win: Window) -> Polygon:
    x0, y0 = _apply(transform, win.col_off, win.row_off)
    x1, y1 = _apply(transform, win.col_off + win.width, win.row_off + win.height)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _round_geom(geom: dict[str, Any], nd: int = 7) -> dict[str, Any]:
    def rnd(c: Any) -> Any:
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            return [round(float(v), nd) for v in c]
        return [rnd(v) for v in c]

    return {"type": geom["type"], "coordinates": rnd(geom["coordinates"])}


def _footprint(grid: Grid) -> tuple[dict[str, Any], list[float]]:
    poly = _poly_wgs84(box(*grid.bounds), grid.crs, densify=1)
    geom = _round_geom(mapping(poly))
    minx, miny, maxx, maxy = poly.bounds
    return geom, [round(minx, 7), round(miny, 7), round(maxx, 7), round(maxy, 7)]


def _transform_list(t: Affine) -> list[float]:
    return [t.a, t.b, t.c, t.d, t.e, t.f]


def _encode(refl: np.ndarray, scale: float, offset: float, add_dn: int = 0) -> np.ndarray:
    dn = np.rint((refl - offset) / scale) + add_dn
    return np.clip(dn, 1, 65535).astype(np.uint16)


def _iso(d: dt.date, hms: tuple[int, int, int]) -> str:
    return dt.datetime(d.year, d.month, d.day, *hms, tzinfo=dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


# ---------------------------------------------------------------------------------------------
# Sentinel-2
# ---------------------------------------------------------------------------------------------


def _s2_baseline(year: int) -> str:
    return "02.14" if year <= 2021 else ("04.00" if year == 2022 else "05.09")


def _s2_dates() -> list[tuple[int, int, dt.date]]:
    return [
        (year, k, dt.date(year, month, day))
        for year in S2_YEARS
        for k, (month, day) in enumerate(S2_DAYS)
    ]


def _s2_read_ground(src_dir: Path) -> dict[str, np.ndarray]:
    """Crop (with a one-pixel margin on every side) of every band, reflectance as float64 (SCL as
    uint8), each at its source resolution."""
    out: dict[str, np.ndarray] = {}
    for band, (stem, res) in S2_BANDS.items():
        f = res // 100
        win = Window(
            S2_CROP.col_off // f - 1,
            S2_CROP.row_off // f - 1,
            S2_CROP.width // f + 2,
            S2_CROP.height // f + 2,
        )
        with rasterio.open(src_dir / f"{stem}.tif") as src:
            a = src.read(1, window=win)
        if (a == 0).any():
            raise ValueError(f"{stem}: nodata inside the crop")
        out[band] = a if band == "scl" else a.astype(np.float64) / 10000.0
    return out


def _s2_paint_change(ground: dict[str, np.ndarray]) -> None:
    for band, (_, res) in S2_BANDS.items():
        f = res // 100
        r0 = S2_CHANGE.row_off // f + 1
        c0 = S2_CHANGE.col_off // f + 1
        h, w = S2_CHANGE.height // f, S2_CHANGE.width // f
        if band == "scl":
            ground[band][r0 : r0 + h, c0 : c0 + w] = 5
        else:
            ground[band][r0 : r0 + h, c0 : c0 + w] = S2_COAL_REFLECTANCE[band]


def _s2_sample(ground: dict[str, np.ndarray], shifted: bool) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for band, (_, res) in S2_BANDS.items():
        g = ground[band]
        if not shifted:
            out[band] = g[1:-1, 1:-1].copy()
        elif res == 100:
            out[band] = g[1:-1, 0:-2].copy()  # content of column c-1 (one 100 m pixel east)
        elif band == "scl":
            out[band] = g[1:-1, 0:-2].copy()  # the western neighbour
        else:
            out[band] = 0.5 * (g[1:-1, 0:-2] + g[1:-1, 1:-1])  # half a 200 m pixel
    return out


def build_sentinel2_archive(real_data: Path, root: Path, base_href: str) -> S2Archive:
    """Build the 15-date Sentinel-2 series in three provider flavours (see the module docstring)."""
    t_start = time.perf_counter()
    src_dir = Path(real_data) / S2_DIR
    root = Path(root)
    with rasterio.open(src_dir / "B04.tif") as src:
        src_t = src.transform
        crs = f"EPSG:{src.crs.to_epsg()}"
        source_grid = Grid(crs, src_t, (src.height, src.width))
    crop_t = src_t @ Affine.translation(S2_CROP.col_off, S2_CROP.row_off)
    grid = Grid(crs, crop_t, (int(S2_CROP.height), int(S2_CROP.width)))
    grid20 = Grid(
        crs, crop_t @ Affine.scale(2), (int(S2_CROP.height) // 2, int(S2_CROP.width) // 2)
    )

    base = _s2_read_ground(src_dir)
    changed_ground = {k: v.copy() for k, v in base.items()}
    _s2_paint_change(changed_ground)

    change_utm = _window_polygon(crop_t, S2_CHANGE)
    cx, cy = change_utm.centroid.x, change_utm.centroid.y
    site_utm = box(
        cx - S2_SITE_HALF_SIZE_M,
        cy - S2_SITE_HALF_SIZE_M,
        cx + S2_SITE_HALF_SIZE_M,
        cy + S2_SITE_HALF_SIZE_M,
    )
    geometry, bbox = _footprint(grid)

    # the reflectance series, shared by the three flavours
    series: list[tuple[int, int, dt.date, dict[str, np.ndarray], dict[str, bool]]] = []
    for n, (year, k, date) in enumerate(_s2_dates()):
        rng = np.random.default_rng([SEED, 2, n])
        changed = year >= S2_CHANGE_FIRST_YEAR
        shifted = (year, k) == S2_SHIFTED
        hazy = (year, k) == S2_HAZE
        cloudy = (year, k) == S2_CLOUDY
        data = _s2_sample(changed_ground if changed else base, shifted)
        for band in S2_REFLECTANCE:
            data[band] = data[band] + rng.normal(0.0, S2_NOISE_SIGMA, data[band].shape)
            if hazy and band in S2_HAZE_ADD:
                data[band] += S2_HAZE_ADD[band]
        if cloudy:
            for band, (_, res) in S2_BANDS.items():
                f = res // 100
                sl = (
                    slice(S2_CLOUD.row_off // f, (S2_CLOUD.row_off + S2_CLOUD.height) // f),
                    slice(S2_CLOUD.col_off // f, (S2_CLOUD.col_off + S2_CLOUD.width) // f),
                )
                if band == "scl":
                    data[band][sl] = 9
                else:
                    blk = data[band][sl]
                    data[band][sl] = S2_CLOUD_REFLECTANCE[band] + rng.normal(0, 0.01, blk.shape)
        flags = {"changed": changed, "shifted": shifted, "hazy": hazy, "cloudy": cloudy}
        series.append((year, k, date, data, flags))

    collections: dict[str, dict[str, Any]] = {}
    items: dict[str, list[dict[str, Any]]] = {}
    truth: dict[str, list[ItemTruth]] = {}
    jobs: list[_CogJob] = []
    for flavour in S2_FLAVOURS:
        coll_id = S2_COLLECTION_IDS[flavour]
        items[flavour] = []
        truth[flavour] = []
        for year, k, date, data, flags in series:
            platform = "sentinel-2a" if (year + k) % 2 == 0 else "sentinel-2b"
            baseline = "05.10" if flavour == "earthsearch-c1" else _s2_baseline(year)
            boa_flag: bool | None = None
            raster_offset: float | None
            if flavour == "earthsearch":
                if baseline < "04.00":
                    boa_flag, add, raster_offset = False, 0, 0.0
                else:
                    boa_flag, add, raster_offset = S2_ES_OFFSETS[(year, k)]
                flag_correct = boa_flag == (add == 0) if baseline >= "04.00" else True
            elif flavour == "planetary":
                add = S2_BOA_OFFSET_DN if baseline >= "04.00" else 0
                raster_offset = None
                flag_correct = True
            else:
                add, raster_offset, flag_correct = S2_BOA_OFFSET_DN, -0.1, True
            raster_correct = (
                None if raster_offset is None else math.isclose(raster_offset, -add / 10000.0)
            )
            item_id, rels = _s2_names(flavour, platform, date)
            hrefs: dict[str, str] = {}
            for band, rel in rels.items():
                f = S2_BANDS[band][1] // 100
                g = grid if f == 1 else grid20
                if band == "scl":
                    arr = data[band].astype(np.uint8)
                else:
                    arr = _encode(data[band], 0.0001, 0.0, add)
                jobs.append((root / rel, arr, g.transform, crs, 0))
                hrefs[band] = _href(base_href, rel)
            scl = data["scl"]
            cloud_cover = float(np.isin(scl, (8, 9, 10)).mean() * 100.0)
            item = _s2_item(
                flavour,
                item_id,
                coll_id,
                date,
                platform,
                baseline,
                boa_flag,
                raster_offset,
                cloud_cover,
                hrefs,
                grid,
                grid20,
                geometry,
                bbox,
            )
            items[flavour].append(item)
            truth[flavour].append(
                ItemTruth(
                    item_id=item_id,
                    flavour=flavour,
                    collection=coll_id,
                    date=date,
                    baseline=baseline,
                    boa_flag=boa_flag,
                    raster_offset=raster_offset,
                    offset_in_data=add,
                    flag_correct=flag_correct,
                    raster_offset_correct=raster_correct,
                    cloudy=flags["cloudy"],
                    shifted=flags["shifted"],
                    hazy=flags["hazy"],
                    changed=flags["changed"],
                    shift_px=S2_SHIFT_PX if flags["shifted"] else (0, 0),
                )
            )
        collections[flavour] = _s2_collection(flavour, coll_id, bbox, items[flavour])
    _write_cogs(jobs)

    return S2Archive(
        root=root,
        base_href=base_href,
        collections=collections,
        items=items,
        truth=truth,
        grid=grid,
        grid_20m=grid20,
        source_grid=source_grid,
        source_window=S2_CROP,
        change_window=S2_CHANGE,
        change_polygon_utm=change_utm,
        change_polygon_wgs84=_poly_wgs84(change_utm, crs),
        change_years=tuple(y for y in S2_YEARS if y >= S2_CHANGE_FIRST_YEAR),
        change_reflectance=dict(S2_COAL_REFLECTANCE),
        cloud_window=S2_CLOUD,
        site_polygon_utm=site_utm,
        site_polygon_wgs84=_poly_wgs84(site_utm, crs),
        build_seconds=time.perf_counter() - t_start,
    )


def _s2_names(flavour: str, platform: str, date: dt.date) -> tuple[str, dict[str, str]]:
    sat = "S2A" if platform == "sentinel-2a" else "S2B"
    ymd = date.strftime("%Y%m%d")
    stamp = f"{ymd}T112111"
    if flavour == "earthsearch":
        item_id = f"{sat}_29RKH_{ymd}_0_L2A"
        folder = f"earthsearch/sentinel-2-l2a/29/R/KH/{date.year}/{date.month}/{item_id}"
        rels = {b: f"{folder}/{S2_BANDS[b][0]}.tif" for b in S2_BANDS}
    elif flavour == "earthsearch-c1":
        item_id = f"{sat}_T29RKH_{stamp}_L2A"
        folder = f"earthsearch/sentinel-2-c1-l2a/29/R/KH/{date.year}/{date.month}/{item_id}"
        rels = {b: f"{folder}/{S2_BANDS[b][0]}.tif" for b in S2_BANDS}
    else:
        item_id = f"{sat}_MSIL2A_{stamp}_R037_T29RKH_{ymd}T150000"
        folder = f"planetary/sentinel2-l2/29/R/KH/{date:%Y/%m/%d}/{item_id}.SAFE"
        rels = {}
        for b, (stem, res) in S2_BANDS.items():
            sub = "R10m" if res == 100 else "R20m"
            rels[b] = f"{folder}/{sub}/T29RKH_{stamp}_{stem}_{10 if res == 100 else 20}m.tif"
    return item_id, rels


def _s2_item(
    flavour: str,
    item_id: str,
    coll_id: str,
    date: dt.date,
    platform: str,
    baseline: str,
    boa_flag: bool | None,
    raster_offset: float | None,
    cloud_cover: float,
    hrefs: dict[str, str],
    grid: Grid,
    grid20: Grid,
    geometry: dict[str, Any],
    bbox: list[float],
) -> dict[str, Any]:
    epsg = int(grid.crs.split(":")[1])
    props: dict[str, Any] = {
        "datetime": _iso(date, (11, 34, 25)),
        "platform": platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": round(cloud_cover, 4),
        "s2:processing_baseline": baseline,
        "s2:product_type": "S2MSI2A",
    }
    es = flavour.startswith("earthsearch")
    if flavour == "earthsearch":
        props["proj:epsg"] = epsg
        props["earthsearch:boa_offset_applied"] = boa_flag
        props["s2:mgrs_tile"] = "29RKH"
        props["mgrs:utm_zone"] = 29
        props["mgrs:latitude_band"] = "R"
        props["mgrs:grid_square"] = "KH"
        props["grid:code"] = "MGRS-29RKH"
        proj_key: tuple[str, Any] = ("proj:epsg", epsg)
        proj_ext = EXT_PROJ
    elif flavour == "earthsearch-c1":
        props["proj:code"] = f"EPSG:{epsg}"
        props["s2:mgrs_tile"] = "29RKH"
        props["mgrs:utm_zone"] = 29
        props["mgrs:latitude_band"] = "R"
        props["mgrs:grid_square"] = "KH"
        props["grid:code"] = "MGRS-29RKH"
        proj_key = ("proj:code", f"EPSG:{epsg}")
        proj_ext = EXT_PROJ2
    else:
        props["proj:epsg"] = epsg
        props["s2:mgrs_tile"] = "29RKH"
        props["sat:orbit_state"] = "descending"
        props["sat:relative_orbit"] = 37
        props["s2:product_uri"] = f"{item_id}.SAFE"
        proj_key = ("proj:epsg", epsg)
        proj_ext = EXT_PROJ
    assets: dict[str, dict[str, Any]] = {}
    for band, href in hrefs.items():
        res = S2_BANDS[band][1]
        g = grid if res == 100 else grid20
        key = S2_ASSET_KEYS[flavour][band]
        asset: dict[str, Any] = {"href": href, "type": COG_TYPE}
        if band == "scl":
            asset["title"] = "Scene classification map (SCL)"
        else:
            stem, wl, fwhm = S2_EO[band]
            asset["title"] = f"{band} ({stem})"
            asset["eo:bands"] = [
                {
                    "name": band if es else stem,
                    "common_name": band,
                    "description": f"{band} ({stem})",
                    "center_wavelength": wl,
                    "full_width_half_max": fwhm,
                }
            ]
            asset["gsd"] = res // 10  # nominal (native) gsd of the band
        asset["proj:shape"] = list(g.shape)
        asset["proj:transform"] = _transform_list(g.transform)
        if flavour == "planetary":
            b = g.bounds
            asset["proj:bbox"] = [b[0], b[1], b[2], b[3]]
        if es:
            if band == "scl":
                asset["raster:bands"] = [
                    {"nodata": 0, "data_type": "uint8", "spatial_resolution": res}
                ]
            else:
                asset["raster:bands"] = [
                    {
                        "nodata": 0,
                        "data_type": "uint16",
                        "bits_per_sample": 15,
                        "spatial_resolution": res,
                        "scale": 0.0001,
                        "offset": raster_offset,
                    }
                ]
        asset["roles"] = ["data"] if band == "scl" or not es else ["data", "reflectance"]
        assets[key] = asset
    exts = [EXT_EO, proj_ext]
    if es:
        exts.append(EXT_RASTER)
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": exts,
        "id": item_id,
        "collection": coll_id,
        "bbox": list(bbox),
        "geometry": copy.deepcopy(geometry),
        "properties": {**props, proj_key[0]: proj_key[1]},
        "links": [],
        "assets": assets,
    }


def _s2_collection(
    flavour: str, coll_id: str, bbox: list[float], items: list[dict[str, Any]]
) -> dict[str, Any]:
    times = sorted(i["properties"]["datetime"] for i in items)
    desc = {
        "earthsearch": "Sentinel-2 L2A (Earth Search v1 layout; synthetic test series)",
        "planetary": "Sentinel-2 L2A (Planetary Computer layout; synthetic test series)",
        "earthsearch-c1": "Sentinel-2 Collection-1 L2A (Earth Search v1; synthetic test series)",
    }[flavour]
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": coll_id,
        "title": coll_id,
        "description": desc
        + ": modified Copernicus Sentinel data 2020, tile 29RKH, cropped and resampled.",
        "license": "proprietary",
        "keywords": ["sentinel", "copernicus", "esa", "msi", "l2a"],
        "extent": {
            "spatial": {"bbox": [list(bbox)]},
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "item_assets": {
            key: {"type": COG_TYPE, "roles": ["data"]} for key in S2_ASSET_KEYS[flavour].values()
        },
        "links": [],
    }


# ---------------------------------------------------------------------------------------------
# Landsat
# ---------------------------------------------------------------------------------------------


def _ls_dates() -> list[tuple[int, int, dt.date]]:
    """Two dates per year on the real 16-day cycle of path 1 row 62 (through 2020-10-31), the first
    on or after 1 Sep and the one 48 days later."""
    anchor = dt.date(2020, 10, 31)
    out: list[tuple[int, int, dt.date]] = []
    for year in LS_YEARS:
        start = dt.date(year, 9, 1)
        k = math.ceil((start - anchor).days / 16)
        first = anchor + dt.timedelta(days=16 * k)
        out.append((year, 0, first))
        out.append((year, 1, first + dt.timedelta(days=48)))
    return out


def build_landsat_archive(real_data: Path, root: Path, base_href: str) -> LandsatArchive:
    """Build the 8-date Landsat 8 C2 L2 series (collection ``landsat-c2-l2``)."""
    t_start = time.perf_counter()
    src_dir = Path(real_data) / LS_DIR
    root = Path(root)
    mtl = json.loads((src_dir / f"{LS_PRODUCT}_MTL.json").read_text())["LANDSAT_METADATA_FILE"]
    usgs = json.loads((src_dir / f"{LS_PRODUCT}_SR_stac.json").read_text())
    attrs = mtl["IMAGE_ATTRIBUTES"]
    path_s = f"{int(attrs['WRS_PATH']):03d}"
    row_s = f"{int(attrs['WRS_ROW']):03d}"
    category = mtl["PRODUCT_CONTENTS"]["COLLECTION_CATEGORY"]

    refl: dict[str, np.ndarray] = {}
    for key, (suffix, *_rest) in LS_SR_BANDS.items():
        with rasterio.open(src_dir / f"{LS_PRODUCT}_{suffix}.TIF") as src:
            dn = src.read(1)
            transform = src.transform
            crs = f"EPSG:{src.crs.to_epsg()}"
        refl[key] = dn.astype(np.float64) * LS_SCALE + LS_OFFSET
    with rasterio.open(src_dir / f"{LS_PRODUCT}_QA_PIXEL.TIF") as src:
        real_qa = src.read(1)
    with rasterio.open(src_dir / f"{LS_PRODUCT}_QA_RADSAT.TIF") as src:
        radsat = src.read(1)
    fill = real_qa == QA_FILL
    valid = ~fill
    for key in refl:
        valid &= refl[key] > LS_OFFSET  # DN 0 = nodata
    grid = Grid(crs, transform, refl["blue"].shape)
    real_cloud = valid & (refl["blue"] > LS_REAL_CLOUD_BLUE)
    base_qa = np.where(~valid, QA_FILL, np.where(real_cloud, QA_CLOUD, QA_CLEAR)).astype(np.uint16)

    change_utm = _window_polygon(transform, LS_CHANGE)
    site_win = Window(
        LS_CHANGE.col_off - LS_SITE_MARGIN_PX,
        LS_CHANGE.row_off - LS_SITE_MARGIN_PX,
        LS_CHANGE.width + 2 * LS_SITE_MARGIN_PX,
        LS_CHANGE.height + 2 * LS_SITE_MARGIN_PX,
    )
    site_utm = _window_polygon(transform, site_win)
    # the real scene footprint (valid data, rotated) from the USGS item, not the raster bounds
    geometry = _round_geom(usgs["geometry"])
    bbox = [round(float(v), 7) for v in usgs["bbox"]]
    ch = (
        slice(LS_CHANGE.row_off, LS_CHANGE.row_off + LS_CHANGE.height),
        slice(LS_CHANGE.col_off, LS_CHANGE.col_off + LS_CHANGE.width),
    )
    cl = (
        slice(LS_CLOUD.row_off, LS_CLOUD.row_off + LS_CLOUD.height),
        slice(LS_CLOUD.col_off, LS_CLOUD.col_off + LS_CLOUD.width),
    )
    cl_dil = (
        slice(LS_CLOUD.row_off - 2, LS_CLOUD.row_off + LS_CLOUD.height + 2),
        slice(LS_CLOUD.col_off - 2, LS_CLOUD.col_off + LS_CLOUD.width + 2),
    )

    items: list[dict[str, Any]] = []
    truth: list[ItemTruth] = []
    jobs: list[_CogJob] = []
    for n, (year, k, date) in enumerate(_ls_dates()):
        rng = np.random.default_rng([SEED, 8, n])
        changed = year >= LS_CHANGE_FIRST_YEAR
        cloudy = (year, k) == LS_CLOUDY
        qa = base_qa.copy()
        bands: dict[str, np.ndarray] = {}
        for key in LS_SR_BANDS:
            a = refl[key] + rng.normal(0.0, LS_NOISE_SIGMA, refl[key].shape)
            if changed:
                a[ch] = LS_COAL_REFLECTANCE[key] + rng.normal(0.0, LS_NOISE_SIGMA, (6, 6))
            if cloudy:
                a[cl] = LS_CLOUD_REFLECTANCE[key] + rng.normal(0.0, 0.01, a[cl].shape)
            dn = _encode(a, LS_SCALE, LS_OFFSET)
            dn[~valid] = 0
            bands[key] = dn
        if cloudy:
            ring = np.zeros(qa.shape, bool)
            ring[cl_dil] = True
            ring[cl] = False
            qa[ring & valid] = QA_DILATED
            qa[cl] = np.where(valid[cl], QA_CLOUD_DILATED, QA_FILL)
        proc = date + dt.timedelta(days=6)
        product = f"LC08_L2SP_{path_s}{row_s}_{date:%Y%m%d}_{proc:%Y%m%d}_02_{category}"
        item_id = f"LC08_L2SP_{path_s}{row_s}_{date:%Y%m%d}_02_{category}"
        folder = f"landsat-c2-l2/{path_s}/{row_s}/{date.year}/{item_id}"
        hrefs: dict[str, str] = {}
        for key, (suffix, *_r) in LS_SR_BANDS.items():
            rel = f"{folder}/{product}_{suffix}.TIF"
            jobs.append((root / rel, bands[key], transform, crs, 0))
            hrefs[key] = _href(base_href, rel)
        for key, suffix in LS_QA_BANDS.items():
            rel = f"{folder}/{product}_{suffix}.TIF"
            arr = qa if key == "qa_pixel" else radsat
            jobs.append((root / rel, arr, transform, crs, QA_FILL if key == "qa_pixel" else None))
            hrefs[key] = _href(base_href, rel)
        v = valid.sum()
        cloud_cover = float(((qa & (1 << 3)) > 0).sum() / v * 100.0)
        item = _ls_item(
            item_id,
            date,
            cloud_cover,
            hrefs,
            grid,
            geometry,
            bbox,
            path_s,
            row_s,
            category,
            attrs,
            usgs,
        )
        items.append(item)
        truth.append(
            ItemTruth(
                item_id=item_id,
                flavour="landsat",
                collection="landsat-c2-l2",
                date=date,
                baseline=None,
                boa_flag=None,
                raster_offset=LS_OFFSET,
                offset_in_data=0,
                flag_correct=True,
                raster_offset_correct=True,
                cloudy=cloudy,
                shifted=False,
                hazy=False,
                changed=changed,
            )
        )
    _write_cogs(jobs)
    times = sorted(i["properties"]["datetime"] for i in items)
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": "landsat-c2-l2",
        "title": "Landsat Collection 2 Level-2",
        "description": "Landsat 8 OLI/TIRS Collection 2 Level-2 surface reflectance (synthetic test"
        " series from the real scene LC08_L2SP_001062_20201031, downsampled to ~600 m).",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [list(bbox)]},
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "links": [],
    }
    return LandsatArchive(
        root=root,
        base_href=base_href,
        collection=collection,
        items=items,
        truth=truth,
        grid=grid,
        change_window=LS_CHANGE,
        change_polygon_utm=change_utm,
        change_polygon_wgs84=_poly_wgs84(change_utm, crs),
        change_years=tuple(y for y in LS_YEARS if y >= LS_CHANGE_FIRST_YEAR),
        change_reflectance=dict(LS_COAL_REFLECTANCE),
        cloud_window=LS_CLOUD,
        site_polygon_utm=site_utm,
        site_polygon_wgs84=_poly_wgs84(site_utm, crs),
        build_seconds=time.perf_counter() - t_start,
    )


def _ls_item(
    item_id: str,
    date: dt.date,
    cloud_cover: float,
    hrefs: dict[str, str],
    grid: Grid,
    geometry: dict[str, Any],
    bbox: list[float],
    path_s: str,
    row_s: str,
    category: str,
    attrs: dict[str, str],
    usgs: dict[str, Any],
) -> dict[str, Any]:
    epsg = int(grid.crs.split(":")[1])
    hh, mm, ss = attrs["SCENE_CENTER_TIME"][:8].split(":")
    b = grid.bounds
    titles = {a.split(".")[0]: v.get("title") for a, v in usgs["assets"].items()}
    assets: dict[str, dict[str, Any]] = {}
    for key, (suffix, common, wl, fwhm) in LS_SR_BANDS.items():
        assets[key] = {
            "href": hrefs[key],
            "type": COG_TYPE,
            "title": titles.get(suffix, key),
            "eo:bands": [
                {
                    "name": suffix.replace("SR_", ""),
                    "common_name": common,
                    "center_wavelength": wl,
                    "full_width_half_max": fwhm,
                }
            ],
            "gsd": 30,
            "proj:shape": list(grid.shape),
            "proj:transform": _transform_list(grid.transform),
            "raster:bands": [
                {
                    "nodata": 0,
                    "data_type": "uint16",
                    "spatial_resolution": round(grid.transform.a),
                    "scale": LS_SCALE,
                    "offset": LS_OFFSET,
                    "unit": "reflectance",
                }
            ],
            "roles": ["data", "reflectance"],
        }
    for key, suffix in LS_QA_BANDS.items():
        assets[key] = {
            "href": hrefs[key],
            "type": COG_TYPE,
            "title": titles.get(suffix, key),
            "proj:shape": list(grid.shape),
            "proj:transform": _transform_list(grid.transform),
            "raster:bands": [
                {
                    "nodata": QA_FILL if key == "qa_pixel" else None,
                    "data_type": "uint16",
                    "spatial_resolution": round(grid.transform.a),
                    "unit": "bit index",
                }
            ],
            "roles": ["cloud", "cloud-shadow", "snow-ice", "water-mask"]
            if key == "qa_pixel"
            else ["saturation"],
        }
        if key == "qa_radsat":
            del assets[key]["raster:bands"][0]["nodata"]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [EXT_EO, EXT_PROJ, EXT_RASTER, EXT_VIEW, EXT_LANDSAT],
        "id": item_id,
        "collection": "landsat-c2-l2",
        "bbox": list(bbox),
        "geometry": copy.deepcopy(geometry),
        "properties": {
            "datetime": _iso(date, (int(hh), int(mm), int(ss))),
            "platform": "landsat-8",
            "instruments": ["oli", "tirs"],
            "eo:cloud_cover": round(cloud_cover, 2),
            "view:off_nadir": 0,
            "view:sun_azimuth": float(attrs["SUN_AZIMUTH"]),
            "view:sun_elevation": float(attrs["SUN_ELEVATION"]),
            "proj:epsg": epsg,
            "proj:shape": list(grid.shape),
            "proj:transform": _transform_list(grid.transform),
            "proj:bbox": [b[0], b[1], b[2], b[3]],
            "landsat:wrs_type": attrs["WRS_TYPE"],
            "landsat:wrs_path": path_s,
            "landsat:wrs_row": row_s,
            "landsat:collection_category": category,
            "landsat:collection_number": "02",
            "landsat:correction": "L2SP",
            "landsat:scene_id": f"LC8{path_s}{row_s}{date:%Y%j}LGN00",
            "landsat:cloud_cover_land": round(cloud_cover, 2),
        },
        "links": [],
        "assets": assets,
    }


# ---------------------------------------------------------------------------------------------
# Full-size band
# ---------------------------------------------------------------------------------------------

FULL_SIZE = 10980
FULL_BLOCK = 512
FULL_VERSION = "fullsize-v1"


def _default_real_data() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "real-data"


def build_fullsize_band(
    root: Path, path_name: str = "full/B04.tif", *, real_data: Path | None = None
) -> FullSizeBand:
    """A full-size 10980 x 10980 uint16 10 m B04 COG of tile 29RKH (origin 199980, 2800020):
    the real 100 m B04 upsampled x10 (nearest) plus seeded uniform noise 0..15 DN, 512 px tiles,
    deflate, nearest overviews. Written in strips to a temporary tiled GTiff, then translated by
    the GDAL COG driver. Reused when ``root/path_name`` and its ``.done`` marker match."""
    root = Path(root)
    path = root / path_name
    done = path.with_name(path.name + ".done")
    real = Path(real_data) if real_data is not None else _default_real_data()
    src_path = real / S2_DIR / "B04.tif"
    with rasterio.open(src_path) as src:
        src_t = src.transform
        crs = f"EPSG:{src.crs.to_epsg()}"
        small = src.read(1)
    transform = Affine(10.0, 0.0, src_t.c, 0.0, -10.0, src_t.f)
    marker = {
        "version": FULL_VERSION,
        "seed": SEED,
        "shape": [FULL_SIZE, FULL_SIZE],
        "block": FULL_BLOCK,
        "transform": _transform_list(transform),
        "source_size": src_path.stat().st_size,
    }
    result = FullSizeBand(
        path=path,
        crs=crs,
        transform=transform,
        shape=(FULL_SIZE, FULL_SIZE),
        block_size=(FULL_BLOCK, FULL_BLOCK),
        build_seconds=0.0,
        reused=True,
    )
    if path.exists() and done.exists():
        try:
            if json.loads(done.read_text()).get("marker") == marker:
                return result
        except (ValueError, OSError):
            pass
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    done.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".build-") as tmp:
        tmp_tif = Path(tmp) / "strip.tif"
        profile = {
            "driver": "GTiff",
            "width": FULL_SIZE,
            "height": FULL_SIZE,
            "count": 1,
            "dtype": "uint16",
            "crs": crs,
            "transform": transform,
            "nodata": 0,
            "tiled": True,
            "blockxsize": FULL_BLOCK,
            "blockysize": FULL_BLOCK,
            "compress": "NONE",
        }
        strip = FULL_BLOCK * 2
        with rasterio.open(tmp_tif, "w", **profile) as dst:
            for n, r0 in enumerate(range(0, FULL_SIZE, strip)):
                h = min(strip, FULL_SIZE - r0)
                rows = np.arange(r0, r0 + h) // 10
                block = np.repeat(small[rows], 10, axis=1)
                rng = np.random.default_rng([SEED, 10, n])
                block = block + rng.integers(0, 16, block.shape, dtype=np.uint16)
                dst.write(block, 1, window=Window(0, r0, FULL_SIZE, h))
        out_tmp = Path(tmp) / "cog.tif"
        with rasterio.Env(GDAL_CACHEMAX=256, GDAL_NUM_THREADS="ALL_CPUS"):
            rasterio.shutil.copy(
                tmp_tif,
                out_tmp,
                driver="COG",
                compress="DEFLATE",
                blocksize=FULL_BLOCK,
                overview_resampling="nearest",
                num_threads="ALL_CPUS",
                bigtiff="IF_SAFER",
            )
        os.replace(out_tmp, path)
    seconds = time.perf_counter() - t0
    done.write_text(json.dumps({"marker": marker, "build_seconds": seconds}))
    result.build_seconds = seconds
    result.reused = False
    return result


def _blocks(path: Path, window: Window) -> Iterable[tuple[int, int]]:
    with rasterio.open(path) as ds:
        bh, bw = ds.block_shapes[0]
        h, w = ds.height, ds.width
    r0 = max(0, math.floor(window.row_off))
    c0 = max(0, math.floor(window.col_off))
    r1 = min(h, math.ceil(window.row_off + window.height))
    c1 = min(w, math.ceil(window.col_off + window.width))
    for by in range(r0 // bh, (r1 - 1) // bh + 1):
        for bx in range(c0 // bw, (c1 - 1) // bw + 1):
            yield bx, by


def tile_bytes(path: Path, window: Window) -> int:
    """Sum of the compressed sizes (``BLOCK_SIZE_x_y`` of GDAL's TIFF metadata domain, i.e. the
    TileByteCounts) of the full-resolution tiles of band 1 that intersect ``window``."""
    total = 0
    with rasterio.open(path) as ds:
        for bx, by in _blocks(path, window):
            size = ds.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=1)
            if size is None:
                raise RuntimeError(f"no BLOCK_SIZE_{bx}_{by} in {path}")
            total += int(size)
    return total


# ---------------------------------------------------------------------------------------------
# Static catalog
# ---------------------------------------------------------------------------------------------


def write_static_catalog(
    root: Path,
    collections: Sequence[dict[str, Any]],
    items: Iterable[dict[str, Any]],
    *,
    catalog_id: str = "realscenes",
) -> Path:
    """Write ``root/catalog.json -> root/<collection>/collection.json ->
    root/<collection>/items/<id>.json`` with relative links (a self-contained static catalog).
    Items are grouped by their ``collection`` field; asset hrefs are left as they are. Returns the
    path of ``catalog.json``. Collection ids must be unique within one catalog."""
    root = Path(root)
    ids = [c["id"] for c in collections]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate collection ids {ids}: write one catalog per provider")
    by_coll: dict[str, list[dict[str, Any]]] = {cid: [] for cid in ids}
    for item in items:
        cid = item.get("collection")
        if cid not in by_coll:
            raise ValueError(f"item {item.get('id')} has unknown collection {cid!r}")
        by_coll[cid].append(item)
    root.mkdir(parents=True, exist_ok=True)
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": catalog_id,
        "description": "Static catalog of synthetic series built from real scenes",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
        + [
            {"rel": "child", "href": f"./{cid}/collection.json", "type": "application/json"}
            for cid in ids
        ],
    }
    for coll in collections:
        cid = coll["id"]
        cdir = root / cid
        if cdir.exists():
            shutil.rmtree(cdir)
        (cdir / "items").mkdir(parents=True)
        c = copy.deepcopy(coll)
        c["links"] = [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ] + [
            {"rel": "item", "href": f"./items/{it['id']}.json", "type": "application/geo+json"}
            for it in by_coll[cid]
        ]
        for it in by_coll[cid]:
            i = copy.deepcopy(it)
            i["links"] = [
                {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
                {"rel": "parent", "href": "../collection.json", "type": "application/json"},
                {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            ]
            (cdir / "items" / f"{i['id']}.json").write_text(json.dumps(i, indent=1))
        (cdir / "collection.json").write_text(json.dumps(c, indent=1))
    path = root / "catalog.json"
    path.write_text(json.dumps(catalog, indent=1))
    return path
