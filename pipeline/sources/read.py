"""Windowed reads of one scene onto a site grid: the pixel I/O edge.

Each asset is opened through a ``WarpedVRT`` onto the site grid, so only the blocks that cover the
site are read (from local COGs or over ``/vsicurl/`` alike) and 20 m bands are resampled onto the
10 m grid in the same step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT

from pipeline.errors import SceneReadError
from pipeline.grid import Grid
from pipeline.sources.base import Scene
from pipeline.sources.sensors import BANDS, Radiometry, radiometry_for

GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
}


@dataclass(frozen=True)
class Observation:
    """One scene on the site grid: reflectance (band, y, x) with NaN for no data, and SCL."""

    scene_id: str
    datetime: datetime
    reflectance: NDArray[np.float32]
    scl: NDArray[np.uint8]
    radiometry: Radiometry


def read_asset(
    href: str | Path, grid: Grid, resampling: Resampling, band: int = 1
) -> NDArray[np.float64]:
    """One band of a raster on ``grid``; pixels outside the raster or at its nodata value become
    NaN. Without a nodata value, GDAL's alpha band of the warp says where data exists."""
    with rasterio.open(href) as src:
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


def read_scene(scene: Scene, grid: Grid, bands: Sequence[str] = BANDS) -> Observation:
    """Read ``bands`` and SCL of ``scene`` onto ``grid`` as reflectance.

    Raises SceneReadError (which a run records and skips) for unreadable assets, missing bands or
    a scene with no data over the grid.
    """
    missing = [b for b in (*bands, "scl") if b not in scene.assets]
    if missing:
        raise SceneReadError(scene.id, f"assets {missing} missing; has {sorted(scene.assets)}")
    try:
        radiometry = radiometry_for(scene.collection, scene.properties)
    except ValueError as exc:
        raise SceneReadError(scene.id, str(exc)) from None
    try:
        with rasterio.Env(**GDAL_ENV):
            dn = np.stack([read_asset(scene.assets[b], grid, Resampling.bilinear) for b in bands])
            scl = read_asset(scene.assets["scl"], grid, Resampling.nearest)
    except (RasterioError, OSError) as exc:
        raise SceneReadError(scene.id, f"read failed: {exc}") from None
    if not np.isfinite(dn).any():
        raise SceneReadError(scene.id, "no data over the site grid")
    reflectance = ((dn + radiometry.offset_dn) * radiometry.scale).astype(np.float32)
    scl_u8 = np.where(np.isfinite(scl), scl, 0).astype(np.uint8)
    return Observation(scene.id, scene.datetime, reflectance, scl_u8, radiometry)
