"""Local rasters given on the command line: one multi-band file or a folder of band files.

A folder holds single-band files named by band id, as Sentinel-2 is delivered: ``B02.tif`` or
``T51SUH_20230915_B02.jp2``; bands may differ in resolution. Band ids are Sentinel-2 ids
(``B02``...) or the canonical names of ``sensors.BANDS`` (``blue``...).

Every file is opened once when located, so a junk, empty or unreadable file is refused by name
before any pixel is read. ``compare_grid`` chooses the grid both dates are read onto: BEFORE's
finest band grid when BEFORE is projected, else a UTM grid in metres at BEFORE's native ground
resolution.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import reproject, transform_bounds

from pipeline.errors import InputRasterError, LimitError
from pipeline.grid import Grid, utm_crs_for
from pipeline.sources.read import read_asset
from pipeline.sources.sensors import BANDS, S2_BAND_IDS

# Sentinel-2 L2A band ids (B10, cirrus, exists only in L1C and is not used).
_BAND_FILE = re.compile(r"(?:^|[_\-.])(B0[1-9]|B1[12]|B8A)\.(tif|tiff|jp2)$", re.IGNORECASE)
_SCL_FILE = re.compile(r"(?:^|[_\-.])SCL\.(tif|tiff|jp2)$", re.IGNORECASE)

# Ground resolutions a geographic input's pixel snaps to when within 20 % (Sentinel-2, Landsat).
STANDARD_RESOLUTIONS_M: tuple[float, ...] = (10.0, 20.0, 30.0, 60.0)
# Two 6-band float32 images plus the change stage's temporaries take ~150 bytes per pixel: a
# full Sentinel-2 tile at 10 m (120.6 Mpx, ~18 GB) is the largest grid compare accepts.
MAX_GRID_PIXELS = 125_000_000


@dataclass(frozen=True)
class BandSource:
    """Where one band lives: a file and the 1-based band index in it."""

    path: Path
    index: int


@dataclass(frozen=True)
class RasterInfo:
    """What compare needs to know of one raster file, read from its header."""

    path: Path
    crs: CRS | None
    transform: Affine
    width: int
    height: int
    count: int
    nodata: float | None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the raster's CRS (north-up rasters)."""
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def crs_name(self) -> str:
        return "none" if self.crs is None else self.crs.to_string()


@dataclass(frozen=True)
class GridChoice:
    """The grid both dates are read onto and, in words, why that one."""

    grid: Grid
    chosen: str


def raster_info(path: Path) -> RasterInfo:
    """The header of ``path``; InputRasterError naming the file when it is not a readable raster
    (junk, empty, a folder, no permission)."""
    if path.is_dir():
        raise InputRasterError(f"{path}: not a readable raster (it is a folder)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                info = RasterInfo(
                    path, src.crs, src.transform, src.width, src.height, src.count, src.nodata
                )
    except (RasterioError, OSError) as exc:
        raise InputRasterError(f"{path}: not a readable raster ({exc})") from None
    if info.count < 1 or info.width < 1 or info.height < 1:
        raise InputRasterError(f"{path}: not a readable raster (no pixels)")
    return info


def require_georeference(info: RasterInfo, what: str = "") -> None:
    """Refuse a raster without a CRS and geotransform, or a rotated one."""
    label = f"{info.path}{what}"
    if info.crs is None or info.transform == Affine.identity():
        raise InputRasterError(
            f"{label}: no georeference (coordinate reference system and geotransform); "
            "it cannot be aligned: assign them, e.g. with gdal_edit.py -a_srs and -a_ullr"
        )
    if info.transform.b != 0 or info.transform.d != 0:
        raise InputRasterError(
            f"{label}: rotated rasters are not supported; warp it north-up first (gdalwarp)"
        )


def canonical_band(name: str) -> str:
    """``B02`` or ``blue`` -> ``blue``; raises InputRasterError for unknown ids."""
    key = name.strip()
    if key.upper() in S2_BAND_IDS:
        return S2_BAND_IDS[key.upper()]
    if key.lower() in S2_BAND_IDS.values():
        return key.lower()
    allowed = ", ".join([*S2_BAND_IDS, *BANDS])
    raise InputRasterError(f"band id {name!r} unknown; allowed: {allowed}")


def locate_scl(path: Path) -> Path | None:
    """The scene classification file (``SCL.tif`` or ``..._SCL.tif``) of a band folder, if any.

    It must be a readable, georeferenced raster; it is read onto the compare grid by its own
    georeference, so its resolution and extent may differ from the bands'."""
    if not path.is_dir():
        return None
    found = sorted(f for f in path.iterdir() if _SCL_FILE.search(f.name))
    if len(found) > 1:
        raise InputRasterError(f"{path}: several SCL files ({[f.name for f in found]}); keep one")
    if not found:
        return None
    info = raster_info(found[0])
    require_georeference(info, " (scene classification)")
    return found[0]


def locate_bands(path: Path, band_order: Sequence[str] | None = None) -> dict[str, BandSource]:
    """Map canonical band names to files/bands for a multi-band raster or a band folder; every
    file used is checked to be a readable raster."""
    if not path.exists():
        raise InputRasterError(f"{path}: no such file or folder")
    if path.is_dir():
        found: dict[str, BandSource] = {}
        for f in sorted(path.iterdir()):
            m = _BAND_FILE.search(f.name)
            if m:
                name = canonical_band(m.group(1))
                if name in found:
                    raise InputRasterError(
                        f"{path}: two files for band {m.group(1).upper()}: "
                        f"{found[name].path.name} and {f.name}; keep one"
                    )
                found[name] = BandSource(f, 1)
        missing = [b for b in BANDS if b not in found]
        if missing:
            raise InputRasterError(
                f"{path}: band files for {missing} not found (need files named like B02.tif or "
                f"..._B02.tif for {', '.join(BANDS)}); found {sorted(found) or 'none'}"
            )
        for name in BANDS:
            raster_info(found[name].path)
        return found
    count = raster_info(path).count
    if band_order is None:
        raise InputRasterError(
            f"{path}: a multi-band raster needs --bands, its band order, e.g. "
            "--bands B02,B03,B04,B08,B11,B12"
        )
    names = [canonical_band(b) for b in band_order]
    if len(names) != count:
        raise InputRasterError(
            f"{path}: --bands lists {len(names)} bands but the raster has {count}"
        )
    located = {n: BandSource(path, i + 1) for i, n in enumerate(names)}
    missing = [b for b in BANDS if b not in located]
    if missing:
        raise InputRasterError(f"{path}: --bands lacks {missing}; needed: {', '.join(BANDS)}")
    return located


def band_infos(bands: Mapping[str, BandSource]) -> list[RasterInfo]:
    """The headers of the files holding the ``BANDS``, each georeferenced and north-up."""
    infos: dict[Path, RasterInfo] = {}
    for name in BANDS:
        p = bands[name].path
        if p not in infos:
            infos[p] = raster_info(p)
            require_georeference(infos[p])
    return list(infos.values())


def input_crs(bands: Mapping[str, BandSource]) -> str:
    """The CRS of a band set (several joined by ``+`` when its files differ)."""
    return "+".join(sorted({i.crs_name for i in band_infos(bands)}))


def footprint(bands: Mapping[str, BandSource], crs: str) -> tuple[float, float, float, float]:
    """The union of the band files' extents, in ``crs``."""
    boxes = [transform_bounds(i.crs, crs, *i.bounds, densify_pts=21) for i in band_infos(bands)]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def ground_resolution(native_m: float) -> float:
    """A geographic pixel's size in metres, rounded: to 10/20/30/60 m when within 20 % of one
    (Sentinel-2 and Landsat delivered in degrees), else to 1 m (2 significant digits below)."""
    near = [r for r in STANDARD_RESOLUTIONS_M if abs(native_m - r) <= 0.2 * r]
    if near:
        return min(near, key=lambda r: abs(native_m - r) / r)
    if native_m >= 1.0:
        return float(round(native_m))
    return float(f"{native_m:.2g}")


def _utm_grid(info: RasterInfo) -> tuple[Grid, str]:
    """A UTM grid in metres over a geographic raster, at its native ground resolution measured
    at its centre."""
    assert info.crs is not None
    left, bottom, right, top = info.bounds
    lon, lat = (left + right) / 2, (bottom + top) / 2
    try:
        utm = utm_crs_for(lon, lat)
    except ValueError:
        raise InputRasterError(
            f"{info.path}: its centre ({lon:.4f}, {lat:.4f}) is outside the UTM range "
            "(lon -180..180, lat -80..84); reproject it to a projected CRS in metres first "
            "(e.g. a polar stereographic one, with gdalwarp -t_srs)"
        ) from None
    geod = ProjCRS.from_user_input(info.crs.to_wkt()).get_geod()
    assert geod is not None
    dx_deg, dy_deg = abs(info.transform.a), abs(info.transform.e)
    dx = geod.inv(lon - dx_deg / 2, lat, lon + dx_deg / 2, lat)[2]
    dy = geod.inv(lon, lat - dy_deg / 2, lon, lat + dy_deg / 2)[2]
    native = math.sqrt(dx * dy)
    res = ground_resolution(native)
    bounds = transform_bounds(info.crs, utm, *info.bounds, densify_pts=21)
    grid = Grid.from_bounds(utm, bounds, res, snap=res)
    chosen = (
        f"UTM zone of BEFORE's centre at BEFORE's native ground resolution: BEFORE is in "
        f"{info.crs_name} (degrees), {dx_deg:.6g} x {dy_deg:.6g} deg pixels = {dx:.1f} x "
        f"{dy:.1f} m at latitude {lat:.3f}, rounded to {res:g} m; both inputs reprojected"
    )
    return grid, chosen


def _finest(bands: Mapping[str, BandSource]) -> RasterInfo:
    best: RasterInfo | None = None
    for info in band_infos(bands):
        if best is None or abs(info.transform.a) < abs(best.transform.a):
            best = info
    assert best is not None
    return best


def native_grid(bands: Mapping[str, BandSource]) -> Grid:
    """The grid of a band set's highest-resolution band, in its own CRS (degrees or metres)."""
    best = _finest(bands)
    return Grid(best.crs_name, best.transform, best.width, best.height)


def band_grids(bands: Mapping[str, BandSource]) -> dict[str, Grid]:
    """Each of the ``BANDS``' own grid, in its own CRS."""
    infos = {i.path: i for i in band_infos(bands)}
    out = {}
    for name in BANDS:
        i = infos[bands[name].path]
        out[name] = Grid(i.crs_name, i.transform, i.width, i.height)
    return out


def compare_grid(
    bands: Mapping[str, BandSource], other: Mapping[str, BandSource] | None = None
) -> GridChoice:
    """The grid compare reads both dates onto: the grid of BEFORE's highest-resolution band when
    BEFORE is projected; when it is geographic, the UTM grid of its centre at its native ground
    resolution (on ``other``'s pixel lattice when that is in the same UTM CRS at the same
    resolution). Refuses rasters without georeference, rotated ones and grids over
    ``MAX_GRID_PIXELS``."""
    best = _finest(bands)
    assert best.crs is not None
    if best.crs.is_geographic:
        grid, chosen = _utm_grid(best)
        if other is not None:
            o = native_grid(other)
            if (
                CRS.from_user_input(o.crs) == CRS.from_user_input(grid.crs)
                and math.isclose(o.resolution, grid.resolution, rel_tol=1e-9)
                and o.transform.e == -o.transform.a
            ):
                origin = (o.transform.c, o.transform.f)
                grid = Grid.from_bounds(
                    grid.crs, grid.bounds, grid.resolution, snap=grid.resolution, origin=origin
                )
                chosen += ", the grid on AFTER's pixel lattice"
    elif best.crs.is_projected:
        if best.transform.e > 0:
            raise InputRasterError(f"{best.path}: south-up rasters are not supported")
        grid = Grid(best.crs.to_string(), best.transform, best.width, best.height)
        chosen = "BEFORE's finest band grid"
    else:
        raise InputRasterError(
            f"{best.path}: CRS {best.crs_name} is neither projected nor geographic; "
            "reproject it to a UTM zone first, e.g. with gdalwarp -t_srs EPSG:326xx"
        )
    pixels = grid.width * grid.height
    if pixels > MAX_GRID_PIXELS:
        raise LimitError(
            f"{best.path}: the compare grid would be {grid.width} x {grid.height} = "
            f"{pixels:,} pixels at {grid.resolution:g} m, over the limit of "
            f"{MAX_GRID_PIXELS:,} (about 150 bytes per pixel in memory); crop BEFORE "
            "to the area of interest (gdal_translate -projwin) or coarsen it"
        )
    return GridChoice(grid, chosen)


def via_grid(native: Grid, target: Grid) -> Grid | None:
    """``native``'s pixel lattice over ``target``'s extent: the detour a date already on
    ``target`` takes so that it is resampled like the other date, which is reprojected. None when
    they do not meet or the detour would exceed 4 times ``target``'s pixels (a much finer
    other date is averaged onto ``target`` anyway)."""
    t = native.transform
    left, bottom, right, top = transform_bounds(target.crs, native.crs, *target.bounds, 21)
    n_left, n_bottom, n_right, n_top = native.bounds
    left, right = max(left, n_left), min(right, n_right)
    bottom, top = max(bottom, n_bottom), min(top, n_top)
    if left >= right or bottom >= top:
        return None
    dx, dy = t.a, -t.e
    c0 = math.floor((left - t.c) / dx) - 1
    c1 = math.ceil((right - t.c) / dx) + 1
    r0 = math.floor((t.f - top) / dy) - 1
    r1 = math.ceil((t.f - bottom) / dy) + 1
    width, height = c1 - c0, r1 - r0
    if width * height > 4 * target.width * target.height:
        return None
    transform = Affine(dx, 0.0, t.c + c0 * dx, 0.0, -dy, t.f - r0 * dy)
    return Grid(native.crs, transform, width, height)


def finest_grid(bands: Mapping[str, BandSource]) -> Grid:
    """The grid compare reads onto (see ``compare_grid``)."""
    return compare_grid(bands).grid


def read_bands(
    bands: Mapping[str, BandSource],
    grid: Grid,
    scale: float = 1.0,
    offset: float = 0.0,
    via: Mapping[str, Grid | None] | None = None,
) -> NDArray[np.float32]:
    """The ``BANDS`` of a band set on ``grid`` (bilinear), as ``DN * scale + offset``; NaN outside
    the data, at its nodata value or where scaling overflows. A band with a grid in ``via`` is
    first read onto that grid and then warped onto ``grid``, both bilinear."""
    out = np.full((len(BANDS), *grid.shape), np.nan, np.float32)
    for i, name in enumerate(BANDS):
        b = bands[name]
        detour = None if via is None else via.get(name)
        try:
            if detour is None:
                data = read_asset(b.path, grid, Resampling.bilinear, band=b.index)
            else:
                raw = read_asset(b.path, detour, Resampling.bilinear, band=b.index)
                data = _warp(raw, detour, grid)
        except (RasterioError, OSError) as exc:
            raise InputRasterError(
                f"{b.path}: not a readable raster (reading band {name} failed: {exc})"
            ) from None
        with np.errstate(over="ignore", invalid="ignore"):
            out[i] = data * scale + offset
    out[~np.isfinite(out)] = np.nan
    return out


def _warp(data: NDArray[np.float64], src: Grid, dst: Grid) -> NDArray[np.float64]:
    """An array on ``src`` onto ``dst`` by bilinear resampling; NaN is no data."""
    out = np.full(dst.shape, np.nan, np.float64)
    reproject(
        data,
        out,
        src_transform=src.transform,
        src_crs=src.crs,
        src_nodata=np.nan,
        dst_transform=dst.transform,
        dst_crs=dst.crs,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    return out


def read_scl(path: Path, grid: Grid) -> NDArray[np.float64]:
    """An SCL file on ``grid`` by nearest neighbour, NaN outside it."""
    try:
        return read_asset(path, grid, Resampling.nearest)
    except (RasterioError, OSError) as exc:
        raise InputRasterError(
            f"{path}: not a readable raster (reading the scene classification failed: {exc})"
        ) from None
