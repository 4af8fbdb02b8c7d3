"""Scenes from a static STAC catalog on disk (catalog.json -> collections -> items).

A run searches the same catalog once per site and year, so the catalog is walked and indexed once,
at construction, and every search is a date bisection plus a geometry test over that index. The
walker reads the JSON itself rather than through pystac: it needs only links, geometry, datetime,
assets and properties, and it can then name the exact file that is broken.

Items must use Earth Search v1 asset keys (``blue``, ``red``, ``nir08``, ``scl``, ...), which are
the canonical band names of ``pipeline.sources.sensors``.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import shapely
from shapely.geometry import shape

from pipeline.errors import SourceError
from pipeline.sites import Site
from pipeline.sources.base import Scene

logger = logging.getLogger(__name__)

# Asset roles that are never pixels to analyse.
_SKIPPED_ROLES = frozenset({"thumbnail", "overview", "metadata"})
# How GDAL opens remote asset hrefs.
_VSI_PREFIXES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/"}


@dataclass(frozen=True)
class _Entry:
    """One indexed item: what a search needs, already parsed."""

    datetime: datetime
    id: str
    collection: str
    geometry: Any  # a prepared shapely geometry in EPSG:4326
    assets: Mapping[str, str]
    properties: Mapping[str, Any]

    def scene(self) -> Scene:
        return Scene(
            self.id, self.collection, self.datetime, dict(self.assets), dict(self.properties)
        )


class StaticCatalogSource:
    """A ``SceneSource`` over a local static STAC catalog (pystac ``SELF_CONTAINED`` or absolute).

    ``search`` returns the items whose geometry intersects the site polygon (WGS84) and whose
    acquisition date (UTC) lies in [start, end], sorted by (datetime, id), with absolute asset
    hrefs GDAL can open.
    """

    name = "static-catalog"

    def __init__(self, catalog_path: str | Path) -> None:
        self.catalog_path = Path(catalog_path)
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
        return [e.scene() for e in self._entries[lo:hi] if e.geometry.intersects(target)]


def _index(catalog_path: Path) -> list[_Entry]:
    """Walk child and item links from ``catalog_path``; every item reached once."""
    root = _read_json(catalog_path, "catalog")
    if root.get("type") not in ("Catalog", "Collection"):
        raise SourceError(
            f"{catalog_path}: not a STAC catalog or collection (type {root.get('type')!r}); "
            "give the path of the catalog.json of a static catalog"
        )
    entries: list[_Entry] = []
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
                entry = _entry(target, _read_json(target, "item"), parent_collection)
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


def _asset_href(item_path: Path, href: str) -> str:
    """An asset href GDAL can open: remote URLs through /vsi*, local paths made absolute."""
    parsed = urlparse(href)
    if parsed.scheme in _VSI_PREFIXES:
        rest = href if parsed.scheme.startswith("http") else href.split("://", 1)[1]
        return _VSI_PREFIXES[parsed.scheme] + rest
    if parsed.scheme == "file":
        return unquote(parsed.path)
    path = Path(href)
    return str(path if path.is_absolute() else (item_path.parent / path).resolve())


def _entry(path: Path, doc: dict[str, Any], parent_collection: str) -> _Entry | None:
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
    assets: dict[str, str] = {}
    for key, asset in (doc.get("assets") or {}).items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            raise SourceError(f"{path}: asset {key!r} has no href")
        if _SKIPPED_ROLES.intersection(asset.get("roles") or ()):
            continue
        assets[key] = _asset_href(path, asset["href"])
    collection = doc.get("collection") or parent_collection
    return _Entry(when, item_id, str(collection), geom, assets, props)


def _item_datetime(path: Path, props: Mapping[str, Any]) -> datetime:
    value = props.get("datetime") or props.get("start_datetime")
    if not isinstance(value, str):
        raise SourceError(f"{path}: item has neither 'datetime' nor 'start_datetime'")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SourceError(f"{path}: item datetime {value!r} is not ISO 8601") from None
    # Dates are compared in UTC: an item stamped 2021-09-01T01:00+09:00 was acquired on 31 Aug.
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
