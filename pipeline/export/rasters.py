"""Cloud-Optimized GeoTIFFs on a site grid, byte-identical for identical input."""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.dtypes import dtype_ranges
from rasterio.enums import ColorInterp
from rasterio.errors import CRSError, RasterioError

from pipeline.export.atomic import atomic_path
from pipeline.grid import Grid

#: Overview resampling names accepted by ``write_cog`` and the COG driver name of each.
OVERVIEW_RESAMPLING = {
    "nearest": "NEAREST",
    "mode": "MODE",
    "average": "AVERAGE",
    "rms": "RMS",
    "bilinear": "BILINEAR",
    "cubic": "CUBIC",
    "cubic_spline": "CUBICSPLINE",
    "lanczos": "LANCZOS",
}
#: Tile size; the COG driver adds overviews while the image is larger than one tile.
BLOCKSIZE = 512

_WRITABLE_DTYPES = frozenset(dtype_ranges)  # the integer and float types GeoTIFF stores
_TAG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")
_RESERVED_TAGS = frozenset({"bidx", "ns"})  # rasterio's own update_tags parameters
#: Most overview levels ``write_cog`` builds when asked for a count (2**20 pixels per pixel).
MAX_OVERVIEWS = 20


def write_cog(
    path: str | os.PathLike[str],
    data: npt.ArrayLike,
    grid: Grid,
    *,
    nodata: float | None,
    band_names: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
    category_names: Mapping[int, str] | None = None,
    colour_interpretation: Sequence[str] | None = None,
    resampling: str = "nearest",
    overview_count: int | None = None,
) -> Path:
    """Write a (height, width) or (bands, height, width) array as a COG on ``grid``; return the path.

    DEFLATE-compressed, 512-pixel tiles, overviews while larger than a tile (resampled with
    ``resampling``, one of ``OVERVIEW_RESAMPLING``: ``nearest``/``mode`` for classes and masks,
    ``average`` for continuous values). Predictor 3 for floats, 2 for integers wider than 8 bits,
    none for 8-bit (classes and masks, where differencing does not help). ``nodata`` must be
    representable in the array's dtype (NaN only for floats); a masked array is filled with it.
    bool arrays are written as uint8, float16 as float32. ``band_names`` become band descriptions,
    ``tags`` dataset metadata (sorted by key), ``colormap`` the palette of a single uint8/uint16
    band (GeoTIFF palettes are RGB: alpha is dropped, so transparency comes from ``nodata``).
    ``category_names`` label the values of a single band as band metadata items
    ``category_<value>`` (GeoTIFF has no tag for GDAL's category names, which GDAL would put in
    an ``.aux.xml`` sidecar). ``colour_interpretation`` names each band's
    ``rasterio.enums.ColorInterp`` (``red``, ``green``, ``blue``, ``alpha``, ``gray``...): an
    ``alpha`` band is stored as the TIFF's alpha channel, which GIS software reads as
    transparency. ``overview_count``: None for overviews while larger than a tile, or exactly
    that many levels (halving each time), so that small rasters get them too.
    The file is written atomically.
    """
    array = _as_band_array(data, grid, nodata)
    count = array.shape[0]
    dtype = str(array.dtype)
    nodata = _checked_nodata(nodata, array.dtype)
    names = _checked_band_names(band_names, count)
    metadata = _checked_tags(tags)
    if colormap is not None:
        _check_colormap(colormap, count, dtype)
    categories = _checked_categories(category_names, count, array.dtype)
    interpretation = _checked_interpretation(colour_interpretation, count)
    if overview_count is not None and (
        isinstance(overview_count, bool)
        or not isinstance(overview_count, int)
        or not 0 <= overview_count <= MAX_OVERVIEWS
    ):
        raise ValueError(
            f"overview_count {overview_count!r} must be None or an integer 0..{MAX_OVERVIEWS}"
        )
    try:
        overview_resampling = OVERVIEW_RESAMPLING[resampling]
    except KeyError:
        raise ValueError(
            f"resampling {resampling!r} is not one of {sorted(OVERVIEW_RESAMPLING)}"
        ) from None
    try:
        crs = CRS.from_user_input(grid.crs)
    except CRSError as error:
        raise ValueError(f"grid CRS {grid.crs!r} is not a CRS GDAL knows: {error}") from error

    # The COG driver names predictors (GTiff's 1/2/3 are rejected with a warning).
    if array.dtype.kind == "f":
        predictor = "FLOATING_POINT"
    elif array.dtype.itemsize > 1:
        predictor = "STANDARD"
    else:
        predictor = "NO"
    creation: dict[str, Any] = {
        "compress": "DEFLATE",
        "predictor": predictor,
        "blocksize": str(BLOCKSIZE),
        "overviews": "AUTO",
        "overview_resampling": overview_resampling,
        "bigtiff": "IF_SAFER",
    }
    if overview_count is not None:
        creation["overviews"] = "IGNORE_EXISTING" if overview_count else "NONE"
        if overview_count:
            creation["overview_count"] = str(overview_count)
    profile: dict[str, Any] = {
        "driver": "MEM",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": dtype,
        "crs": crs,
        "transform": grid.transform,
        "nodata": nodata,
    }
    # GDAL's COG driver only copies a finished dataset (CreateCopy), so the bands, descriptions,
    # tags and palette are assembled in memory first.
    with rasterio.open("sitewatch-cog", "w", **profile) as mem:
        mem.write(array)
        for band, name in enumerate(names, start=1):
            mem.set_band_description(band, name)
        if metadata:
            mem.update_tags(**metadata)
        if colormap is not None:
            mem.write_colormap(1, {int(k): tuple(v) for k, v in sorted(colormap.items())})
        if categories:
            mem.update_tags(1, **categories)
        if interpretation:
            mem.colorinterp = interpretation
        with atomic_path(path) as temp:
            try:
                rasterio.shutil.copy(mem, str(temp), driver="COG", **creation)
            except GDAL_WRITE_ERRORS as exc:
                raise gdal_write_error(exc, Path(path), array.nbytes) from None
    return Path(path)


#: What a GDAL write raises: rasterio's errors, and GDAL's own (``CPLE_*``, not RasterioErrors).
GDAL_WRITE_ERRORS = (RasterioError, CPLE_BaseError)


def gdal_write_error(exc: Exception, path: Path, nbytes: int) -> Exception:
    """GDAL reports a full disk writing ``path`` as a generic error (a ``CPLE_*`` error that is
    no RasterioError): the error to raise instead, so that callers report an output fault, not
    a bug. An ``OSError`` ENOSPC naming the file when less than ``nbytes`` (the size of the
    data) is free; else a RasterioError as it is, and GDAL's own errors as an ``OSError``."""
    try:
        full = shutil.disk_usage(path.parent).free < nbytes
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    if isinstance(exc, RasterioError):
        return exc  # type: ignore[no-any-return]  # rasterio is untyped
    return OSError(errno.EIO, f"GDAL could not write it ({exc})", str(path))


def _as_band_array(data: npt.ArrayLike, grid: Grid, nodata: float | None) -> np.ndarray[Any, Any]:
    if isinstance(data, np.ma.MaskedArray):
        if nodata is None:
            raise ValueError("a masked array needs a nodata value to write its masked pixels as")
        data = data.filled(nodata)
    array = np.asarray(data)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3 or array.shape[0] == 0:
        raise ValueError(
            f"data must be (height, width) or (bands, height, width) with 1+ bands, got shape "
            f"{array.shape}"
        )
    if array.shape[1:] != grid.shape:
        raise ValueError(
            f"data of shape {array.shape} does not match the grid's (height, width) {grid.shape}"
        )
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    elif array.dtype == np.float16:
        array = array.astype(np.float32)
    if str(array.dtype) not in _WRITABLE_DTYPES:
        raise ValueError(
            f"data type {array.dtype} cannot be written to GeoTIFF; allowed are bool, float16 and "
            f"{sorted(_WRITABLE_DTYPES)}"
        )
    return array


def _checked_nodata(nodata: float | None, dtype: np.dtype[Any]) -> float | None:
    if nodata is None:
        return None
    if isinstance(nodata, bool) or not isinstance(nodata, int | float | np.integer | np.floating):
        raise TypeError(f"nodata must be a number or None, got {nodata!r}")
    low, high = dtype_ranges[str(dtype)]
    if dtype.kind == "f":
        if math.isnan(nodata) or math.isinf(nodata) or low <= nodata <= high:
            return float(nodata)
    elif not math.isnan(nodata) and float(nodata).is_integer() and low <= nodata <= high:
        return int(nodata)
    raise ValueError(f"nodata {nodata!r} is not a value of the data type {dtype} ({low}..{high})")


def _checked_band_names(band_names: Sequence[str] | None, count: int) -> list[str]:
    if band_names is None:
        return []
    if isinstance(band_names, str):
        raise TypeError(f"band_names must be a sequence of strings, not the string {band_names!r}")
    names = list(band_names)
    if len(names) != count:
        raise ValueError(f"{len(names)} band_names {names} for {count} bands")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"band names must be non-empty strings, got {name!r} in {names}")
    return names


def _checked_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if not tags:
        return {}
    checked: dict[str, str] = {}
    for key in sorted(tags):
        value = tags[key]
        if not isinstance(key, str) or not _TAG_NAME.match(key) or key in _RESERVED_TAGS:
            raise ValueError(
                f"tag name {key!r} must match {_TAG_NAME.pattern} and not be one of "
                f"{sorted(_RESERVED_TAGS)}"
            )
        if not isinstance(value, str):
            raise TypeError(
                f"tag {key!r} must be a string, got {type(value).__name__}; serialise structured "
                "provenance (e.g. with canonical_json) first"
            )
        checked[key] = value
    return checked


def _check_colormap(
    colormap: Mapping[int, tuple[int, int, int, int]], count: int, dtype: str
) -> None:
    if count != 1 or dtype not in ("uint8", "uint16"):
        raise ValueError(
            f"a colormap needs a single uint8 or uint16 band, got {count} band(s) of {dtype}"
        )
    high = dtype_ranges[dtype][1]
    for value, rgba in colormap.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise ValueError(f"colormap value {value!r} is not a {dtype} value (0..{high})")
        if len(rgba) != 4 or not all(isinstance(c, int) and 0 <= c <= 255 for c in rgba):
            raise ValueError(f"colormap entry {value}: {rgba!r} is not an (r, g, b, a) of 0..255")


def _checked_categories(
    names: Mapping[int, str] | None, count: int, dtype: np.dtype[Any]
) -> dict[str, str]:
    if not names:
        return {}
    if count != 1 or dtype.kind not in "ui":
        raise ValueError(
            f"category_names need a single integer band, got {count} band(s) of {dtype}"
        )
    low, high = dtype_ranges[str(dtype)]
    items: dict[str, str] = {}
    for value in sorted(names):
        name = names[value]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"category value {value!r} is not a {dtype} value ({low}..{high})")
        if not isinstance(name, str) or not name:
            raise ValueError(f"category {value}: name {name!r} must be a non-empty string")
        items[f"category_{value}"] = name
    return items


def _checked_interpretation(names: Sequence[str] | None, count: int) -> list[ColorInterp]:
    if names is None:
        return []
    if isinstance(names, str) or len(names) != count:
        raise ValueError(f"colour_interpretation {names!r} must name each of the {count} bands")
    allowed = {c.name: c for c in ColorInterp}
    try:
        return [allowed[name] for name in names]
    except KeyError:
        raise ValueError(
            f"colour_interpretation {list(names)} has a name not in {sorted(allowed)}"
        ) from None
