"""A scene source over a local folder of GeoTIFF/JP2 scenes (downloaded or commercial).

An analyst points the pipeline at a folder (searched recursively) and gets ``Scene`` objects the
reader (``read.read_scene``) reads through the ordinary sensor profiles. Each file says what it is
in one of two ways.

**File names as the providers deliver them** (case-insensitive, ``.tif``/``.tiff``/``.jp2``):

- Sentinel-2 L2A granule files ``T51SUH_20230915T022549_B02_10m.jp2`` (SAFE layout) or
  ``T51SUH_20230915T022549_B02.tif``: one scene per tile and sensing time, id
  ``S2_T51SUH_20230915T022549``, profile ``earth-search/sentinel-2-l2a``. Bands B02 B03 B04 B08
  B11 B12 SCL become the asset keys blue green red nir swir16 swir22 scl; when a band comes at
  several resolutions the finest (by the file header) is taken. Other files of the product (B01,
  B8A, TCI, AOT, ...) are ignored. The processing baseline is, in this order: the
  ``MTD_MSIL2A.xml`` found walking up from the file (``<PROCESSING_BASELINE>``; when it lists
  ``BOA_ADD_OFFSET`` values, ``earthsearch:boa_offset_applied`` is False: a raw product is never
  harmonised), the ``_Nxxxx_`` of an enclosing ``.SAFE`` folder name, the folder config's
  ``processing_baseline``. When none gives it, ``s2:processing_baseline`` is absent and the
  reader assumes no offset and then decides it from the pixels (``radiometry.verify_boa_offset``
  and the season check ``radiometry.offset_outliers``); the verdict is recorded per scene. Files under
  an ``MTD_MSIL1C.xml`` (top-of-atmosphere Level-1C) are skipped with a warning; a Level-1C
  file without its metadata cannot be told apart by name, so keep L1C out of the folder. The
  walk up stops at the configured folder: point it at (or above) the ``.SAFE`` folder.
- Landsat Collection 2 Level-2 ``LC08_L2SP_116033_20200915_20200920_02_T1_SR_B2.TIF``: one scene
  per product id (the name without the band suffix), profile ``landsat-c2-l2``. OLI (LC08/LO08,
  LC09/LO09): blue=SR_B2 green=SR_B3 red=SR_B4 nir08=SR_B5 swir16=SR_B6 swir22=SR_B7; TM/ETM+
  (LT04, LT05, LE07): blue=SR_B1 green=SR_B2 red=SR_B3 nir08=SR_B4 swir16=SR_B5 swir22=SR_B7; plus
  ``_QA_PIXEL`` and ``_QA_RADSAT``. Platform ``landsat-4/5/7/8/9`` from the name. The acquisition
  date comes from the name (00:00 UTC); an ``_MTL.json`` (else ``_MTL.xml``, ``_MTL.txt``) beside
  the files gives the scene centre time and ``eo:cloud_cover``. Surface-reflectance assets carry
  ``raster:bands`` scale 2.75e-05, offset -0.2. Level-1 and Collection-1 names are skipped with a
  warning (other scaling).

**An index CSV** (``index``, relative to the folder) for anything else (renamed or commercial
files), one row per band file. Columns (header names exact, order free):

=====================  ========  ==============================================================
column                 required  values
=====================  ========  ==============================================================
scene_id               yes       letters, digits, ``_ . -``; rows sharing it form one scene
datetime               yes       ISO 8601; a date alone is 00:00 UTC, no offset means UTC
sensor                 yes       ``sentinel-2-l2a`` or ``landsat-c2-l2``
band                   yes       blue green red nir nir08 swir16 swir22 scl qa_pixel qa_radsat,
                                 or Sentinel-2 ids (B02 B03 B04 B08 B11 B12 SCL), or Landsat ids
                                 (SR_B1..SR_B7, QA_PIXEL, QA_RADSAT; SR ids need ``platform``)
path                   yes       the file, relative to the CSV (or absolute)
band_index             no        1-based band in the file; only 1 is read today
processing_baseline    no        ``NN.NN`` (Sentinel-2; else the folder config's)
boa_offset_applied     no        ``true``/``false`` (Sentinel-2)
platform               no        sentinel-2a/b/c, landsat-4/5/7/8/9
cloud_cover            no        percent, 0-100
=====================  ========  ==============================================================

Scene-level columns (datetime, sensor and the optional ones) may be given on any row of a scene
and must agree where repeated. Any bad row raises ``SourceError`` naming the CSV, the row (as a
spreadsheet numbers it: the header is row 1), the column, the value and what is allowed.

Every file is opened once, at indexing, for its CRS, transform and shape (local headers are
cheap); a scene's footprint is the union of its files' bounds in WGS84. A scene that lacks a band
is still indexed (and logged): the reader then raises ``SceneReadError`` and the run records the
scene as skipped with the reason.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import rasterio
import shapely
from pydantic import Field
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from pipeline.errors import SourceError
from pipeline.model import SourceConfigBase, content_hash
from pipeline.sites import Site
from pipeline.sources.base import Asset, Scene, SearchFilter
from pipeline.sources.sensors import LANDSAT_OFFSET, LANDSAT_SCALE, PROFILES

__all__ = ["FolderSource", "FolderSourceConfig", "open_folder"]

logger = logging.getLogger(__name__)

S2_COLLECTION = "sentinel-2-l2a"
LANDSAT_COLLECTION = "landsat-c2-l2"
# Collection -> the sensor profile that reads it (its asset keys key the scene's assets).
PROFILE_OF: Mapping[str, str] = {
    S2_COLLECTION: "earth-search/sentinel-2-l2a",
    LANDSAT_COLLECTION: "landsat-c2-l2",
}
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2")
BASELINE_PATTERN = r"^\d{2}\.\d{2}$"

# Sentinel-2 band ids -> Earth Search asset keys (the bands the profile reads).
S2_FILE_BANDS: Mapping[str, str] = {
    "B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16", "B12": "swir22",
    "SCL": "scl",
}  # fmt: skip
_QA_BANDS = {"QA_PIXEL": "qa_pixel", "QA_RADSAT": "qa_radsat"}
LANDSAT_OLI_BANDS: Mapping[str, str] = {
    "SR_B2": "blue", "SR_B3": "green", "SR_B4": "red", "SR_B5": "nir08", "SR_B6": "swir16",
    "SR_B7": "swir22", **_QA_BANDS,
}  # fmt: skip
LANDSAT_TM_BANDS: Mapping[str, str] = {
    "SR_B1": "blue", "SR_B2": "green", "SR_B3": "red", "SR_B4": "nir08", "SR_B5": "swir16",
    "SR_B7": "swir22", **_QA_BANDS,
}  # fmt: skip
LANDSAT_PLATFORMS: Mapping[str, str] = {
    "04": "landsat-4", "05": "landsat-5", "07": "landsat-7", "08": "landsat-8", "09": "landsat-9",
}  # fmt: skip
_OLI_PLATFORMS = frozenset({"landsat-8", "landsat-9"})
S2_PLATFORMS = ("sentinel-2a", "sentinel-2b", "sentinel-2c")
# Landsat C2 L2 surface reflectance: DN * 2.75e-05 - 0.2 (the blue asset's raster:bands decide).
LANDSAT_SR_BANDS: tuple[Mapping[str, Any], ...] = (
    {"scale": LANDSAT_SCALE, "offset": LANDSAT_OFFSET, "nodata": 0},
)
_LANDSAT_SR_KEYS = frozenset({"blue", "green", "red", "nir08", "swir16", "swir22"})

_S2_NAME = re.compile(
    r"^(?:L2A_)?T(?P<tile>\d{2}[A-Z]{3})_(?P<time>\d{8}T\d{6})_(?P<band>[A-Z0-9]{3})"
    r"(?:_(?P<res>\d{2})m)?\.(?:tif|tiff|jp2)$",
    re.IGNORECASE,
)
_LANDSAT_NAME = re.compile(
    r"^(?P<pid>L(?P<sensor>[COTEM])(?P<mission>\d{2})_(?P<level>L[12][A-Z]{2})_\d{6}_"
    r"(?P<acquired>\d{8})_\d{8}_(?P<collection>\d{2})_(?P<tier>[A-Z0-9]{2}))_"
    r"(?P<band>[A-Z0-9_]+)\.(?:tif|tiff)$",
    re.IGNORECASE,
)
_SAFE_BASELINE = re.compile(r"_N(\d{2})(\d{2})_", re.IGNORECASE)
_SAFE_PLATFORM = re.compile(r"^S2([ABC])_", re.IGNORECASE)
_SCENE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class FolderSourceConfig(SourceConfigBase):
    """A local folder of GeoTIFF/JP2 scenes, described by their provider file names or by an
    index CSV (see ``pipeline.sources.folder``)."""

    path_fields = ("path",)
    kind: Literal["folder"] = Field(
        "folder", description="a local folder of GeoTIFF/JP2 scenes (downloaded or commercial)"
    )
    path: Path = Field(description="folder of GeoTIFF/JP2 scenes, searched recursively")
    index: Path | None = Field(
        None,
        description="CSV index for files whose names do not say what they are (columns "
        "scene_id, datetime, sensor, band, path, band_index, processing_baseline, "
        "boa_offset_applied, platform, cloud_cover); relative to path",
    )
    processing_baseline: str | None = Field(
        None,
        pattern=BASELINE_PATTERN,
        description="Sentinel-2 processing baseline (e.g. 05.09) of scenes whose MTD_MSIL2A.xml, "
        "SAFE folder name and index row do not give one; when absent the BOA offset is decided "
        "from the pixels",
    )
    max_cloud_cover: float | None = Field(
        None,
        ge=0,
        le=100,
        strict=True,
        description="scenes with eo:cloud_cover above this (%) are not read",
    )
    platforms: tuple[str, ...] = Field(
        (), description="only these platforms (e.g. sentinel-2a, landsat-8); all when empty"
    )

    def search_filter(self) -> SearchFilter:
        return SearchFilter(self.max_cloud_cover, self.platforms)

    def index_path(self) -> Path | None:
        """The index CSV, resolved against ``path`` when relative."""
        if self.index is None:
            return None
        return self.index if self.index.is_absolute() else self.path / self.index

    def hash_data(self) -> dict[str, Any]:
        data = super().hash_data()
        index = self.index_path()
        if index is not None and index.is_file():
            data["index"] = content_hash(index)
        return data


def open_folder(config: FolderSourceConfig) -> FolderSource:
    """The configured folder, indexed."""
    return FolderSource(
        config.path, config.index, config.processing_baseline, config.search_filter()
    )


@dataclass(frozen=True)
class _Header:
    """What a file header says: its lattice and its footprint in WGS84."""

    crs: str
    transform: tuple[float, ...]
    shape: tuple[int, int]
    count: int
    footprint: BaseGeometry

    @property
    def pixel_size(self) -> float:
        return abs(self.transform[0])


def _read_header(path: Path) -> _Header:
    """Open ``path`` once; raises ``SourceError`` when it is no georeferenced raster."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise SourceError(f"{path}: raster has no coordinate reference system")
            if src.transform.b != 0 or src.transform.d != 0:
                raise SourceError(
                    f"{path}: rotated geotransform {tuple(src.transform)[:6]}; only north-up "
                    "rasters are supported (gdalwarp the file first)"
                )
            epsg = src.crs.to_epsg()
            crs = f"EPSG:{epsg}" if epsg else src.crs.to_string()
            west, south, east, north = transform_bounds(
                src.crs, "EPSG:4326", *src.bounds, densify_pts=21
            )
            return _Header(
                crs,
                tuple(float(v) for v in tuple(src.transform)[:6]),
                (int(src.height), int(src.width)),
                int(src.count),
                _lonlat_box(west, south, east, north),
            )
    except (RasterioError, OSError) as exc:
        if isinstance(exc, SourceError):
            raise
        raise SourceError(f"{path}: not a readable raster ({exc})") from None


def _lonlat_box(west: float, south: float, east: float, north: float) -> BaseGeometry:
    """A WGS84 box; one that crosses the antimeridian (west > east) as two boxes."""
    if west <= east:
        return box(west, south, east, north)
    return shapely.union(box(west, south, 180.0, north), box(-180.0, south, east, north))


@dataclass
class _Band:
    """One file standing for one asset of a scene."""

    path: Path
    header: _Header | None  # None when the file cannot be opened (the reader will say why)
    raster_bands: tuple[Mapping[str, Any], ...] = ()

    def asset(self) -> Asset:
        h = self.header
        return Asset(
            str(self.path),
            h.transform if h else None,
            h.shape if h else None,
            self.raster_bands,
        )


@dataclass
class _Draft:
    """A scene being assembled from its files."""

    id: str
    collection: str
    datetime: datetime
    properties: dict[str, Any]
    bands: dict[str, _Band] = field(default_factory=dict)
    origin: str = ""

    def scene(self) -> Scene:
        headers = [b.header for b in self.bands.values() if b.header is not None]
        crs_set = sorted({h.crs for h in headers})
        if len(crs_set) > 1:
            logger.warning("scene %s: files in several CRSs %s", self.id, crs_set)
        first = next((self.bands[k] for k in _READ_ORDER if k in self.bands), None)
        crs = first.header.crs if first is not None and first.header is not None else None
        props = dict(self.properties)
        props["datetime"] = self.datetime.isoformat().replace("+00:00", "Z")
        return Scene(
            self.id,
            self.collection,
            self.datetime,
            {k: self.bands[k].asset() for k in sorted(self.bands)},
            props,
            PROFILE_OF[self.collection],
            crs or (crs_set[0] if crs_set else None),
        )

    def footprint(self) -> BaseGeometry | None:
        boxes = [b.header.footprint for b in self.bands.values() if b.header is not None]
        return shapely.union_all(boxes) if boxes else None

    def missing(self) -> list[str]:
        profile = PROFILES[PROFILE_OF[self.collection]]
        optional = {profile.saturation_asset} if profile.saturation_asset else set()
        return [k for k in profile.asset_keys() if k not in self.bands and k not in optional]


_READ_ORDER = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22", "scl", "qa_pixel")


@dataclass(frozen=True)
class _Entry:
    scene: Scene
    footprint: BaseGeometry


class FolderSource:
    """A ``SceneSource`` over a local folder of GeoTIFF/JP2 scenes (see the module docstring
    for the file-name rules and the index CSV).

    ``path`` is searched recursively; ``index`` is a CSV (relative to ``path`` or absolute);
    ``processing_baseline`` is the Sentinel-2 baseline of scenes whose metadata does not give it
    (None: the BOA offset is decided from the pixels by the reader's check); ``search_filter``
    drops scenes by cloud cover and platform. Everything is indexed once, here; ``search``
    returns the scenes whose footprint intersects the site polygon and whose UTC date lies in
    [start, end], sorted by (datetime, id). Raises ``SourceError`` for a missing folder, a bad
    index row, an ambiguous scene (two files for one band at one resolution, two products of one
    acquisition) or unreadable product metadata.
    """

    name = "folder"

    def __init__(
        self,
        path: Path,
        index: Path | None = None,
        processing_baseline: str | None = None,
        search_filter: SearchFilter | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise SourceError(f"{self.path}: scene folder not found (or not a folder)")
        if processing_baseline is not None and not re.match(BASELINE_PATTERN, processing_baseline):
            raise SourceError(
                f"processing_baseline {processing_baseline!r} is not a baseline; allowed: "
                "NN.NN such as 04.00 or 05.09"
            )
        if index is not None:
            index = Path(index)
            index = index if index.is_absolute() else self.path / index
        self.index = index
        self.processing_baseline = processing_baseline
        self.search_filter = search_filter or SearchFilter()
        drafts: list[_Draft] = []
        listed: set[Path] = set()
        if self.index is not None:
            csv_drafts, listed = _CsvIndex(self.index, processing_baseline).drafts()
            drafts.extend(csv_drafts)
        drafts.extend(_scan_names(self.path, listed, processing_baseline))
        entries: list[_Entry] = []
        seen: dict[str, str] = {}
        for d in drafts:
            if d.id in seen:
                raise SourceError(
                    f"{self.path}: scene id {d.id!r} comes from {seen[d.id]} and from {d.origin}; "
                    "scene ids must be unique (rename the index scene_id)"
                )
            seen[d.id] = d.origin
            footprint = d.footprint()
            if footprint is None:
                logger.warning(
                    "scene %s (%s): no file could be opened; not indexed", d.id, d.origin
                )
                continue
            missing = d.missing()
            if missing:
                logger.warning(
                    "scene %s (%s) lacks %s; indexed, and a run will record it as skipped",
                    d.id,
                    d.origin,
                    missing,
                )
            entries.append(_Entry(d.scene(), footprint))
        entries.sort(key=lambda e: (e.scene.datetime, e.scene.id))
        self._entries = tuple(entries)
        logger.info("%s: %d scenes indexed", self.path, len(entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Scene]:
        return (e.scene for e in self._entries)

    @property
    def scenes(self) -> tuple[Scene, ...]:
        """Every indexed scene, sorted by (datetime, id)."""
        return tuple(e.scene for e in self._entries)

    def footprint(self, scene_id: str) -> BaseGeometry:
        """A scene's footprint (WGS84): the union of its files' bounds."""
        for e in self._entries:
            if e.scene.id == scene_id:
                return e.footprint
        raise KeyError(scene_id)

    def search(self, site: Site, start: date, end: date) -> list[Scene]:
        """Scenes whose footprint intersects ``site`` with a UTC date in [start, end] that the
        search filter accepts, sorted by (datetime, id)."""
        found = []
        for e in self._entries:
            day = e.scene.datetime.astimezone(UTC).date()
            if not start <= day <= end:
                continue
            if not e.footprint.intersects(site.geometry):
                continue
            if not self.search_filter.accepts(e.scene.properties):
                continue
            found.append(e.scene)
        return found


# --- file names ---------------------------------------------------------------------------------


def _raster_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(RASTER_SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name


def _scan_names(root: Path, skip: set[Path], config_baseline: str | None) -> list[_Draft]:
    """Scenes from provider file names under ``root`` (files in ``skip`` are the index's)."""
    s2: dict[tuple[str, str], list[tuple[str, Path]]] = defaultdict(list)
    landsat: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    landsat_match: dict[str, re.Match[str]] = {}
    warned: set[str] = set()

    def warn_once(key: str, message: str, *args: Any) -> None:
        if key not in warned:
            warned.add(key)
            logger.warning(message, *args)

    for path in _raster_files(root):
        if path.resolve() in skip:
            continue
        if m := _S2_NAME.match(path.name):
            band = m["band"].upper()
            if band in S2_FILE_BANDS:
                s2[(m["tile"].upper(), m["time"].upper())].append((band, path))
        elif m := _LANDSAT_NAME.match(path.name):
            pid = m["pid"].upper()
            if m["level"].upper() not in ("L2SP", "L2SR") or m["collection"] != "02":
                warn_once(
                    pid,
                    "%s: %s is not Collection 2 Level-2 surface reflectance (level %s, "
                    "collection %s); skipped",
                    path.parent,
                    pid,
                    m["level"],
                    m["collection"],
                )
                continue
            if m["mission"] not in LANDSAT_PLATFORMS:
                warn_once(pid, "%s: %s is not a Landsat 4-9 product; skipped", path.parent, pid)
                continue
            landsat[pid].append((m["band"].upper(), path))
            landsat_match[pid] = m
    drafts = [
        d
        for (tile, time), files in sorted(s2.items())
        if (d := _s2_draft(root, tile, time, files, config_baseline, warn_once)) is not None
    ]
    drafts += [
        _landsat_draft(pid, landsat_match[pid], files) for pid, files in sorted(landsat.items())
    ]
    return drafts


def _choose(
    scene_id: str, files: Iterable[tuple[str, Path]], keys: Mapping[str, str]
) -> dict[str, _Band]:
    """One file per asset key: the finest pixel size where a band comes at several."""
    chosen: dict[str, _Band] = {}
    for band, path in files:
        key = keys.get(band)
        if key is None:
            continue
        try:
            header: _Header | None = _read_header(path)
        except SourceError as exc:
            logger.warning("scene %s: %s; the reader will fail on it", scene_id, exc)
            header = None
        new = _Band(path, header)
        old = chosen.get(key)
        if old is None:
            chosen[key] = new
            continue
        if old.header is None or header is None or old.header.pixel_size == header.pixel_size:
            raise SourceError(
                f"scene {scene_id}: two files for band {band}"
                + (f" at {header.pixel_size:g} m" if header is not None else "")
                + f": {old.path} and {path}; keep one"
            )
        if header.pixel_size < old.header.pixel_size:
            chosen[key] = new
    return chosen


# --- Sentinel-2 ---


@dataclass(frozen=True)
class _S2Metadata:
    path: Path
    baseline: str | None
    boa_offsets: tuple[float, ...]
    cloud_cover: float | None
    platform: str | None
    product_uri: str | None
    level: Literal["L2A", "L1C"]


def _parse_s2_metadata(path: Path) -> _S2Metadata:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise SourceError(f"{path}: Sentinel-2 product metadata not readable ({exc})") from None
    texts: dict[str, list[str]] = defaultdict(list)
    for el in root.iter():
        if isinstance(el.tag, str) and el.text and el.text.strip():
            texts[el.tag.rsplit("}", 1)[-1]].append(el.text.strip())

    def first(tag: str) -> str | None:
        return texts[tag][0] if texts.get(tag) else None

    baseline = first("PROCESSING_BASELINE")
    if baseline is not None and not re.match(BASELINE_PATTERN, baseline):
        raise SourceError(
            f"{path}: <PROCESSING_BASELINE> {baseline!r} is not a baseline; expected NN.NN"
        )
    try:
        offsets = tuple(float(v) for v in texts.get("BOA_ADD_OFFSET", []))
        cover = first("Cloud_Coverage_Assessment")
        cloud = float(cover) if cover is not None else None
    except ValueError as exc:
        raise SourceError(f"{path}: unreadable number in product metadata ({exc})") from None
    spacecraft = first("SPACECRAFT_NAME")
    level: Literal["L2A", "L1C"] = "L1C" if path.name.upper() == "MTD_MSIL1C.XML" else "L2A"
    return _S2Metadata(
        path,
        baseline,
        offsets,
        cloud if cloud is not None and 0 <= cloud <= 100 else None,
        spacecraft.lower() if spacecraft else None,
        first("PRODUCT_URI"),
        level,
    )


def _s2_metadata_for(root: Path, start: Path, time: str) -> tuple[_S2Metadata | None, Path | None]:
    """The product metadata (``MTD_MSIL2A.xml``/``MTD_MSIL1C.xml``) and the ``.SAFE`` folder
    found walking up from the folder ``start`` to ``root``; metadata of another acquisition
    (by its ``PRODUCT_URI``) is ignored."""
    meta: _S2Metadata | None = None
    safe: Path | None = None
    folder = start
    root = root.resolve()
    while True:
        if safe is None and folder.name.upper().endswith(".SAFE") and time in folder.name.upper():
            safe = folder
        if meta is None:
            for name in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml"):
                candidate = _find_case_insensitive(folder, name)
                if candidate is None:
                    continue
                parsed = _parse_s2_metadata(candidate)
                if parsed.product_uri and time not in parsed.product_uri.upper():
                    logger.warning(
                        "%s describes %s, not the acquisition %s of the files in %s; ignored",
                        candidate,
                        parsed.product_uri,
                        time,
                        start,
                    )
                    continue
                meta = parsed
                break
        if folder.resolve() == root or folder.parent == folder:
            break
        folder = folder.parent
    return meta, safe


def _find_case_insensitive(folder: Path, name: str) -> Path | None:
    exact = folder / name
    if exact.is_file():
        return exact
    for entry in _listing(folder):
        if entry.name.lower() == name.lower() and entry.is_file():
            return entry
    return None


def _listing(folder: Path) -> tuple[Path, ...]:
    try:
        return tuple(sorted(folder.iterdir()))
    except OSError:
        return ()


def _s2_draft(
    root: Path,
    tile: str,
    time: str,
    files: list[tuple[str, Path]],
    config_baseline: str | None,
    warn_once: Callable[..., None],
) -> _Draft | None:
    scene_id = f"S2_T{tile}_{time}"
    # One walk per folder (R10m, R20m, R60m of a SAFE), not per file.
    found = {d: _s2_metadata_for(root, d, time) for d in sorted({f.parent for _, f in files})}
    products = {(m.path if m else None, s): (m, s) for m, s in found.values()}
    if len(products) > 1:
        where = sorted(str(m or s or "no metadata") for m, s in products)
        raise SourceError(
            f"scene {scene_id}: files from several products ({', '.join(where)}); two products "
            "of one acquisition (e.g. a reprocessing) cannot be mixed: keep one"
        )
    meta, safe = next(iter(products.values()))
    if meta is not None and meta.level == "L1C":
        warn_once(
            scene_id, "%s: Level-1C (top of atmosphere) under %s; skipped", scene_id, meta.path
        )
        return None
    when = datetime.strptime(time, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    props: dict[str, Any] = {}
    origin = f"file names under {files[0][1].parent}"
    if meta is not None and meta.baseline is not None:
        props["s2:processing_baseline"] = meta.baseline
        props["sitewatch:baseline_from"] = str(meta.path)
    elif safe is not None and (b := _SAFE_BASELINE.search(safe.name)):
        props["s2:processing_baseline"] = f"{b[1]}.{b[2]}"
        props["sitewatch:baseline_from"] = f"SAFE folder name {safe.name}"
    elif config_baseline is not None:
        props["s2:processing_baseline"] = config_baseline
        props["sitewatch:baseline_from"] = "folder config processing_baseline"
    else:
        props["sitewatch:baseline_from"] = "none: the BOA offset is decided from the pixels"
    if meta is not None and meta.boa_offsets:
        props["earthsearch:boa_offset_applied"] = False
        props["s2:boa_add_offset"] = meta.boa_offsets[0]
        if any(v != -1000 for v in meta.boa_offsets):
            logger.warning(
                "%s: BOA_ADD_OFFSET %s, not -1000; the reader applies the baseline rule",
                meta.path,
                sorted(set(meta.boa_offsets)),
            )
    platform = meta.platform if meta is not None else None
    if platform is None and safe is not None and (p := _SAFE_PLATFORM.match(safe.name)):
        platform = f"sentinel-2{p[1].lower()}"
    if platform:
        props["platform"] = platform
    if meta is not None and meta.cloud_cover is not None:
        props["eo:cloud_cover"] = meta.cloud_cover
    bands = _choose(scene_id, files, S2_FILE_BANDS)
    return _Draft(scene_id, S2_COLLECTION, when, props, bands, origin)


# --- Landsat ---

_MTL_KEYS = ("DATE_ACQUIRED", "SCENE_CENTER_TIME", "CLOUD_COVER", "SUN_ELEVATION", "SUN_AZIMUTH")


def _landsat_draft(pid: str, m: re.Match[str], files: list[tuple[str, Path]]) -> _Draft:
    platform = LANDSAT_PLATFORMS[m["mission"]]
    keys = LANDSAT_OLI_BANDS if platform in _OLI_PLATFORMS else LANDSAT_TM_BANDS
    when = datetime.strptime(m["acquired"], "%Y%m%d").replace(tzinfo=UTC)
    props: dict[str, Any] = {"platform": platform}
    folder = files[0][1].parent
    mtl = _read_mtl(folder, pid)
    if mtl is not None:
        source, values = mtl
        props["sitewatch:metadata"] = str(source)
        when = _mtl_datetime(values, when, source)
        try:
            cover = float(values.get("CLOUD_COVER", "nan"))
        except ValueError:
            cover = float("nan")
        if 0 <= cover <= 100:
            props["eo:cloud_cover"] = cover
        props.update(_mtl_sun(values))
    bands = _choose(pid, files, keys)
    for key, band in bands.items():
        if key in _LANDSAT_SR_KEYS:
            band.raster_bands = LANDSAT_SR_BANDS
    return _Draft(pid, LANDSAT_COLLECTION, when, props, bands, f"file names under {folder}")


def _read_mtl(folder: Path, pid: str) -> tuple[Path, dict[str, str]] | None:
    """The acquisition keys of ``<pid>_MTL.json`` (else ``.xml``, ``.txt``) in ``folder``."""
    for ext in ("json", "xml", "txt"):
        path = _find_case_insensitive(folder, f"{pid}_MTL.{ext}")
        if path is None:
            continue
        try:
            text = path.read_text(encoding="utf-8")
            if ext == "json":
                values = _flatten_keys(json.loads(text))
            elif ext == "xml":
                values = {
                    el.tag: el.text.strip()
                    for el in ET.fromstring(text).iter()
                    if isinstance(el.tag, str) and el.text and el.text.strip()
                }
            else:
                values = dict(re.findall(r'^\s*([A-Z0-9_]+)\s*=\s*"?([^"\n]*?)"?\s*$', text, re.M))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ET.ParseError) as exc:
            raise SourceError(f"{path}: Landsat metadata not readable ({exc})") from None
        return path, {k: values[k] for k in _MTL_KEYS if k in values}
    return None


def _mtl_sun(values: Mapping[str, str]) -> dict[str, float]:
    """The sun's angles of an MTL as STAC view properties (cloud shadows are matched with them,
    ``masking.match_cloud_shadows``); none when either is missing or not a number."""
    try:
        elevation, azimuth = float(values["SUN_ELEVATION"]), float(values["SUN_AZIMUTH"])
    except (KeyError, ValueError):
        return {}
    if not (-90 <= elevation <= 90 and -360 <= azimuth <= 360):
        return {}
    return {"view:sun_elevation": elevation, "view:sun_azimuth": azimuth}


def _flatten_keys(doc: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            if isinstance(v, Mapping | list):
                for kk, vv in _flatten_keys(v).items():
                    out.setdefault(kk, vv)
            else:
                out.setdefault(str(k), str(v))
    elif isinstance(doc, list):
        for v in doc:
            for kk, vv in _flatten_keys(v).items():
                out.setdefault(kk, vv)
    return out


def _mtl_datetime(values: Mapping[str, str], fallback: datetime, source: Path) -> datetime:
    day = values.get("DATE_ACQUIRED")
    clock = values.get("SCENE_CENTER_TIME")
    if not day:
        return fallback
    text = day if not clock else f"{day}T{clock}"
    # SCENE_CENTER_TIME carries 7 fractional digits ("14:31:47.8083990Z"): keep microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = _parse_iso(text)
    except ValueError:
        logger.warning(
            "%s: acquisition time %r unreadable; using the file name's date", source, text
        )
        return fallback
    if parsed.date() != fallback.date():
        logger.warning(
            "%s: DATE_ACQUIRED %s differs from the file name's %s; using the metadata",
            source,
            parsed.date(),
            fallback.date(),
        )
    return parsed


def _parse_iso(text: str) -> datetime:
    """ISO 8601 date or datetime as aware UTC; a date alone is 00:00 UTC, no offset is UTC."""
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- index CSV ----------------------------------------------------------------------------------

REQUIRED_COLUMNS = ("scene_id", "datetime", "sensor", "band", "path")
OPTIONAL_COLUMNS = (
    "band_index",
    "processing_baseline",
    "boa_offset_applied",
    "platform",
    "cloud_cover",
)
_SCENE_COLUMNS = ("datetime", "sensor", *OPTIONAL_COLUMNS[1:])
# Band values per sensor (lower-cased) -> asset key; Landsat SR_Bn ids depend on the platform.
_CSV_S2_BANDS: Mapping[str, str] = {
    **{k: k for k in S2_FILE_BANDS.values()},
    **{k.lower(): v for k, v in S2_FILE_BANDS.items()},
}
_CSV_LANDSAT_BANDS: Mapping[str, str] = {
    **{
        k: k for k in ("blue", "green", "red", "nir08", "swir16", "swir22", "qa_pixel", "qa_radsat")
    },
    "nir": "nir08",
}


@dataclass
class _Row:
    number: int
    values: dict[str, str]


class _CsvIndex:
    """Parse and validate an index CSV into scene drafts."""

    def __init__(self, path: Path, config_baseline: str | None) -> None:
        self.path = path
        self.config_baseline = config_baseline

    def fail(self, row: int, column: str, value: str, allowed: str) -> SourceError:
        return SourceError(f"{self.path}: row {row}, column {column!r}: {value!r} {allowed}")

    def rows(self) -> list[_Row]:
        if not self.path.is_file():
            raise SourceError(f"{self.path}: index CSV not found")
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header is None:
                    raise SourceError(f"{self.path}: index CSV is empty; needs a header row")
                columns = [c.strip() for c in header]
                self._check_header(columns)
                rows = []
                for values in reader:
                    if not any(v.strip() for v in values):
                        continue
                    if len(values) > len(columns):
                        raise SourceError(
                            f"{self.path}: row {reader.line_num} has {len(values)} values but "
                            f"the header has {len(columns)} columns"
                        )
                    padded = [*values, *[""] * (len(columns) - len(values))]
                    rows.append(
                        _Row(
                            reader.line_num,
                            {c: v.strip() for c, v in zip(columns, padded, strict=True)},
                        )
                    )
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise SourceError(f"{self.path}: index CSV not readable ({exc})") from None
        if not rows:
            raise SourceError(f"{self.path}: index CSV has a header but no rows")
        return rows

    def _check_header(self, columns: list[str]) -> None:
        allowed = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        unknown = [c for c in columns if c not in allowed]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if unknown or missing or repeated:
            problems = [
                f"unknown columns {unknown}" if unknown else "",
                f"missing columns {missing}" if missing else "",
                f"repeated columns {repeated}" if repeated else "",
            ]
            raise SourceError(
                f"{self.path}: row 1 (header): {'; '.join(p for p in problems if p)}; required: "
                f"{', '.join(REQUIRED_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)}"
            )

    def drafts(self) -> tuple[list[_Draft], set[Path]]:
        """The index's scenes and the (resolved) files it lists."""
        by_scene: dict[str, list[_Row]] = defaultdict(list)
        for row in self.rows():
            scene_id = row.values["scene_id"]
            if not _SCENE_ID.match(scene_id):
                raise self.fail(
                    row.number,
                    "scene_id",
                    scene_id,
                    "is not a scene id; allowed: 1-128 letters, digits, '_', '.', '-', "
                    "starting with a letter or digit",
                )
            by_scene[scene_id].append(row)
        drafts = [self._draft(scene_id, rows) for scene_id, rows in by_scene.items()]
        listed = {b.path.resolve() for d in drafts for b in d.bands.values()}
        return drafts, listed

    def _parse_value(self, row: _Row, column: str) -> Any:
        """One scene-level cell, validated; None when empty."""
        value = row.values.get(column, "")
        if not value:
            return None
        if column == "sensor":
            if value.lower() not in PROFILE_OF:
                raise self.fail(
                    row.number, column, value, f"is unknown; allowed: {', '.join(PROFILE_OF)}"
                )
            return value.lower()
        if column == "datetime":
            try:
                return _parse_iso(value)
            except ValueError:
                raise self.fail(
                    row.number,
                    column,
                    value,
                    "is not an ISO 8601 date or datetime; allowed e.g. 2023-09-15 (00:00 UTC) "
                    "or 2023-09-15T02:25:49Z (no offset: UTC)",
                ) from None
        if column == "processing_baseline":
            if not re.match(BASELINE_PATTERN, value):
                raise self.fail(
                    row.number,
                    column,
                    value,
                    "is not a processing baseline; allowed: NN.NN such as 04.00 or 05.09",
                )
            return value
        if column == "boa_offset_applied":
            if value.lower() not in ("true", "false"):
                raise self.fail(row.number, column, value, "is not a boolean; allowed: true, false")
            return value.lower() == "true"
        if column == "platform":
            known = (*S2_PLATFORMS, *LANDSAT_PLATFORMS.values())
            if value.lower() not in known:
                raise self.fail(
                    row.number, column, value, f"is not a platform; allowed: {', '.join(known)}"
                )
            return value.lower()
        if column == "cloud_cover":
            try:
                cloud = float(value)
            except ValueError:
                cloud = float("nan")
            if not 0 <= cloud <= 100:
                raise self.fail(row.number, column, value, "is not a percentage; allowed: 0-100")
            return cloud
        raise AssertionError(column)

    def _scene_value(self, rows: list[_Row], column: str) -> tuple[Any, int] | None:
        """The one validated value of a scene-level column over a scene's rows, with its row;
        rows that give it must agree."""
        found: tuple[Any, int] | None = None
        for row in rows:
            parsed = self._parse_value(row, column)
            if parsed is None:
                continue
            if found is None:
                found = (parsed, row.number)
            elif parsed != found[0]:
                raise self.fail(
                    row.number,
                    column,
                    row.values[column],
                    f"contradicts row {found[1]} ({found[0]!s}) of scene "
                    f"{row.values['scene_id']!r}; rows of one scene must agree",
                )
        return found

    def _draft(self, scene_id: str, rows: list[_Row]) -> _Draft:
        first = rows[0].number
        values = {c: self._scene_value(rows, c) for c in _SCENE_COLUMNS}
        sensor_v, when_v = values["sensor"], values["datetime"]
        if sensor_v is None:
            raise self.fail(first, "sensor", "", f"is empty; allowed: {', '.join(PROFILE_OF)}")
        if when_v is None:
            raise self.fail(
                first,
                "datetime",
                "",
                "is empty on every row of the scene; allowed: ISO 8601, e.g. 2023-09-15",
            )
        sensor: str = sensor_v[0]
        when: datetime = when_v[0]
        props: dict[str, Any] = {}
        platform_v = values["platform"]
        platform: str | None = platform_v[0] if platform_v else None
        if platform_v is not None:
            allowed_platforms = (
                S2_PLATFORMS if sensor == S2_COLLECTION else tuple(LANDSAT_PLATFORMS.values())
            )
            if platform not in allowed_platforms:
                raise self.fail(
                    platform_v[1], "platform", platform_v[0],
                    f"is not a {sensor} platform; allowed: {', '.join(allowed_platforms)}",
                )  # fmt: skip
            props["platform"] = platform
        if values["cloud_cover"] is not None:
            props["eo:cloud_cover"] = values["cloud_cover"][0]
        baseline_v, applied_v = values["processing_baseline"], values["boa_offset_applied"]
        if sensor == S2_COLLECTION:
            if baseline_v is not None:
                props["s2:processing_baseline"] = baseline_v[0]
                props["sitewatch:baseline_from"] = f"{self.path} row {baseline_v[1]}"
            elif self.config_baseline is not None:
                props["s2:processing_baseline"] = self.config_baseline
                props["sitewatch:baseline_from"] = "folder config processing_baseline"
            else:
                props["sitewatch:baseline_from"] = "none: the BOA offset is decided from the pixels"
            if applied_v is not None:
                props["earthsearch:boa_offset_applied"] = applied_v[0]
        else:
            for v, column in (
                (baseline_v, "processing_baseline"),
                (applied_v, "boa_offset_applied"),
            ):
                if v is not None:
                    raw = next(r.values[column] for r in rows if r.number == v[1])
                    raise self.fail(
                        v[1],
                        column,
                        raw,
                        f"applies to {S2_COLLECTION} only; leave it empty for {sensor}",
                    )
        bands: dict[str, _Band] = {}
        band_rows: dict[str, int] = {}
        for row in rows:
            key = self._band_key(row, sensor, platform)
            if key in bands:
                raise self.fail(
                    row.number, "band", row.values["band"],
                    f"repeats the {key} of row {band_rows[key]} in scene {scene_id!r}; one file per band",
                )  # fmt: skip
            path = self._file(row)
            band_index = self._band_index(row)
            try:
                header = _read_header(path)
            except SourceError as exc:
                raise self.fail(
                    row.number, "path", row.values["path"], f"is unusable: {exc}"
                ) from None
            if band_index > header.count:
                raise self.fail(
                    row.number,
                    "band_index",
                    str(band_index),
                    f"exceeds the {header.count} bands of {path}",
                )
            raster_bands = (
                LANDSAT_SR_BANDS if sensor == LANDSAT_COLLECTION and key in _LANDSAT_SR_KEYS else ()
            )
            bands[key] = _Band(path, header, raster_bands)
            band_rows[key] = row.number
        return _Draft(
            scene_id,
            sensor,
            when,
            props,
            bands,
            f"{self.path} rows {', '.join(str(r.number) for r in rows)}",
        )

    def _band_key(self, row: _Row, sensor: str, platform: str | None) -> str:
        value = row.values["band"]
        v = value.lower()
        if sensor == S2_COLLECTION:
            if v in _CSV_S2_BANDS:
                return _CSV_S2_BANDS[v]
            allowed = ", ".join([*S2_FILE_BANDS.values(), *S2_FILE_BANDS])
            raise self.fail(
                row.number,
                "band",
                value,
                f"is not a {sensor} band read by the pipeline; allowed: {allowed}",
            )
        if v in _CSV_LANDSAT_BANDS:
            return _CSV_LANDSAT_BANDS[v]
        ids = {**LANDSAT_OLI_BANDS, **LANDSAT_TM_BANDS}
        if value.upper() in ids:
            if platform is None:
                raise self.fail(
                    row.number, "band", value,
                    "is a Landsat band number, which differs between TM/ETM+ (landsat-4/5/7) and "
                    "OLI (landsat-8/9): give the platform column, or use blue, green, red, nir08, "
                    "swir16, swir22",
                )  # fmt: skip
            table = LANDSAT_OLI_BANDS if platform in _OLI_PLATFORMS else LANDSAT_TM_BANDS
            if value.upper() in table:
                return table[value.upper()]
            allowed = ", ".join(table)
            raise self.fail(
                row.number,
                "band",
                value,
                f"is not a band the pipeline reads from {platform}; allowed: {allowed}",
            )
        allowed = ", ".join(
            [*_CSV_LANDSAT_BANDS, "SR_B1..SR_B7 (with platform)", "QA_PIXEL", "QA_RADSAT"]
        )
        raise self.fail(
            row.number,
            "band",
            value,
            f"is not a {sensor} band read by the pipeline; allowed: {allowed}",
        )

    def _file(self, row: _Row) -> Path:
        value = row.values["path"]
        if not value:
            raise self.fail(
                row.number, "path", value, "is empty; give the file, relative to the CSV"
            )
        path = Path(value)
        if not path.is_absolute():
            path = self.path.parent / path
        if not path.is_file():
            raise self.fail(row.number, "path", value, f"is not a file (looked for {path})")
        return path

    def _band_index(self, row: _Row) -> int:
        value = row.values.get("band_index", "")
        if not value:
            return 1
        try:
            index = int(value)
        except ValueError:
            index = 0
        if index < 1:
            raise self.fail(
                row.number,
                "band_index",
                value,
                "is not a band number; allowed: 1, 2, ... (1-based)",
            )
        if index > 1:
            raise self.fail(
                row.number,
                "band_index",
                value,
                "is not supported yet: the reader reads band 1 of each file; extract the band "
                f"first, e.g. gdal_translate -b {index} -of COG in.tif out_b{index}.tif, and "
                "list that file with band_index 1",
            )
        return index


# --- helpers for other readers of provider files (``sitewatch compare``) -----------------------
# New public entry points over the parsing above; they change nothing of the folder source.


@dataclass(frozen=True)
class S2ProductMetadata:
    """A Sentinel-2 product metadata file (``MTD_MSIL2A.xml`` / ``MTD_MSIL1C.xml``) with its
    radiometric numbers: ``add_offsets`` are ``BOA_ADD_OFFSET`` (L2A) or ``RADIO_ADD_OFFSET``
    (L1C), one per band, empty before baseline 04.00; ``quantification`` is
    ``BOA_QUANTIFICATION_VALUE`` (L2A) or ``QUANTIFICATION_VALUE`` (L1C)."""

    path: Path
    level: Literal["L2A", "L1C"]
    baseline: str | None
    add_offsets: tuple[float, ...]
    quantification: float | None
    product_uri: str | None
    platform: str | None = None


def find_s2_product_metadata(
    start: Path, stop: Path, time: str = ""
) -> tuple[S2ProductMetadata | None, Path | None]:
    """The product metadata and the ``.SAFE`` folder found walking up from the folder ``start``
    to ``stop`` (included), as the folder source finds them; ``time`` (``20230915T022549``, or
    empty for any) must appear in the metadata's ``PRODUCT_URI``. Raises ``SourceError`` naming
    the file when it is unreadable or holds a bad baseline or number."""
    meta, safe = _s2_metadata_for(stop, start, time.upper())
    if meta is None:
        return None, safe
    try:
        root = ET.parse(meta.path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise SourceError(
            f"{meta.path}: Sentinel-2 product metadata not readable ({exc})"
        ) from None
    numbers: dict[str, list[float]] = defaultdict(list)
    wanted = ("RADIO_ADD_OFFSET", "QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE")
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag in wanted and el.text and el.text.strip():
            try:
                numbers[tag].append(float(el.text.strip()))
            except ValueError:
                raise SourceError(
                    f"{meta.path}: <{tag}> {el.text.strip()!r} is not a number"
                ) from None
    if meta.level == "L2A":
        offsets, quant = meta.boa_offsets, numbers.get("BOA_QUANTIFICATION_VALUE")
    else:
        offsets, quant = (
            tuple(numbers.get("RADIO_ADD_OFFSET", ())),
            numbers.get("QUANTIFICATION_VALUE"),
        )
    return (
        S2ProductMetadata(
            meta.path, meta.level, meta.baseline, offsets, quant[0] if quant else None,
            meta.product_uri, meta.platform,
        ),
        safe,
    )  # fmt: skip


def safe_name_baseline(name: str) -> str | None:
    """The processing baseline of a SAFE/product name (``..._N0400_...`` -> ``04.00``)."""
    b = _SAFE_BASELINE.search(name)
    return f"{b[1]}.{b[2]}" if b else None


def s2_file_acquisition(name: str) -> tuple[str, str, str, str | None] | None:
    """(tile, sensing time, band id, resolution or None) of a Sentinel-2 granule file name such
    as ``T51SUH_20230915T022549_B02_10m.jp2``; None for other names."""
    m = _S2_NAME.match(name)
    if m is None:
        return None
    return m["tile"].upper(), m["time"].upper(), m["band"].upper(), m["res"]


@dataclass(frozen=True)
class LandsatFileName:
    """What a USGS Landsat file name says: ``LC08_L2SP_116033_20200915_20200920_02_T1_SR_B2.TIF``."""

    product_id: str
    platform: str | None  # landsat-4 .. landsat-9; None for other missions
    level: str
    collection: str
    band: str

    @property
    def surface_reflectance(self) -> bool:
        """Collection 2 Level-2 surface reflectance (the product the pipeline reads)."""
        return self.level in ("L2SP", "L2SR") and self.collection == "02"


def parse_landsat_name(name: str) -> LandsatFileName | None:
    """The parts of a USGS Landsat file name; None when ``name`` is not one."""
    m = _LANDSAT_NAME.match(name)
    if m is None:
        return None
    return LandsatFileName(
        m["pid"].upper(),
        LANDSAT_PLATFORMS.get(m["mission"]),
        m["level"].upper(),
        m["collection"],
        m["band"].upper(),
    )


def find_landsat_mtl(folder: Path, product_id: str) -> tuple[Path, dict[str, str]] | None:
    """``<product_id>_MTL.json`` (else ``.xml``, ``.txt``) in ``folder`` and its acquisition keys,
    as the folder source reads them; raises ``SourceError`` when it is unreadable."""
    return _read_mtl(folder, product_id)
