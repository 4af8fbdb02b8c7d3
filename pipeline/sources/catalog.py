"""Scenes from a static STAC catalog on disk (catalog.json -> collections -> items).

A run searches the same catalog once per site and year, so the catalog is walked and indexed once,
at construction, and every search is a date bisection plus a geometry test over that index. The
walker reads the JSON itself rather than through pystac: it needs only links, geometry, datetime,
assets and properties, and it can then name the exact file that is broken.

Each item is read by the sensor profile its collection and asset keys call for
(``sensors.detect_profile``): Earth Search (``blue``, ``scl``), Planetary Computer (``B02``,
``SCL``) and Landsat C2 L2 (``nir08``, ``qa_pixel``) items may share one catalog.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import shapely
from pydantic import Field
from shapely.geometry import shape

from pipeline.errors import SourceError
from pipeline.model import SourceConfigBase
from pipeline.sites import Site
from pipeline.sources.base import Asset, Scene, SearchFilter, gdal_href, item_crs, stac_asset
from pipeline.sources.sensors import detect_profile

logger = logging.getLogger(__name__)

# Asset roles that are never pixels to analyse.
_SKIPPED_ROLES = frozenset({"thumbnail", "overview", "metadata"})


class StaticCatalogSourceConfig(SourceConfigBase):
    path_fields = ("catalog",)
    kind: Literal["stac-static"] = Field("stac-static", description="a static STAC catalog")
    catalog: Path = Field(description="path of a static STAC catalog.json")
    max_cloud_cover: float | None = Field(
        None,
        ge=0,
        le=100,
        strict=True,
        description="items with eo:cloud_cover above this (%) are not read",
    )
    platforms: tuple[str, ...] = Field((), description="only these platforms; all when empty")

    def search_filter(self) -> SearchFilter:
        return SearchFilter(self.max_cloud_cover, self.platforms)


@dataclass(frozen=True)
class ItemEntry:
    """One indexed item: what a search needs, already parsed."""

    datetime: datetime
    id: str
    collection: str
    geometry: Any  # a prepared shapely geometry in EPSG:4326
    assets: Mapping[str, Asset]
    properties: Mapping[str, Any]
    profile: str

    def scene(self) -> Scene:
        return Scene(
            self.id,
            self.collection,
            self.datetime,
            dict(self.assets),
            dict(self.properties),
            self.profile,
            item_crs(self.properties),
        )


class StaticCatalogSource:
    """A ``SceneSource`` over a local static STAC catalog (pystac ``SELF_CONTAINED`` or absolute).

    ``search`` returns the items whose geometry intersects the site polygon (WGS84) and whose
    acquisition date (UTC) lies in [start, end], sorted by (datetime, id), with absolute asset
    hrefs GDAL can open.
    """

    name = "static-catalog"

    def __init__(self, catalog_path: str | Path, search_filter: SearchFilter | None = None) -> None:
        self.catalog_path = Path(catalog_path)
        self.filter = search_filter or SearchFilter()
        entries = _index(self.catalog_path)
        entries.sort(key=lambda e: (e.datetime, e.id))
        self._entries = entries
        self._dates = [e.datetime.date() for e in entries]
        logger.debug("indexed %d items from %s", len(entries), self.catalog_path)

    def __len__(self) -> int:
        """Number of indexed items."""
        return len(self._entries)

    def search(self, site: Site, start: date, end: date) -> list[Scene]:
        """Items over ``site`` acquired in [start, end] (inclusive), sorted by datetime then id."""
        lo = bisect.bisect_left(self._dates, start)
        hi = bisect.bisect_right(self._dates, end)
        target = site.geometry
        return [
            e.scene()
            for e in self._entries[lo:hi]
            if e.geometry.intersects(target) and self.filter.accepts(e.properties)
        ]


def _index(catalog_path: Path) -> list[ItemEntry]:
    """Walk child and item links from ``catalog_path``; every item reached once."""
    root = _read_json(catalog_path, "catalog")
    if root.get("type") not in ("Catalog", "Collection"):
        raise SourceError(
            f"{catalog_path}: not a STAC catalog or collection (type {root.get('type')!r}); "
            "give the path of the catalog.json of a static catalog"
        )
    entries: list[ItemEntry] = []
    seen: set[Path] = {catalog_path.resolve()}
    stack: list[tuple[Path, dict[str, Any]]] = [(catalog_path, root)]
    while stack:
        path, doc = stack.pop()
        parent_collection = str(doc["id"]) if doc.get("type") == "Collection" else ""
        for link in doc.get("links") or []:
            rel = link.get("rel") if isinstance(link, dict) else None
            if rel not in ("child", "item"):
                continue
            target = _local_link(path, link.get("href"))
            if target.resolve() in seen:
                continue
            seen.add(target.resolve())
            if rel == "child":
                stack.append((target, _read_json(target, "child catalog")))
            else:
                entry = parse_item(
                    _read_json(target, "item"), str(target), target.parent, parent_collection
                )
                if entry is not None:
                    entries.append(entry)
    return entries


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{path}: STAC {what} file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: STAC {what} not readable as JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SourceError(f"{path}: STAC {what} must be a JSON object")
    return doc


def _local_link(base: Path, href: Any) -> Path:
    """A child/item link as a local path: relative to the linking file, absolute, or file://."""
    if not isinstance(href, str) or not href:
        raise SourceError(f"{base}: a child/item link has no href")
    parsed = urlparse(href)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise SourceError(
            f"{base}: link {href!r} is remote; a static catalog source reads local catalogs only"
        )
    return (base.parent / href) if not Path(href).is_absolute() else Path(href)


def parse_item(
    doc: dict[str, Any], where: str, base: Path | None = None, parent_collection: str = ""
) -> ItemEntry | None:
    """A STAC item as an index entry; ``where`` names it in errors, ``base`` resolves relative
    asset hrefs. None for an item without geometry (it can never match a site)."""
    path = where
    if doc.get("type") != "Feature":
        raise SourceError(f"{path}: linked as an item but its type is {doc.get('type')!r}")
    item_id = doc.get("id")
    props = doc.get("properties")
    if not isinstance(item_id, str) or not isinstance(props, dict):
        raise SourceError(f"{path}: STAC item needs a string 'id' and an object 'properties'")
    if doc.get("geometry") is None:
        logger.debug("%s: item without geometry, never matches a site; skipped", path)
        return None
    try:
        geom = shape(doc["geometry"])
    except Exception as exc:  # shapely raises several types for malformed GeoJSON geometry
        raise SourceError(f"{path}: item geometry is not valid GeoJSON ({exc})") from None
    shapely.prepare(geom)
    when = _item_datetime(path, props)
    assets: dict[str, Asset] = {}
    for key, asset in (doc.get("assets") or {}).items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            raise SourceError(f"{path}: asset {key!r} has no href")
        if _SKIPPED_ROLES.intersection(asset.get("roles") or ()):
            continue
        try:
            href = gdal_href(asset["href"], base)
        except SourceError as exc:
            raise SourceError(f"{path}: asset {key!r}: {exc}") from None
        assets[key] = stac_asset(href, asset, props)
    collection = str(doc.get("collection") or parent_collection)
    try:
        platform = str(props.get("platform") or props.get("eo:platform") or "")
        profile = detect_profile(collection, list(assets), platform).name
    except ValueError:
        profile = ""  # read_scene skips and records such items, naming the collection
    return ItemEntry(when, item_id, collection, geom, assets, props, profile)


def _item_datetime(path: str, props: Mapping[str, Any]) -> datetime:
    value = props.get("datetime") or props.get("start_datetime")
    if not isinstance(value, str):
        raise SourceError(f"{path}: item has neither 'datetime' nor 'start_datetime'")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SourceError(f"{path}: item datetime {value!r} is not ISO 8601") from None
    # Dates are compared in UTC: an item stamped 2021-09-01T01:00+09:00 was acquired on 31 Aug.
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
