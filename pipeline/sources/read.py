"""Windowed reads of one scene onto a site grid: the pixel I/O edge.

Each asset is opened through a ``WarpedVRT`` onto the site grid, so only the internal tiles that
cover the site are fetched (from local COGs or over ``/vsicurl/`` and ``/vsis3/`` alike), from
an overview when the grid is coarser than the data, and 20 m bands land on the 10 m grid by the
same bilinear rule everywhere (``run`` and ``compare``). Where the site grid lies on the
asset's own pixel lattice (the usual case: grids snap to it), the same arrays come from a plain
windowed read (repeated for a nearest read of coarser pixels: SCL) without the warp
(``_on_lattice``; tests/test_read_fast.py holds the two paths equal). Remote reads retry with
backoff; chips read from the network are kept in a ``ChipCache`` so that a rerun fetches nothing.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioError, WindowError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from pipeline import task_progress
from pipeline.bands import BAND_INDEX, BANDS
from pipeline.errors import LimitError, SceneReadError, SourceError
from pipeline.grid import Grid
from pipeline.masking import (
    SHADOW_GRID_M,
    SHADOW_GRID_MAX_PX,
    SHADOW_MARGIN_M,
    MaskReason,
    MaskRules,
    clear_reasons,
    match_cloud_shadows,
    reasons_from_qa_pixel,
    reasons_from_scl,
    shadow_evidence,
)
from pipeline.radiometry import BoaEvidence, Radiometry, settle_boa_offset
from pipeline.sources.base import RedactSecrets, Scene, redact, sun_angles
from pipeline.sources.chips import ChipCache, ChipMissingError
from pipeline.sources.sensors import PROFILES, SensorProfile

logger = logging.getLogger(__name__)
# GDAL's warnings, which rasterio logs from whichever thread met them, quote the signed URL they
# failed on: every record of those loggers is redacted before any handler sees it.
for _name in ("rasterio._env", "rasterio._err"):
    logging.getLogger(_name).addFilter(RedactSecrets())

# GDAL settings for cloud reads (GDAL docs, "Configuration options" and "/vsicurl/"): no
# directory listing on open, only raster extensions probed, consecutive ranges merged, HTTP/2
# multiplexing, GDAL's own retries on 429/5xx.
GDAL_ENV: Mapping[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff,.TIFF",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2TLS",  # HTTP/2 where TLS negotiates it; plain http stays 1.1
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "VSI_CACHE": "TRUE",
}


@dataclass(frozen=True)
class ReadSettings:
    """How hard reads try: attempts per asset with exponential backoff, an HTTP timeout (a
    stalled server counts as a failure), ``offline`` (chips from the cache only), and the most
    one remote asset read may fetch (``max_fetch_mb``, uncompressed blocks: a striped or
    untiled file would otherwise be downloaded whole)."""

    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 30.0
    offline: bool = False
    max_fetch_mb: float = 512.0
    # Scenes read at once (``read_scenes``): GDAL releases the GIL while it fetches and
    # decodes, so remote reads overlap their latency and local ones use the cores.
    threads: int = 4

    def gdal_env(self) -> dict[str, str]:
        env = dict(GDAL_ENV)
        env["GDAL_HTTP_TIMEOUT"] = str(max(1, round(self.timeout_s)))
        env["GDAL_HTTP_CONNECTTIMEOUT"] = str(max(1, round(min(self.timeout_s, 10.0))))
        # GDAL's own HTTP retries (429/5xx, per request) start from the same backoff as ours
        env["GDAL_HTTP_RETRY_DELAY"] = f"{self.backoff_s:g}"
        # Landsat on requester-pays S3 (Earth Search landsat-c2-l2): the user's AWS environment
        # signs; the requester pays.
        env.setdefault("AWS_REQUEST_PAYER", os.environ.get("AWS_REQUEST_PAYER", "requester"))
        return env


@dataclass(frozen=True)
class Observation:
    """One scene on the site grid: reflectance (band, y, x) with NaN for no data, and per pixel
    the ``MaskReason`` (``CLEAR`` or why not)."""

    scene_id: str
    datetime: datetime
    reflectance: NDArray[np.float32]
    reasons: NDArray[np.uint8]
    radiometry: Radiometry
    platform: str = ""
    reprojected_from: str | None = None

    @property
    def clear(self) -> NDArray[np.bool_]:
        return clear_reasons(self.reasons)

    @property
    def shaded(self) -> NDArray[np.bool_]:
        """Clear, in the shadow a cloud of the scene casts (``MaskReason.CAST_SHADOW``)."""
        return np.asarray(self.reasons == MaskReason.CAST_SHADOW)


def is_remote(href: str) -> bool:
    return href.startswith("/vsi")


def _overview_level(src: Any, grid: Grid, band: int) -> int | None:
    """The coarsest overview whose pixels are still at least as fine as the grid's (GDAL
    ``OVERVIEW_LEVEL``), or None to read full resolution."""
    if src.crs is None or CRS.from_user_input(grid.crs) != src.crs:
        return None
    native = abs(src.transform.a)
    best = None
    for level, factor in enumerate(src.overviews(band)):
        if native * factor <= grid.resolution * (1 + 1e-6):
            best = level
    return best


def fetch_estimate(src: Any, grid: Grid, band: int = 1) -> int:
    """Bytes (uncompressed) of the internal blocks of ``src`` that cover ``grid``: what reading
    the grid's window fetches at most."""
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    left, bottom, right, top = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
    try:
        window = from_bounds(left, bottom, right, top, src.transform).intersection(
            rasterio.windows.Window(0, 0, src.width, src.height)
        )
    except WindowError:  # the grid lies outside the raster: nothing to fetch
        return 0
    block_h, block_w = src.block_shapes[band - 1]
    rows = math.ceil((window.row_off + window.height) / block_h) - int(window.row_off // block_h)
    cols = math.ceil((window.col_off + window.width) / block_w) - int(window.col_off // block_w)
    item = np.dtype(src.dtypes[band - 1]).itemsize
    return int(max(rows, 0) * max(cols, 0) * block_h * block_w * item)


def read_asset(
    href: str | Path,
    grid: Grid,
    resampling: Resampling,
    band: int = 1,
    max_fetch_bytes: int | None = None,
) -> NDArray[np.float64]:
    """One band of a raster on ``grid``; pixels outside the raster or at its nodata value become
    NaN. Without a nodata value, GDAL's alpha band of the warp says where data exists. With
    ``max_fetch_bytes``, a read that would fetch more raises ``LimitError`` before fetching."""
    data = _read_asset(href, grid, resampling, band, max_fetch_bytes, np.float64)
    return cast(NDArray[np.float64], data)


def _read_asset(
    href: str | Path,
    grid: Grid,
    resampling: Resampling,
    band: int,
    max_fetch_bytes: int | None,
    dtype: type[np.float32] | type[np.float64],
) -> NDArray[np.floating[Any]]:
    """``read_asset`` in ``dtype``: float32 gives the float64 result cast to float32, without
    the float64 copy (``_as_float``)."""
    with rasterio.open(href) as src:
        level = _overview_level(src, grid, band)
        if level is None:
            if max_fetch_bytes is not None and src.crs is not None:
                need = fetch_estimate(src, grid, band)
                if need > max_fetch_bytes:
                    raise LimitError(
                        f"{redact(str(href))}: reading the site would fetch {need / 1e6:.0f} MB "
                        f"(blocks {src.block_shapes[band - 1]}), over read.max_fetch_mb "
                        f"{max_fetch_bytes / 1e6:.0f} MB; is it a tiled COG?"
                    )
            return _read_onto(src, grid, resampling, band, dtype)
    with rasterio.open(href, overview_level=level) as overview:
        return _read_onto(overview, grid, resampling, band, dtype)


# Dtypes every value of which is exact in float64: cast straight to float32 they round once, as
# they did through float64, so the float32 read equals the float64 read cast to float32.
_EXACT_IN_FLOAT64 = frozenset(
    ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float16", "float32", "float64")
)
# Integer dtypes narrow enough that a grid on the raster's own lattice reads, through GDAL's
# warp, as the source pixels for any resampling: every kernel weight is 1 or 0 up to a coordinate
# rounding of ~1e-11 px, and the result is rounded back to the integer type.
_LATTICE_DTYPES = frozenset(("int8", "uint8", "int16", "uint16"))
# On grids a few pixels wide GDAL's warp derives a scale below 1 from the padded source window
# and changes its kernel (seen up to 4 px on GDAL 3.10): such grids are warped.
_MIN_UPSAMPLED_SIDE = 16


def _read_onto(
    src: Any,
    grid: Grid,
    resampling: Resampling,
    band: int,
    dtype: type[np.float32] | type[np.float64] = np.float64,
) -> NDArray[np.floating[Any]]:
    """Band ``band`` of the open ``src`` on ``grid`` in ``dtype``, NaN where no data: through a
    ``WarpedVRT``, or, when ``grid`` lies on the raster's own lattice (``_on_lattice``), by a
    plain windowed read (same pixel size, any resampling) or a nearest upsampling of one
    (raster pixels a whole multiple of the grid's), which give what the warp gives there.

    Bilinear upsampling (20 m bands onto 10 m) stays on the warp: GDAL's weights there are 0.75
    and 0.25 only up to the rounding of its approximate transformer, which settles exact
    half-way values one way or the other (seen on the real 29RKH tile), so no other arithmetic
    reproduces it."""
    nodata = src.nodatavals[band - 1]
    lattice = _on_lattice(src, grid, band)
    if lattice is not None:
        factor, col, row = lattice
        if factor == 1:
            return _read_lattice(src, grid, band, Window(col, row, grid.width, grid.height), dtype)
        if resampling == Resampling.nearest and min(grid.width, grid.height) >= _MIN_UPSAMPLED_SIDE:
            return _read_upsampled(src, grid, band, lattice, dtype)
    with WarpedVRT(
        src,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=resampling,
        src_nodata=nodata,
        nodata=nodata,
        add_alpha=nodata is None,
        **_warp_scale(src, grid),
    ) as vrt:
        raw = vrt.read(band)
        ok = vrt.read(vrt.count) > 0 if nodata is None else _not_nodata(raw, nodata)
    return _as_float(raw, ok, dtype)


def _warp_scale(src: Any, grid: Grid) -> dict[str, Any]:
    """Warp options that make a read of a window of ``grid`` give the pixels of the whole
    grid's read there (``pipeline.chunks``): GDAL estimates the resampling scale from each
    request's extent (``XSCALE``/``YSCALE`` fix it to the ratio of pixel sizes) and, across
    CRSs, approximates the transform within ``tolerance`` pixels per request (0 is refused;
    1e-9 makes it exact)."""
    src_crs = CRS.from_user_input(src.crs) if src.crs is not None else None
    grid_crs = CRS.from_user_input(grid.crs)
    if src_crs is None or src_crs.is_geographic:
        return {}  # no honest pixel-size ratio in metres: GDAL's own estimate
    options: dict[str, Any] = {
        "XSCALE": repr(abs(src.transform.a) / abs(grid.transform.a)),
        "YSCALE": repr(abs(src.transform.e) / abs(grid.transform.e)),
    }
    if src_crs != grid_crs:
        options["tolerance"] = 1e-9
    return options


def _on_lattice(src: Any, grid: Grid, band: int) -> tuple[int, int, int] | None:
    """``(factor, col, row)`` when ``grid`` lies on the lattice of ``src``: same CRS and
    orientation, raster pixels ``factor`` (a whole number) grid pixels wide, and the grid's
    origin ``col``, ``row`` (whole numbers) grid pixels from the raster's; and the band is a
    narrow integer type (``_LATTICE_DTYPES``) whose mask is all-valid or its nodata value (no
    mask band or alpha for the warp to honour). Else None."""
    if src.dtypes[band - 1] not in _LATTICE_DTYPES:
        return None
    if src.mask_flag_enums[band - 1] not in ([MaskFlags.all_valid], [MaskFlags.nodata]):
        return None
    if src.crs is None or CRS.from_user_input(grid.crs) != src.crs:
        return None
    s, g = src.transform, grid.transform
    if s.b != 0 or s.d != 0 or g.b != 0 or g.d != 0 or g.a <= 0 or g.e >= 0:
        return None
    factor = s.a / g.a
    if not (factor.is_integer() and factor >= 1 and s.a == factor * g.a and s.e == factor * g.e):
        return None
    col, row = (g.c - s.c) / g.a, (g.f - s.f) / g.e
    if not (col.is_integer() and row.is_integer()):
        return None
    if s.c + col * g.a != g.c or s.f + row * g.e != g.f:
        return None
    return int(factor), int(col), int(row)


def _read_upsampled(
    src: Any,
    grid: Grid,
    band: int,
    lattice: tuple[int, int, int],
    dtype: type[np.float32] | type[np.float64],
) -> NDArray[np.floating[Any]]:
    """``src`` by nearest neighbour on a grid of its lattice with pixels ``factor`` times
    smaller (``lattice``: see ``_on_lattice``): grid pixel ``i`` takes raster pixel
    ``(offset + i) // factor``, the one under its centre, which lies at least half a grid pixel
    from that pixel's edges (no rounding of GDAL's coordinates moves it); NaN where that pixel
    is outside the raster or no data."""
    factor, col, row = lattice
    xs = (np.arange(grid.width, dtype=np.int64) + col) // factor
    ys = (np.arange(grid.height, dtype=np.int64) + row) // factor
    out = np.full((grid.height, grid.width), np.nan, dtype)
    x0, x1 = max(int(xs[0]), 0), min(int(xs[-1]) + 1, src.width)
    y0, y1 = max(int(ys[0]), 0), min(int(ys[-1]) + 1, src.height)
    if x0 >= x1 or y0 >= y1:  # the grid lies outside the raster
        return out
    raw = src.read(band, window=Window(x0, y0, x1 - x0, y1 - y0))
    nodata = src.nodatavals[band - 1]
    ok = np.ones(raw.shape, np.bool_) if nodata is None else _not_nodata(raw, nodata)
    pixels = _as_float(raw, ok, dtype)
    inside_x, inside_y = (xs >= x0) & (xs < x1), (ys >= y0) & (ys < y1)
    out[np.ix_(inside_y, inside_x)] = pixels[np.ix_(ys[inside_y] - y0, xs[inside_x] - x0)]
    return out


def _read_lattice(
    src: Any,
    grid: Grid,
    band: int,
    window: Window,
    dtype: type[np.float32] | type[np.float64],
) -> NDArray[np.floating[Any]]:
    """``window`` of ``src`` (a grid on its lattice, same pixel size) in ``dtype``: the part
    inside the raster read as is, NaN at the nodata value and outside the raster (only the
    blocks inside are fetched)."""
    out = np.full((grid.height, grid.width), np.nan, dtype)
    try:
        inner = window.intersection(Window(0, 0, src.width, src.height))
    except WindowError:  # the grid lies outside the raster
        return out
    if inner.width <= 0 or inner.height <= 0:
        return out
    raw = src.read(band, window=inner)
    nodata = src.nodatavals[band - 1]
    ok = np.ones(raw.shape, np.bool_) if nodata is None else _not_nodata(raw, nodata)
    y0, x0 = int(inner.row_off - window.row_off), int(inner.col_off - window.col_off)
    out[y0 : y0 + raw.shape[0], x0 : x0 + raw.shape[1]] = _as_float(raw, ok, dtype)
    return out


def _not_nodata(raw: NDArray[Any], nodata: float) -> NDArray[np.bool_]:
    """``raw.astype(np.float64) != nodata``, the test the float64 read made, without the float64
    copy where the dtype allows: a value equals ``nodata`` only if ``nodata`` is exactly
    representable in the dtype (NaN equals nothing)."""
    kind, name = raw.dtype.kind, raw.dtype.name
    if name not in _EXACT_IN_FLOAT64:
        return np.asarray(raw.astype(np.float64) != nodata)
    if math.isnan(nodata):
        return np.ones(raw.shape, np.bool_)
    if kind in "iu":
        info = np.iinfo(raw.dtype)
        if not (float(nodata).is_integer() and info.min <= nodata <= info.max):
            return np.ones(raw.shape, np.bool_)
        return np.asarray(raw != raw.dtype.type(int(nodata)))
    with np.errstate(over="ignore"):
        same = raw.dtype.type(nodata)
    if float(same) != nodata:  # not representable (or overflowed to inf): no value equals it
        return np.ones(raw.shape, np.bool_)
    return np.asarray(raw != same)


def _as_float(
    raw: NDArray[Any], ok: NDArray[np.bool_], dtype: type[np.float32] | type[np.float64]
) -> NDArray[np.floating[Any]]:
    """``np.where(ok, raw.astype(np.float64), np.nan).astype(dtype)``, with one copy instead of
    three for the dtypes that cast exactly (``_EXACT_IN_FLOAT64``)."""
    exact = raw if raw.dtype.name in _EXACT_IN_FLOAT64 else raw.astype(np.float64)
    out: NDArray[np.floating[Any]] = exact.astype(dtype)
    out[~ok] = np.nan
    return out


@contextmanager
def _gdal(settings: ReadSettings, extra: Mapping[str, str] | None = None) -> Iterator[None]:
    with rasterio.Env(**settings.gdal_env(), **(extra or {})):
        yield


def read_chip(
    href: str,
    grid: Grid,
    resampling: Resampling,
    settings: ReadSettings,
    chips: ChipCache | None = None,
    key: str | None = None,
) -> NDArray[np.float32]:
    """An asset on ``grid`` as float32 DN (NaN = no data), from the chip cache when there, else
    read with retries (and cached when remote). Raises ``ChipMissingError`` offline."""
    cache = chips if key is not None and is_remote(href) else None
    if cache is not None and key is not None:
        cached = cache.get(key)
        if cached is not None:
            return cached
        if settings.offline:
            raise ChipMissingError(key, href)
    attempts = max(1, settings.retries) if is_remote(href) else 1  # a local file will not heal
    for attempt in range(attempts):
        # After a failure GDAL's /vsicurl/ cache must not answer the retry from the failed state.
        extra = {"CPL_VSIL_CURL_NON_CACHED": href} if attempt and is_remote(href) else None
        try:
            limit = round(settings.max_fetch_mb * 1e6) if is_remote(href) else None
            with _gdal(settings, extra):
                data = _read_asset(href, grid, resampling, 1, limit, np.float32)
            break
        except (RasterioError, OSError) as exc:
            if attempt + 1 == attempts:
                raise
            delay = settings.backoff_s * 2**attempt
            logger.info(
                "read of %s failed (%s); retry %d in %.1f s",
                redact(href), redact(str(exc)), attempt + 1, delay,
            )  # fmt: skip
            time.sleep(delay)
    if cache is not None and key is not None:
        cache.put(key, data)
    return data


_ALL = slice(None)
#: The reason a scene with no pixel of data over the grid is skipped.
NO_DATA = "no data over the site grid"


@dataclass(frozen=True)
class ScenePixels:
    """One scene's assets on a grid before any decision from its pixels: DN (band, y, x),
    NaN = no data; the mask band (0 where no data); per pixel the ``MaskReason`` its mask rules
    give (clouds dilated), before pixels missing a band become ``NODATA``; the radiometry the
    metadata decide; and the scene's CRS when it was reprojected onto the grid."""

    scene: Scene
    dn: NDArray[np.float32]
    mask: NDArray[np.uint16]
    mask_reasons: NDArray[np.uint8]
    radiometry: Radiometry
    verify_offset: bool
    reprojected_from: str | None

    def has_data(self, rows: slice = _ALL, cols: slice = _ALL) -> bool:
        """Whether any band has data in ``rows`` x ``cols``."""
        return bool(np.isfinite(self.dn[:, rows, cols]).any())

    def boa_evidence(self, rows: slice = _ALL, cols: slice = _ALL) -> BoaEvidence:
        """What ``radiometry.verify_boa_offset`` judges from in ``rows`` x ``cols``."""
        return BoaEvidence.of(
            self.dn[BAND_INDEX["swir22"], rows, cols],
            self.mask[rows, cols],
            clear_reasons(self.mask_reasons[rows, cols]),
        )

    def reasons(self, rows: slice = _ALL, cols: slice = _ALL) -> NDArray[np.uint8]:
        """The ``MaskReason`` per pixel of ``rows`` x ``cols``, ``NODATA`` where a band has
        none (a copy)."""
        out = self.mask_reasons[rows, cols].copy()
        out[~np.isfinite(self.dn[:, rows, cols]).all(axis=0)] = MaskReason.NODATA
        return out

    def observation(self, radiometry: Radiometry) -> Observation:
        """The scene as an ``Observation`` with ``radiometry`` (the verified one)."""
        reflectance = radiometry.apply(self.dn)
        reasons = self.mask_reasons.copy()
        reasons[~np.isfinite(reflectance).all(axis=0)] = MaskReason.NODATA
        s = self.scene
        return Observation(
            s.id, s.datetime, reflectance, reasons, radiometry, s.platform, self.reprojected_from
        )


def read_pixels(
    scene: Scene,
    grid: Grid,
    rules: MaskRules,
    settings: ReadSettings,
    chips: ChipCache | None = None,
    site_grid: Grid | None = None,
) -> ScenePixels:
    """Read the reflectance bands, the mask (and QA_RADSAT where there) of ``scene`` onto
    ``grid`` and decode the mask; no decision from the pixels yet (``read_scene`` makes them
    for a whole grid, ``chunks`` over the chunks of one). ``site_grid`` is the grid ``grid``
    is a window of (``grid`` itself when None): the cloud shadows are matched over all of it
    (``masking.match_cloud_shadows``), so a chunk finds the shadows the whole grid does.

    Raises ``SceneReadError`` for an unknown profile, missing assets or an asset that keeps
    failing; ``SourceError`` (``ChipMissingError``) offline when a chip is not cached.
    """
    profile = PROFILES.get(scene.profile)
    if profile is None:
        raise SceneReadError(
            scene.id,
            f"collection {scene.collection!r} (profile {scene.profile!r}) has no sensor profile; "
            f"supported: {', '.join(PROFILES)}",
        )
    missing = [k for k in profile.asset_keys() if k not in scene.assets]
    if profile.saturation_asset in missing:
        missing.remove(profile.saturation_asset)  # optional: QA_RADSAT
    if missing:
        raise SceneReadError(scene.id, f"assets {missing} missing; has {sorted(scene.assets)}")
    blue = scene.assets[profile.assets[BANDS[0]]]
    radiometry = profile.radiometry(scene.properties, blue.raster_bands)

    def chip(asset_key: str, resampling: Resampling, on: Grid = grid) -> NDArray[np.float32]:
        key = chips.key(scene, asset_key, on, profile.version) if chips else None
        href = scene.assets[asset_key].href
        try:
            return read_chip(href, on, resampling, settings, chips, key)
        except SourceError:
            raise
        except LimitError as exc:
            raise SceneReadError(scene.id, f"asset {asset_key}: {exc}") from None
        except (RasterioError, OSError) as exc:
            raise SceneReadError(
                scene.id,
                f"asset {asset_key} ({redact(href)}): read failed after {settings.retries} "
                f"tries: {redact(str(exc))}",
            ) from None

    dn = np.stack([chip(profile.assets[b], Resampling.bilinear) for b in BANDS])
    mask = chip(profile.mask_asset, Resampling.nearest)
    radsat = (
        chip(profile.saturation_asset, Resampling.nearest)
        if profile.saturation_asset and profile.saturation_asset in scene.assets
        else None
    )
    mask_int = np.where(np.isfinite(mask), mask, 0).astype(np.uint16)
    crs = scene.crs
    moved = (
        crs
        if crs is not None and CRS.from_user_input(crs) != CRS.from_user_input(grid.crs)
        else None
    )
    reasons = _decode_mask(profile, mask_int, radsat, rules, grid)
    sun = sun_angles(scene.properties)
    if rules.cloud_heights_m is not None and sun is not None:
        shadows = _matched_shadows(
            lambda coarse: chip(profile.mask_asset, Resampling.nearest, coarse),
            mask_int, profile.mask_kind, sun, rules.cloud_heights_m, grid, site_grid or grid,
            scene.id,
        )  # fmt: skip
        if shadows is not None:
            reasons[shadows & (reasons == MaskReason.CLEAR)] = MaskReason.CAST_SHADOW
    return ScenePixels(scene, dn, mask_int, reasons, radiometry, profile.verify_offset, moved)


def shadow_grid(site_grid: Grid, sun_azimuth: float) -> tuple[Grid, int]:
    """The grid cloud shadows are matched on over ``site_grid``, reaching ``SHADOW_MARGIN_M``
    further toward the sun (at ``sun_azimuth``, degrees from north), where the clouds that
    shade the site lie: each side facing the sun by the margin's component across it. The
    site's pixels grouped by ``k`` a side, on the same lattice (``SHADOW_GRID_M``, at least 1,
    and no more than ``SHADOW_GRID_MAX_PX`` pixels a side); and ``k``."""
    res = site_grid.resolution
    azimuth = math.radians(sun_azimuth)
    east, north = math.sin(azimuth), math.cos(azimuth)  # toward the sun
    reach_x, reach_y = (round(SHADOW_MARGIN_M * abs(c), 6) for c in (east, north))
    longest = max(site_grid.width + reach_x / res, site_grid.height + reach_y / res)
    k = max(1, round(SHADOW_GRID_M / res), math.ceil(longest / SHADOW_GRID_MAX_PX))
    pad_x, pad_y = (math.ceil(r / (k * res)) for r in (reach_x, reach_y))
    west_pad, east_pad = (pad_x, 0) if east < 0 else (0, pad_x)
    north_pad, south_pad = (pad_y, 0) if north > 0 else (0, pad_y)
    t = site_grid.transform
    coarse = Grid(
        site_grid.crs,
        Affine(t.a * k, 0.0, t.c - west_pad * k * t.a, 0.0, t.e * k, t.f - north_pad * k * t.e),
        -(-site_grid.width // k) + west_pad + east_pad,
        -(-site_grid.height // k) + north_pad + south_pad,
    )
    return coarse, k


def _matched_shadows(
    read_coarse: Callable[[Grid], NDArray[np.float32]],
    mask: NDArray[np.uint16],
    kind: str,
    sun: tuple[float, float],
    heights_m: tuple[float, float],
    grid: Grid,
    site_grid: Grid,
    scene_id: str = "",
) -> NDArray[np.bool_] | None:
    """The pixels of ``grid`` (a window of ``site_grid``) that ``mask`` flags as cloud shadow
    and that lie where the scene's clouds over ``site_grid`` and up-sun of it cast their shadows,
    or None when no shadow matched (``masking.match_cloud_shadows``, on ``shadow_grid``)."""
    flagged = shadow_evidence(mask, kind).shadow
    if not flagged.any():
        return None
    coarse, k = shadow_grid(site_grid, sun[1])
    coarse_mask = read_coarse(coarse)
    evidence = shadow_evidence(
        np.where(np.isfinite(coarse_mask), coarse_mask, 0).astype(np.uint16), kind
    )
    match = match_cloud_shadows(
        evidence.clouds, evidence.shadow, *sun, coarse.resolution, heights_m, seen=evidence.seen
    )
    if match.zone is None:
        return None
    logger.debug(
        "%s: cloud shadows cast from %.0f m (%.0f%% of the projected clouds on flagged shadow)",
        scene_id, match.height_m, 100 * match.share,
    )  # fmt: skip
    res = grid.resolution
    row0 = round((coarse.transform.f - grid.transform.f) / res)
    col0 = round((grid.transform.c - coarse.transform.c) / res)
    rows = np.clip((row0 + np.arange(grid.height)) // k, 0, coarse.height - 1)
    cols = np.clip((col0 + np.arange(grid.width)) // k, 0, coarse.width - 1)
    return np.asarray(match.zone[np.ix_(rows, cols)] & flagged, bool)


def read_scene(
    scene: Scene,
    grid: Grid,
    rules: MaskRules | None = None,
    settings: ReadSettings | None = None,
    chips: ChipCache | None = None,
) -> Observation:
    """Read the reflectance bands and the mask of ``scene`` onto ``grid``.

    Raises ``SceneReadError`` (which a run records and skips) for an unknown profile, missing
    assets, an asset that keeps failing, or a scene with no data over the grid; ``SourceError``
    (``ChipMissingError``) offline when a chip is not cached.
    """
    pixels = read_pixels(scene, grid, rules or MaskRules(), settings or ReadSettings(), chips)
    if not pixels.has_data():
        raise SceneReadError(scene.id, NO_DATA)
    radiometry = pixels.radiometry
    if pixels.verify_offset:
        radiometry = settle_boa_offset(radiometry, pixels.boa_evidence())
    return pixels.observation(radiometry)


def cloud_dilation_px(rules: MaskRules, grid: Grid) -> int:
    """How far (pixels) the mask rules dilate clouds on ``grid``: the reach of a pixel's mask
    reason (a chunk read with this halo decodes its interior as the whole grid does)."""
    return round(rules.cloud_dilation_m / grid.resolution)


def _decode_mask(
    profile: SensorProfile,
    mask: NDArray[np.uint16],
    radsat: NDArray[np.float32] | None,
    rules: MaskRules,
    grid: Grid,
) -> NDArray[np.uint8]:
    dilation_px = cloud_dilation_px(rules, grid)
    if profile.mask_kind == "scl":
        return reasons_from_scl(mask, rules.scl_masked, rules.scl_dilated, dilation_px)
    sat = (
        np.where(np.isfinite(radsat), radsat, 0).astype(np.uint16)
        if radsat is not None and rules.qa_radsat
        else None
    )
    return reasons_from_qa_pixel(
        mask, rules.qa_pixel_masked, rules.qa_pixel_dilated, dilation_px, sat
    )


def read_scenes(
    scenes: Sequence[Scene],
    grid: Grid,
    rules: MaskRules,
    settings: ReadSettings,
    chips: ChipCache | None,
) -> tuple[list[Observation], list[tuple[Scene, str]]]:
    """Every scene on ``grid``, and the scenes that could not be read with the reason: one bad
    scene never sinks a run. Offline cache misses are collected and raised together. Up to
    ``settings.threads`` scenes are read at once; the results and their order do not depend on
    it (each scene's read is independent)."""

    def one(scene: Scene) -> Observation | SourceError:
        try:
            return read_scene(scene, grid, rules, settings, chips)
        except (ChipMissingError, SceneReadError) as exc:
            return exc

    observed: list[Observation] = []
    skipped: list[tuple[Scene, str]] = []
    missing: list[ChipMissingError] = []
    threads = max(1, min(settings.threads, len(scenes)))
    with ThreadPoolExecutor(threads) if threads > 1 else nullcontext() as pool:
        results = pool.map(one, scenes) if pool is not None else map(one, scenes)
        for n, (scene, result) in enumerate(zip(scenes, results, strict=True), start=1):
            if isinstance(result, ChipMissingError):
                missing.append(result)
            elif isinstance(result, SceneReadError):
                logger.warning("skipping %s", result)
                skipped.append((scene, result.reason))
            else:
                assert isinstance(result, Observation)
                observed.append(result)
            task_progress.report("scenes read", n, len(scenes))
    if missing:
        raise ChipMissingError.combined(missing)
    return observed, skipped
