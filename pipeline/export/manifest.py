"""The run manifest: canonical JSON, file checksums and the software that produced a run."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import importlib.metadata
import json
import math
import os
import platform
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from pipeline.export.atomic import atomic_write_text

_CHUNK = 1 << 20

#: Python distributions reported by ``software_versions``, by the key they are reported under.
_DISTRIBUTIONS = {
    "numpy": "numpy",
    "rasterio": "rasterio",
    "shapely": "shapely",
    "pyproj": "pyproj",
    "pyogrio": "pyogrio",
    "geopandas": "geopandas",
    "scipy": "scipy",
    "scikit-image": "scikit-image",
    "pystac": "pystac",
    "pydantic": "pydantic",
}
NOT_INSTALLED = "not installed"


def software_versions() -> dict[str, str]:
    """Versions of sitewatch, Python and the libraries whose behaviour shapes the numbers.

    rasterio, pyproj and pyogrio wheels each bundle their own native libraries, so GDAL and PROJ
    are reported for each user: ``GDAL`` (rasterio: rasters), ``GDAL (pyogrio)`` (vector files),
    ``PROJ`` (pyproj: GeoJSON reprojection, UTM zones), ``PROJ (rasterio)``, plus ``GEOS``
    (shapely: polygon operations) and the ``EPSG database`` version PROJ uses.
    """
    from pipeline import __version__

    versions = {"sitewatch": __version__, "python": platform.python_version()}
    for key, distribution in _DISTRIBUTIONS.items():
        try:
            versions[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = NOT_INSTALLED
    versions.update(_native_library_versions())
    return dict(sorted(versions.items()))


def _native_library_versions() -> dict[str, str]:
    import pyogrio
    import pyproj
    import pyproj.database
    import rasterio
    import shapely

    epsg = pyproj.database.get_database_metadata("EPSG.VERSION")
    return {
        "GDAL": str(rasterio.__gdal_version__),
        "GDAL (pyogrio)": str(pyogrio.__gdal_version_string__),
        "PROJ": str(pyproj.proj_version_str),
        "PROJ (rasterio)": str(rasterio.__proj_version__),
        "GEOS": str(shapely.geos_version_string),
        "EPSG database": epsg if epsg is not None else "unknown",
    }


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes as 64 lowercase hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_checksums(
    root: str | os.PathLike[str], *, exclude: tuple[str, ...] = ("manifest.json",)
) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by POSIX path relative to ``root``, sorted.

    Hidden files (which include unfinished atomic writes, ``atomic.TEMP_GLOB``) and the relative paths
    in ``exclude`` are left out, so the result describes the finished outputs of a run directory.
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"output directory {base} does not exist")
    sums: dict[str, str] = {}
    for file in sorted(p for p in base.rglob("*") if p.is_file()):
        relative = file.relative_to(base)
        if any(part.startswith(".") for part in relative.parts):
            continue
        key = relative.as_posix()
        if key not in exclude:
            sums[key] = sha256_file(file)
    return sums


def canonical_json(obj: Any) -> str:
    """``obj`` as JSON with sorted keys, 2-space indent, UTF-8 text and a trailing newline.

    Accepts what ``json`` does plus numpy scalars, paths (POSIX form), dates (ISO 8601), enums
    (their value) and sets (sorted). NaN, "no value", is written as ``null``; an infinity has no
    JSON form and no honest stand-in, so it raises ``ValueError`` naming where it is
    (``$.sites[3].area_ha``).
    """
    plain = _plain(obj, "$")
    return json.dumps(plain, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_manifest(path: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` as ``canonical_json`` atomically; return the path."""
    if not isinstance(manifest, Mapping):
        raise TypeError(f"a manifest must be a mapping, got {type(manifest).__name__}")
    return atomic_write_text(path, canonical_json(manifest))


def _plain(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value, where)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isinf(number):
            raise ValueError(f"{where} is {number}, which JSON cannot hold")
        return number + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, got {key!r}")
            out[key] = _plain(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [_plain(item, f"{where}{{}}") for item in value]
        try:
            return sorted(items)
        except TypeError as error:
            raise TypeError(f"{where}: a set of mixed types cannot be ordered: {error}") from None
    raise TypeError(
        f"{where}: cannot write a {type(value).__name__} ({value!r}) to JSON; allowed are None, "
        "bool, int, float, str, paths, dates, enums, and lists, sets and str-keyed mappings"
    )
