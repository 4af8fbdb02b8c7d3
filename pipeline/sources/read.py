"""Windowed reads of one scene onto a site grid: the pixel I/O edge.

Each asset is opened through a ``WarpedVRT`` onto the site grid, so only the blocks that cover the
site are read (from local COGs or over ``/vsicurl/`` alike) and 20 m bands are resampled onto the
10 m grid in the same step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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
    href: str, grid: Grid, resampling: Resampling, nodata: float = 0
) -> NDArray[np.float64]:
    """One single-band asset on ``grid``; pixels outside the asset or at nodata become NaN."""
    with rasterio.open(href) as src:
        src_nodata = src.nodata if src.nodata is not None else nodata
        with WarpedVRT(
            src,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=resampling,
            src_nodata=src_nodata,
            nodata=src_nodata,
        ) as vrt:
            data = vrt.read(1, masked=True)
    return np.ma.filled(data.astype(np.float64), np.nan)


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
