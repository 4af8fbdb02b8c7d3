"""Local rasters given on the command line: one multi-band file or a folder of band files.

A folder holds single-band files named by band id, as Sentinel-2 is delivered: ``B02.tif`` or
``T51SUH_20230915_B02.jp2``; bands may differ in resolution. Band ids are Sentinel-2 ids
(``B02``...) or the canonical names of ``sensors.BANDS`` (``blue``...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.errors import RasterioError

from pipeline.errors import InputRasterError
from pipeline.grid import Grid
from pipeline.sources.read import read_asset
from pipeline.sources.sensors import BANDS, S2_BAND_IDS

# Sentinel-2 L2A band ids (B10, cirrus, exists only in L1C and is not used).
_BAND_FILE = re.compile(r"(?:^|[_\-.])(B0[1-9]|B1[12]|B8A)\.(tif|tiff|jp2)$", re.IGNORECASE)


@dataclass(frozen=True)
class BandSource:
    """Where one band lives: a file and the 1-based band index in it."""

    path: Path
    index: int


def canonical_band(name: str) -> str:
    """``B02`` or ``blue`` -> ``blue``; raises InputRasterError for unknown ids."""
    key = name.strip()
    if key.upper() in S2_BAND_IDS:
        return S2_BAND_IDS[key.upper()]
    if key.lower() in S2_BAND_IDS.values():
        return key.lower()
    allowed = ", ".join([*S2_BAND_IDS, *BANDS])
    raise InputRasterError(f"band id {name!r} unknown; allowed: {allowed}")


_SCL_FILE = re.compile(r"(?:^|[_\-.])SCL\.(tif|tiff|jp2)$", re.IGNORECASE)


def locate_scl(path: Path) -> Path | None:
    """The scene classification file (``SCL.tif`` or ``..._SCL.tif``) of a band folder, if any."""
    if not path.is_dir():
        return None
    found = sorted(f for f in path.iterdir() if _SCL_FILE.search(f.name))
    if len(found) > 1:
        raise InputRasterError(f"{path}: several SCL files ({[f.name for f in found]}); keep one")
    return found[0] if found else None


def locate_bands(path: Path, band_order: Sequence[str] | None = None) -> dict[str, BandSource]:
    """Map canonical band names to files/bands for a multi-band raster or a band folder."""
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
        return found
    try:
        with rasterio.open(path) as src:
            count = src.count
    except (RasterioError, OSError) as exc:
        raise InputRasterError(f"{path}: not a readable raster ({exc})") from None
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


def finest_grid(bands: Mapping[str, BandSource]) -> Grid:
    """The grid of the highest-resolution band among the ones the pipeline uses."""
    best: Grid | None = None
    for name in BANDS:
        src_path = bands[name].path
        with rasterio.open(src_path) as src:
            if src.crs is None:
                raise InputRasterError(f"{src_path}: no coordinate reference system")
            if not src.crs.is_projected:
                raise InputRasterError(
                    f"{src_path}: CRS {src.crs.to_string()} is geographic (degrees); areas need "
                    "metres: reproject to the UTM zone first, e.g. with gdalwarp -t_srs EPSG:326xx"
                )
            if src.transform.b != 0 or src.transform.d != 0:
                raise InputRasterError(f"{src_path}: rotated rasters are not supported")
            grid = Grid(src.crs.to_string(), src.transform, src.width, src.height)
        if best is None or grid.resolution < best.resolution:
            best = grid
    assert best is not None
    return best


def read_bands(
    bands: Mapping[str, BandSource],
    grid: Grid,
    scale: float = 1.0,
    offset: float = 0.0,
) -> NDArray[np.float32]:
    """The ``BANDS`` of a band set on ``grid`` (bilinear), as ``DN * scale + offset``; NaN outside
    the data or at its nodata value."""
    out = np.full((len(BANDS), *grid.shape), np.nan, np.float32)
    for i, name in enumerate(BANDS):
        b = bands[name]
        try:
            data = read_asset(b.path, grid, Resampling.bilinear, band=b.index)
        except (RasterioError, OSError) as exc:
            raise InputRasterError(f"{b.path}: cannot read band {name} ({exc})") from None
        out[i] = data * scale + offset
    return out
