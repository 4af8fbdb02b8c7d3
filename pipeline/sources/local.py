"""Local rasters given on the command line: one multi-band file or a folder of band files, and
what product each is.

A folder holds single-band files named by band id, as the providers deliver them:

* Sentinel-2 ``B02.tif``, ``T51SUH_20230915_B02.jp2`` or SAFE-style
  ``T51SUH_20230915T022549_B02_10m.jp2`` (the finest where a band comes at several
  resolutions); bands may differ in resolution. A ``.SAFE`` folder may be given as such: its one
  granule's ``IMG_DATA`` is searched. Band ids are Sentinel-2 ids (``B02``...) or the canonical
  names of ``sensors.BANDS`` (``blue``...).
* Landsat Collection 2 Level-2 as USGS names them, ``LC08_L2SP_116033_20200915_20200920_02_T1_SR_B2.TIF``
  (TM/ETM+ and OLI band numbers differ: the platform in the name decides).

``locate_input`` also says what the product is (``InputProduct``), from, in this order: a STAC
item ``*.json`` in the folder (a multi-band file: ``<stem>.json`` beside it), ``MTD_MSIL2A.xml``
/ ``MTD_MSIL1C.xml`` (in the folder or up to its enclosing ``.SAFE``), product names (the
``.SAFE`` folder, the folder or file name, ``PRODUCT_URI``) and the band files themselves
(``B10`` exists only in Level-1C; ``SCL``, ``AOT``, ``WVP`` and ``_10m`` names only in Level-2A).
Sources that contradict each other on the product are refused, naming both. It decides nothing
about radiometry: ``compare`` does.

Every file is opened once when located, so a junk, empty or unreadable file is refused by name
before any pixel is read. ``compare_grid`` chooses the grid both dates are read onto: BEFORE's
finest band grid when BEFORE is projected, else a UTM grid in metres at BEFORE's native ground
resolution.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import reproject, transform_bounds

from pipeline.errors import InputRasterError, LimitError, SourceError
from pipeline.grid import Grid, utm_crs_for
from pipeline.sources.folder import (
    BASELINE_PATTERN,
    LandsatFileName,
    find_landsat_mtl,
    find_s2_product_metadata,
    parse_landsat_name,
    s2_file_acquisition,
    safe_name_baseline,
)
from pipeline.sources.read import read_asset
from pipeline.sources.sensors import BANDS, PROFILES, S2_BAND_IDS

# Sentinel-2 band files, with the resolution suffix of L2A SAFE granules (``_B02_10m.jp2``). B10
# (cirrus) exists only in Level-1C: it marks the product and is never read.
_BAND_FILE = re.compile(
    r"(?:^|[_\-.])(B0[1-9]|B1[0-2]|B8A)(?:_(\d{2})m)?\.(tif|tiff|jp2)$", re.IGNORECASE
)
_SCL_FILE = re.compile(r"(?:^|[_\-.])SCL(?:_(\d{2})m)?\.(tif|tiff|jp2)$", re.IGNORECASE)
# Files that exist only in Level-2A products: scene classification, aerosol, water vapour.
_L2A_ONLY_FILE = re.compile(
    r"(?:^|[_\-.])(SCL|AOT|WVP)(?:_\d{2}m)?\.(tif|tiff|jp2)$", re.IGNORECASE
)
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2")
# A Sentinel-2 product name: S2B_MSIL2A_20220315T022549_N0400_R046_T51SUH_20220315T045012.
_S2_PRODUCT_NAME = re.compile(r"S2[A-D]_MSIL(1C|2A)_\d{8}T\d{6}_N\d{4}_", re.IGNORECASE)
_LANDSAT_SR_ID = re.compile(r"SR_B\d")

Product = Literal["L1C", "L2A", "Landsat", "unknown"]
Sensor = Literal["sentinel-2", "landsat", "unknown"]

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
    dtype: str = ""

    @property
    def integer(self) -> bool:
        """Integer pixels (DN), as opposed to floating point."""
        return self.dtype.startswith(("uint", "int"))

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
                    path, src.crs, src.transform, src.width, src.height, src.count, src.nodata,
                    src.dtypes[0] if src.dtypes else "",
                )  # fmt: skip
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


def _landsat_ids(platform: str) -> dict[str, str]:
    """USGS surface-reflectance band ids -> canonical names on ``platform`` (the sensors module's
    USGS profiles: TM/ETM+ and OLI number their bands differently; OLI's SR_B1 is coastal)."""
    oli = platform in ("landsat-8", "landsat-9")
    profile = PROFILES["usgs/landsat-c2l2-sr-oli" if oli else "usgs/landsat-c2l2-sr-tm"]
    ids = {asset.split(".")[0].upper(): band for band, asset in profile.assets.items()}
    if oli:
        ids["SR_B1"] = "coastal"
    return ids


def canonical_band(name: str, landsat_platform: str | None = None) -> str:
    """``B02``, ``blue`` or, on a known Landsat platform, ``SR_B2`` -> ``blue``; raises
    InputRasterError for unknown ids (and for Landsat ids when the platform is unknown)."""
    key = name.strip()
    if key.upper() in S2_BAND_IDS:
        return S2_BAND_IDS[key.upper()]
    if key.lower() in S2_BAND_IDS.values():
        return key.lower()
    if _LANDSAT_SR_ID.fullmatch(key.upper()):
        if landsat_platform is None:
            raise InputRasterError(
                f"band id {name!r} is a Landsat band number, which differs between TM/ETM+ "
                "(landsat-4/5/7) and OLI (landsat-8/9), and nothing says which platform: name the "
                "file with its USGS product id (e.g. LC08_L2SP_116033_20200915_20200920_02_T1_"
                "SR_stack.tif), put its STAC item beside it as <name>.json, or use "
                "blue,green,red,nir,swir16,swir22"
            )
        ids = _landsat_ids(landsat_platform)
        if key.upper() in ids:
            return ids[key.upper()]
        raise InputRasterError(
            f"band id {name!r} is not a surface-reflectance band of {landsat_platform}; "
            f"allowed: {', '.join(sorted(ids))}"
        )
    allowed = ", ".join([*S2_BAND_IDS, *BANDS, "SR_B1..SR_B7 (Landsat, platform known)"])
    raise InputRasterError(f"band id {name!r} unknown; allowed: {allowed}")


# --- what product an input is ------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """A value as one source gives it."""

    value: str
    source: str


@dataclass(frozen=True)
class InputProduct:
    """What one input's names, files and metadata say it is; no decision about radiometry.

    ``baselines`` are the Sentinel-2 processing baselines found, in precedence order (STAC item,
    MTD file, product names); ``add_offsets`` the DN offsets the MTD file lists
    (``BOA_ADD_OFFSET`` of L2A, ``RADIO_ADD_OFFSET`` of L1C; empty before baseline 04.00) and
    ``quantification`` its quantification value; ``offset_applied`` the STAC item's
    ``earthsearch:boa_offset_applied``; ``integer_dn`` whether the band files hold integers."""

    sensor: Sensor
    product: Product
    product_from: str
    platform: str | None = None
    baselines: tuple[Statement, ...] = ()
    offset_applied: bool | None = None
    offset_applied_from: str = ""
    add_offsets: tuple[float, ...] = ()
    quantification: float | None = None
    mtd: Path | None = None
    integer_dn: bool = True
    metadata: tuple[str, ...] = ()


UNKNOWN_PRODUCT = InputProduct("unknown", "unknown", "not told")


@dataclass(frozen=True)
class LocalInput:
    """One date as given: its band files, its scene classification file and its product."""

    path: Path
    bands: dict[str, BandSource]
    scl: Path | None
    product: InputProduct = field(default=UNKNOWN_PRODUCT)


@dataclass(frozen=True)
class _StacSays:
    """What a STAC item says about the product."""

    path: Path
    sensor: Sensor
    level: Literal["L1C", "L2A"] | None
    level_from: str
    baseline: str | None
    product_name: str | None
    offset_applied: bool | None
    platform: str | None


_S2_PRODUCT_TYPES: Mapping[str, Literal["L1C", "L2A"]] = {"S2MSI1C": "L1C", "S2MSI2A": "L2A"}


def _platform(value: Any) -> str | None:
    """``LANDSAT_8`` / ``landsat-8`` / ``Sentinel-2A`` -> ``landsat-8`` / ``sentinel-2a``."""
    text = str(value or "").strip().lower().replace("_", "-")
    return text or None


def _read_stac_item(path: Path) -> _StacSays | None:
    """What the STAC item ``path`` says; None when the JSON is no STAC item (e.g. a Landsat
    ``_MTL.json``). Refuses unreadable JSON and bad values, naming the file and the field."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputRasterError(
            f"{path}: not readable JSON ({exc}); compare reads the *.json beside the band files "
            "as STAC items: fix or remove it"
        ) from None
    if not (
        isinstance(doc, dict)
        and doc.get("type") == "Feature"
        and isinstance(doc.get("properties"), dict)
    ):
        return None
    props: dict[str, Any] = doc["properties"]
    collection = str(doc.get("collection") or "").lower()
    platform = _platform(props.get("platform") or props.get("eo:platform"))
    baseline = props.get("s2:processing_baseline")
    if baseline is not None and not (
        isinstance(baseline, str) and re.match(BASELINE_PATTERN, baseline)
    ):
        raise InputRasterError(
            f"{path}: properties['s2:processing_baseline'] {baseline!r} is not a processing "
            "baseline; allowed: a string NN.NN such as '02.14' or '04.00'"
        )
    applied = props.get("earthsearch:boa_offset_applied")
    if applied is not None and not isinstance(applied, bool):
        raise InputRasterError(
            f"{path}: properties['earthsearch:boa_offset_applied'] {applied!r} is not a "
            "boolean; allowed: true, false"
        )
    name = next(
        (str(props[k]) for k in ("s2:product_uri", "sentinel:product_id") if props.get(k)), None
    )
    landsat = (
        "landsat" in collection
        or (platform or "").startswith("landsat")
        or any(k.startswith("landsat:") for k in props)
    )
    s2 = (
        collection.startswith(("sentinel-2", "sentinel-s2"))
        or (platform or "").startswith("sentinel-2")
        or any(k.startswith(("s2:", "sentinel:")) for k in props)
    )
    if landsat and s2:
        raise InputRasterError(
            f"{path}: the STAC item says both Landsat and Sentinel-2 (collection "
            f"{collection!r}, platform {platform!r}); fix or remove it"
        )
    sensor: Sensor = "landsat" if landsat else "sentinel-2" if s2 else "unknown"
    level: Literal["L1C", "L2A"] | None = None
    level_from = ""
    ptype = props.get("s2:product_type")
    if ptype is not None:
        level = _S2_PRODUCT_TYPES.get(str(ptype).upper())
        if level is None:
            raise InputRasterError(
                f"{path}: properties['s2:product_type'] {ptype!r} is not a Sentinel-2 product "
                f"type compare reads; allowed: {', '.join(_S2_PRODUCT_TYPES)}"
            )
        level_from = f"STAC item {path} (s2:product_type {ptype})"
    elif s2 and ("l1c" in collection or "l2a" in collection):
        level = "L1C" if "l1c" in collection else "L2A"
        level_from = f"STAC item {path} (collection {collection})"
    elif name and (m := _S2_PRODUCT_NAME.search(name)):
        level = "L1C" if m.group(1).upper() == "1C" else "L2A"
        level_from = f"STAC item {path} (product name {name})"
    return _StacSays(path, sensor, level, level_from, baseline, name, applied, platform)


def _stac_items(paths: Sequence[Path]) -> list[_StacSays]:
    """The STAC items among ``paths``; several must agree on what they say of the product."""
    items = [s for p in paths if (s := _read_stac_item(p)) is not None]
    for other in items[1:]:
        a, b = items[0], other
        for what, va, vb in (
            ("sensor", a.sensor, b.sensor),
            ("product level", a.level, b.level),
            ("s2:processing_baseline", a.baseline, b.baseline),
            ("earthsearch:boa_offset_applied", a.offset_applied, b.offset_applied),
        ):
            if va != vb:
                raise InputRasterError(
                    f"{a.path} and {b.path} disagree on the {what} ({va} vs {vb}); keep the "
                    "STAC item of these files only"
                )
    return items


def _json_files(folder: Path) -> list[Path]:
    return sorted(
        f for f in folder.iterdir() if f.suffix.lower() == ".json" and not f.name.startswith(".")
    )


@dataclass
class _FolderScan:
    """The files of a band folder, sorted by what their names say."""

    folder: Path
    s2: dict[str, list[tuple[Path, int | None]]] = field(default_factory=dict)
    scl: list[tuple[Path, int | None]] = field(default_factory=list)
    l1c_marks: list[tuple[Path, str]] = field(default_factory=list)
    l2a_marks: list[tuple[Path, str]] = field(default_factory=list)
    landsat: list[tuple[Path, LandsatFileName]] = field(default_factory=list)
    acquisitions: dict[tuple[str, str], Path] = field(default_factory=dict)


def _granule_entries(path: Path) -> list[Path] | None:
    """The files under the one granule's IMG_DATA of a ``.SAFE`` folder; None when ``path`` has
    no GRANULE folder."""
    granule_root = path / "GRANULE"
    if not granule_root.is_dir():
        return None
    granules = sorted(d for d in granule_root.iterdir() if d.is_dir())
    if len(granules) != 1:
        raise InputRasterError(
            f"{path}: {len(granules)} granules under GRANULE ({[g.name for g in granules]}); "
            "compare reads one: give the IMG_DATA folder of the one wanted"
        )
    return sorted(f for f in (granules[0] / "IMG_DATA").rglob("*") if not f.is_dir())


def _scan_folder(path: Path) -> _FolderScan:
    scan = _FolderScan(path)
    entries = sorted(path.iterdir())
    named = any(_BAND_FILE.search(f.name) or parse_landsat_name(f.name) for f in entries)
    if not named:
        entries = _granule_entries(path) or entries
    for f in entries:
        if (ls := parse_landsat_name(f.name)) is not None:
            scan.landsat.append((f, ls))
            continue
        if m := _BAND_FILE.search(f.name):
            band, res = m.group(1).upper(), int(m.group(2)) if m.group(2) else None
            if band == "B10":
                scan.l1c_marks.append((f, "B10, cirrus, exists only in Level-1C"))
            else:
                scan.s2.setdefault(band, []).append((f, res))
            if res is not None:
                scan.l2a_marks.append((f, "resolution-suffixed band files are Level-2A's"))
        if m := _SCL_FILE.search(f.name):
            scan.scl.append((f, int(m.group(1)) if m.group(1) else None))
        if m := _L2A_ONLY_FILE.search(f.name):
            scan.l2a_marks.append((f, f"{m.group(1).upper()} exists only in Level-2A"))
        if f.name.upper().startswith(("L1C_", "L2A_")) and _BAND_FILE.search(f.name):
            marks = scan.l1c_marks if f.name.upper().startswith("L1C_") else scan.l2a_marks
            marks.append((f, f"named {f.name[:3]}_"))
        if (acq := s2_file_acquisition(f.name)) is not None:
            scan.acquisitions.setdefault((acq[0], acq[1]), f)
    return scan


def _finest_file(folder: Path, label: str, files: Sequence[tuple[Path, int | None]]) -> Path:
    """One file per band: the finest where resolution-suffixed names give several."""
    if len(files) == 1:
        return files[0][0]
    resolutions = [r for _, r in files]
    if None in resolutions or len(set(resolutions)) != len(resolutions):
        a, b = files[0][0], files[1][0]
        raise InputRasterError(
            f"{folder}: two files for band {label}: {a.name} and {b.name}; keep one"
        )
    return min(files, key=lambda fr: fr[1] or 0)[0]


def _scl_of(scan: _FolderScan) -> Path | None:
    if not scan.scl:
        return None
    if len(scan.scl) > 1 and (
        any(r is None for _, r in scan.scl) or len({r for _, r in scan.scl}) != len(scan.scl)
    ):
        names = [f.name for f, _ in scan.scl]
        raise InputRasterError(f"{scan.folder}: several SCL files ({names}); keep one")
    chosen = min(scan.scl, key=lambda fr: fr[1] or 0)[0]
    info = raster_info(chosen)
    require_georeference(info, " (scene classification)")
    return chosen


def locate_scl(path: Path) -> Path | None:
    """The scene classification file (``SCL.tif``, ``..._SCL.tif``, ``..._SCL_20m.jp2``: the
    finest) of a band folder, if any.

    It must be a readable, georeferenced raster; it is read onto the compare grid by its own
    georeference, so its resolution and extent may differ from the bands'."""
    if not path.is_dir():
        return None
    return _scl_of(_scan_folder(path))


def locate_bands(path: Path, band_order: Sequence[str] | None = None) -> dict[str, BandSource]:
    """Map canonical band names to files/bands for a multi-band raster or a band folder; every
    file used is checked to be a readable raster."""
    return locate_input(path, band_order).bands


def locate_input(path: Path, band_order: Sequence[str] | None = None) -> LocalInput:
    """One date: its bands (a band folder, or a multi-band raster with ``band_order``), its SCL
    file and what product it is. Every file used is checked to be a readable raster; files or
    metadata that contradict each other on the product are refused, naming both."""
    if not path.exists():
        raise InputRasterError(f"{path}: no such file or folder")
    if not path.is_dir():
        return _locate_multiband(path, band_order)
    scan = _scan_folder(path)
    if scan.landsat and (scan.s2 or scan.scl):
        s2_file = next(iter(scan.s2.values()))[0][0] if scan.s2 else scan.scl[0][0]
        raise InputRasterError(
            f"{path}: mixes Sentinel-2 band files ({s2_file.name}) and Landsat files "
            f"({scan.landsat[0][0].name}); one date is one product: keep the files of one"
        )
    if scan.landsat:
        return _locate_landsat_folder(scan)
    return _locate_s2_folder(scan)


def _s2_names(names: Sequence[Statement]) -> tuple[list[Statement], list[Statement]]:
    """Levels and baselines of the Sentinel-2 product names among ``names``."""
    levels, baselines = [], []
    for n in names:
        if not (m := _S2_PRODUCT_NAME.search(n.value)):
            continue
        levels.append(Statement("L1C" if m.group(1).upper() == "1C" else "L2A", n.source))
        if (b := safe_name_baseline(n.value)) is not None:
            baselines.append(Statement(b, f"{n.source} (N{b.replace('.', '')})"))
    return levels, baselines


def _level_product(level: Statement | None) -> Product:
    if level is None:
        return "unknown"
    return "L1C" if level.value == "L1C" else "L2A"


def _one_level(path: Path, levels: Sequence[Statement]) -> Statement | None:
    """The product level the sources agree on; refuses a contradiction naming both sources."""
    for other in levels[1:]:
        if other.value != levels[0].value:
            raise InputRasterError(
                f"{path}: {levels[0].source} says {levels[0].value} but {other.source} says "
                f"{other.value}; one date is one product: keep the files and metadata of one"
            )
    return levels[0] if levels else None


def _locate_s2_folder(scan: _FolderScan) -> LocalInput:
    path = scan.folder
    found: dict[str, BandSource] = {}
    for band_id in sorted(scan.s2):
        found[canonical_band(band_id)] = BandSource(
            _finest_file(path, band_id, scan.s2[band_id]), 1
        )
    missing = [b for b in BANDS if b not in found]
    if missing:
        raise InputRasterError(
            f"{path}: band files for {missing} not found (need files named like B02.tif or "
            f"..._B02.tif for {', '.join(BANDS)}, or Landsat SR_B* files as USGS names them); "
            f"found {sorted(found) or 'none'}"
        )
    infos = [raster_info(found[name].path) for name in BANDS]
    if scan.l1c_marks and scan.l2a_marks:
        (a, why_a), (b, why_b) = scan.l1c_marks[0], scan.l2a_marks[0]
        raise InputRasterError(
            f"{path}: mixes Level-1C and Level-2A band files: {a.name} ({why_a}) and {b.name} "
            f"({why_b}); one date is one product: keep the files of one"
        )
    if len(scan.acquisitions) > 1:
        (k1, f1), (k2, f2) = list(scan.acquisitions.items())[:2]
        raise InputRasterError(
            f"{path}: files of several acquisitions: {f1.name} ({k1[0]} {k1[1]}) and {f2.name} "
            f"({k2[0]} {k2[1]}); one date is one acquisition: keep its files only"
        )
    scl = _scl_of(scan)
    stacs = _stac_items(_json_files(path))
    for item in stacs:
        if item.sensor == "landsat":
            raise InputRasterError(
                f"{path}: the STAC item {item.path} is Landsat but the band files are Sentinel-2 "
                f"({found['blue'].path.name}); keep the item of these files only"
            )
    start = found["blue"].path.parent
    safe_root = next((p for p in (path, *path.parents) if p.name.upper().endswith(".SAFE")), None)
    time = next(iter(scan.acquisitions))[1] if scan.acquisitions else ""
    try:
        mtd, safe = find_s2_product_metadata(start, safe_root or path, time)
    except SourceError as exc:
        raise InputRasterError(str(exc)) from None
    names = [Statement(safe.name, f"SAFE folder name {safe.name}")] if safe else []
    if safe is None or safe.resolve() != path.resolve():
        names.append(Statement(path.name, f"folder name {path.name}"))
    if mtd is not None and mtd.product_uri:
        names.append(Statement(mtd.product_uri, f"PRODUCT_URI {mtd.product_uri} in {mtd.path}"))
    stac = stacs[0] if stacs else None
    if stac is not None and stac.product_name:
        names.append(
            Statement(stac.product_name, f"product name {stac.product_name} in {stac.path}")
        )
    name_levels, name_baselines = _s2_names(names)
    levels: list[Statement] = []
    if stac is not None and stac.level is not None:
        levels.append(Statement(stac.level, stac.level_from))
    if mtd is not None:
        levels.append(Statement(mtd.level, str(mtd.path)))
    levels += name_levels
    levels += [Statement("L1C", f"band file {f.name} ({why})") for f, why in scan.l1c_marks[:1]]
    levels += [Statement("L2A", f"file {f.name} ({why})") for f, why in scan.l2a_marks[:1]]
    level = _one_level(path, levels)
    baselines: list[Statement] = []
    if stac is not None and stac.baseline is not None:
        baselines.append(
            Statement(stac.baseline, f"STAC item {stac.path} (s2:processing_baseline)")
        )
    if mtd is not None and mtd.baseline is not None:
        baselines.append(Statement(mtd.baseline, f"{mtd.path} (PROCESSING_BASELINE)"))
    baselines += name_baselines
    if level is not None:
        product_from = level.source
    else:
        product_from = (
            f"Sentinel-2 band file names ({found['blue'].path.name}, ...); the level is not "
            "told: no STAC item, MTD file or product name, no B10 (L1C) nor SCL/AOT/WVP (L2A) file"
        )
    metadata = [str(s.path) for s in stacs] + ([str(mtd.path)] if mtd else [])
    product = InputProduct(
        "sentinel-2",
        _level_product(level),
        product_from,
        (stac.platform if stac else None) or (mtd.platform if mtd else None),
        tuple(baselines),
        stac.offset_applied if stac else None,
        f"STAC item {stac.path}" if stac and stac.offset_applied is not None else "",
        mtd.add_offsets if mtd else (),
        mtd.quantification if mtd else None,
        mtd.path if mtd else None,
        all(i.integer for i in infos),
        tuple(metadata),
    )
    return LocalInput(path, found, scl, product)


def _locate_landsat_folder(scan: _FolderScan) -> LocalInput:
    path = scan.folder
    pids = sorted({ls.product_id for _, ls in scan.landsat})
    if len(pids) > 1:
        raise InputRasterError(
            f"{path}: files of several Landsat products ({', '.join(pids)}); one date is one "
            "product: keep the files of one"
        )
    first = scan.landsat[0][1]
    pid = first.product_id
    if not first.surface_reflectance:
        raise InputRasterError(
            f"{path}: {pid} is not Landsat Collection 2 Level-2 surface reflectance (level "
            f"{first.level}, collection {first.collection}); compare reads C2 L2 (L2SP/L2SR, "
            "collection 02) SR_B* files"
        )
    if first.platform is None:
        raise InputRasterError(f"{path}: {pid} is not a Landsat 4-9 product")
    ids = _landsat_ids(first.platform)
    found: dict[str, BandSource] = {}
    for f, ls in scan.landsat:
        name = ids.get(ls.band)
        if name is None:
            continue
        if name in found:
            raise InputRasterError(
                f"{path}: two files for band {ls.band}: {found[name].path.name} and {f.name}; "
                "keep one"
            )
        found[name] = BandSource(f, 1)
    missing = [b for b in BANDS if b not in found]
    if missing:
        need = ", ".join(f"{b}={i}" for i, b in ids.items() if b in BANDS)
        raise InputRasterError(
            f"{path}: Landsat {pid} ({first.platform}): files for {missing} not found (need "
            f"{pid}_SR_Bn.TIF for {need}); found {sorted(found) or 'none'}"
        )
    infos = [raster_info(found[name].path) for name in BANDS]
    try:
        mtl = find_landsat_mtl(path, pid)
    except SourceError as exc:
        raise InputRasterError(str(exc)) from None
    stacs = _stac_items(_json_files(path))
    for item in stacs:
        if item.sensor == "sentinel-2":
            raise InputRasterError(
                f"{path}: the STAC item {item.path} is Sentinel-2 but the band files are Landsat "
                f"({found['blue'].path.name}); keep the item of these files only"
            )
    metadata = ([str(mtl[0])] if mtl else []) + [str(s.path) for s in stacs]
    product = InputProduct(
        "landsat",
        "Landsat",
        f"USGS file names {pid}_SR_B*.TIF ({first.platform}, Collection 2 Level-2 surface "
        "reflectance)",
        first.platform,
        integer_dn=all(i.integer for i in infos),
        metadata=tuple(metadata),
    )
    return LocalInput(path, found, None, product)


def _locate_multiband(path: Path, band_order: Sequence[str] | None) -> LocalInput:
    info = raster_info(path)
    if band_order is None:
        raise InputRasterError(
            f"{path}: a multi-band raster needs --bands, its band order, e.g. "
            "--bands B02,B03,B04,B08,B11,B12"
        )
    sidecar = path.with_suffix(".json")
    stacs = _stac_items([sidecar]) if sidecar.is_file() else []
    stac = stacs[0] if stacs else None
    ls = parse_landsat_name(path.name)
    sensors: list[Statement] = []
    if ls is not None and ls.surface_reflectance and ls.platform is not None:
        sensors.append(Statement("landsat", f"USGS product id {ls.product_id} in the file name"))
    s2_levels, s2_baselines = _s2_names([Statement(path.name, f"product name in {path.name}")])
    if s2_levels:
        sensors.append(Statement("sentinel-2", s2_levels[0].source))
    if stac is not None and stac.sensor != "unknown":
        sensors.append(Statement(stac.sensor, f"STAC item {stac.path}"))
    sr_ids = [b for b in band_order if _LANDSAT_SR_ID.fullmatch(b.strip().upper())]
    if sr_ids:
        sensors.append(Statement("landsat", f"--bands {','.join(band_order)} (Landsat SR ids)"))
    for other in sensors[1:]:
        if other.value != sensors[0].value:
            raise InputRasterError(
                f"{path}: {sensors[0].source} says {sensors[0].value} but {other.source} says "
                f"{other.value}; fix the name, the STAC item or --bands"
            )
    sensor = sensors[0].value if sensors else "unknown"
    platform = (ls.platform if ls is not None else None) or (stac.platform if stac else None)
    names = [canonical_band(b, platform if sensor == "landsat" else None) for b in band_order]
    if len(names) != info.count:
        raise InputRasterError(
            f"{path}: --bands lists {len(names)} bands but the raster has {info.count}"
        )
    located = {n: BandSource(path, i + 1) for i, n in enumerate(names)}
    missing = [b for b in BANDS if b not in located]
    if missing:
        raise InputRasterError(f"{path}: --bands lacks {missing}; needed: {', '.join(BANDS)}")
    metadata = [str(s.path) for s in stacs]
    if sensor == "landsat":
        mtl = None
        if ls is not None:
            try:
                mtl = find_landsat_mtl(path.parent, ls.product_id)
            except SourceError as exc:
                raise InputRasterError(str(exc)) from None
        product = InputProduct(
            "landsat", "Landsat", f"{sensors[0].source} (Collection 2 Level-2 surface reflectance)",
            platform, integer_dn=info.integer,
            metadata=tuple([str(mtl[0])] if mtl else []) + tuple(metadata),
        )  # fmt: skip
    elif sensor == "sentinel-2":
        levels = [Statement(stac.level, stac.level_from)] if stac and stac.level else []
        level = _one_level(path, levels + s2_levels)
        baselines = (
            [Statement(stac.baseline, f"STAC item {stac.path} (s2:processing_baseline)")]
            if stac is not None and stac.baseline is not None
            else []
        ) + s2_baselines
        product = InputProduct(
            "sentinel-2",
            _level_product(level),
            level.source if level is not None else f"{sensors[0].source}; the level is not told",
            platform,
            tuple(baselines),
            stac.offset_applied if stac else None,
            f"STAC item {stac.path}" if stac and stac.offset_applied is not None else "",
            integer_dn=info.integer,
            metadata=tuple(metadata),
        )
    else:
        why = "no STAC item <name>.json beside it, no USGS or Sentinel-2 product name"
        if ls is not None:
            why = (
                f"{ls.product_id} is not Landsat Collection 2 Level-2 surface reflectance "
                f"(level {ls.level}, collection {ls.collection})"
            )
        product = InputProduct(
            "unknown", "unknown", why, platform, integer_dn=info.integer, metadata=tuple(metadata)
        )
    return LocalInput(path, located, None, product)


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
    zero_is_nodata: bool = False,
) -> NDArray[np.float32]:
    """The ``BANDS`` of a band set on ``grid`` (bilinear), as ``DN * scale + offset``; NaN outside
    the data, at its nodata value (and at DN 0 with ``zero_is_nodata``: Sentinel-2 and Landsat
    DN) or where scaling overflows. A band with a grid in ``via`` is first read onto that grid
    and then warped onto ``grid``, both bilinear."""
    out = np.full((len(BANDS), *grid.shape), np.nan, np.float32)
    for i, name in enumerate(BANDS):
        b = bands[name]
        detour = None if via is None else via.get(name)
        try:
            if detour is None:
                data = read_asset(b.path, grid, Resampling.bilinear, band=b.index)
            else:
                raw = read_asset(b.path, detour, Resampling.bilinear, band=b.index)
                if zero_is_nodata:
                    raw[raw == 0] = np.nan
                data = _warp(raw, detour, grid)
        except (RasterioError, OSError) as exc:
            raise InputRasterError(
                f"{b.path}: not a readable raster (reading band {name} failed: {exc})"
            ) from None
        if zero_is_nodata:
            data[data == 0] = np.nan
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
