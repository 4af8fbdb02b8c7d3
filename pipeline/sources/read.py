"""Windowed reads of one scene onto a site grid: the pixel I/O edge.

Each asset is opened through a ``WarpedVRT`` onto the site grid, so only the internal tiles that
cover the site are fetched (from local COGs or over ``/vsicurl/`` and ``/vsis3/`` alike), from
an overview when the grid is coarser than the data, and 20 m bands land on the 10 m grid by the
same bilinear rule everywhere (``run`` and ``compare``). Remote reads retry with backoff; chips
read from the network are kept in a ``ChipCache`` so that a rerun fetches nothing.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, WindowError
from rasterio.vrt import WarpedVRT

from pipeline.bands import BAND_INDEX, BANDS
from pipeline.errors import LimitError, SceneReadError, SourceError
from pipeline.grid import Grid
from pipeline.masking import MaskReason, MaskRules, reasons_from_qa_pixel, reasons_from_scl
from pipeline.radiometry import Radiometry, verify_boa_offset
from pipeline.sources.base import Scene, redact
from pipeline.sources.chips import ChipCache, ChipMissingError
from pipeline.sources.sensors import PROFILES, SensorProfile

logger = logging.getLogger(__name__)

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
        return np.asarray(self.reasons == MaskReason.CLEAR)


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
            return _read_onto(src, grid, resampling, band)
    with rasterio.open(href, overview_level=level) as overview:
        return _read_onto(overview, grid, resampling, band)


def _read_onto(src: Any, grid: Grid, resampling: Resampling, band: int) -> NDArray[np.float64]:
    nodata = src.nodatavals[band - 1]
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
    ) as vrt:
        data = vrt.read(band).astype(np.float64)
        ok = vrt.read(vrt.count) > 0 if nodata is None else data != nodata
    return np.where(ok, data, np.nan)


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
                data = read_asset(href, grid, resampling, max_fetch_bytes=limit).astype(np.float32)
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
    rules = rules or MaskRules()
    settings = settings or ReadSettings()
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

    def chip(asset_key: str, resampling: Resampling) -> NDArray[np.float32]:
        key = chips.key(scene, asset_key, grid, profile.version) if chips else None
        href = scene.assets[asset_key].href
        try:
            return read_chip(href, grid, resampling, settings, chips, key)
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
    if not np.isfinite(dn).any():
        raise SceneReadError(scene.id, "no data over the site grid")
    mask_int = np.where(np.isfinite(mask), mask, 0).astype(np.uint16)
    reasons = _decode_mask(profile, mask_int, radsat, rules, grid)
    if profile.verify_offset:
        radiometry = verify_boa_offset(
            dn[BAND_INDEX["swir22"]], mask_int, radiometry, reasons == MaskReason.CLEAR
        )
    reflectance = radiometry.apply(dn)
    reasons[~np.isfinite(reflectance).all(axis=0)] = MaskReason.NODATA
    crs = scene.crs
    moved = (
        crs
        if crs is not None and CRS.from_user_input(crs) != CRS.from_user_input(grid.crs)
        else None
    )
    return Observation(
        scene.id, scene.datetime, reflectance, reasons, radiometry, scene.platform, moved
    )


def _decode_mask(
    profile: SensorProfile,
    mask: NDArray[np.uint16],
    radsat: NDArray[np.float32] | None,
    rules: MaskRules,
    grid: Grid,
) -> NDArray[np.uint8]:
    dilation_px = round(rules.cloud_dilation_m / grid.resolution)
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
    scene never sinks a run. Offline cache misses are collected and raised together."""
    observed: list[Observation] = []
    skipped: list[tuple[Scene, str]] = []
    missing: list[ChipMissingError] = []
    for scene in scenes:
        try:
            observed.append(read_scene(scene, grid, rules, settings, chips))
        except ChipMissingError as exc:
            missing.append(exc)
        except SceneReadError as exc:
            logger.warning("skipping %s", exc)
            skipped.append((scene, exc.reason))
    if missing:
        raise ChipMissingError.combined(missing)
    return observed, skipped
