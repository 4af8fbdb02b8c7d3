"""Scenes from a STAC API through pystac-client: Earth Search v1, Planetary Computer or any
STAC API URL.

A search asks for the site's bounding box, the date window, the collections, and, where the API
conforms to the query or filter extension, ``eo:cloud_cover`` and ``platform`` on the server;
every result is filtered on the client too, so an API that ignores them gives the same scenes.
Planetary Computer hrefs are signed with the ``planetary-computer`` package. Each search result
is kept in the cache (``<cache>/searches/``) so ``--offline`` runs can search without a network;
chip cache keys use the unsigned href, so signed URLs that expire do not defeat the chip cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator

from pipeline.errors import SourceError
from pipeline.export.atomic import atomic_write_text
from pipeline.model import SourceConfigBase
from pipeline.sites import Site
from pipeline.sources.base import Scene, SearchFilter
from pipeline.sources.catalog import parse_item

logger = logging.getLogger(__name__)

EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
_PC_HOST = "planetarycomputer.microsoft.com"


class StacApiSourceConfig(SourceConfigBase):
    """A STAC API searched with pystac-client."""

    kind: Literal["stac-api"] = Field("stac-api", description="a STAC API (pystac-client)")
    url: str = Field(
        EARTH_SEARCH_URL,
        description=f"STAC API root; Earth Search v1 {EARTH_SEARCH_URL}, Planetary Computer "
        f"{PLANETARY_COMPUTER_URL}",
    )
    collections: tuple[str, ...] = Field(
        ("sentinel-2-l2a",),
        min_length=1,
        description="collections searched (sentinel-2-l2a, sentinel-2-c1-l2a, landsat-c2-l2)",
    )
    max_cloud_cover: float | None = Field(
        80.0,
        ge=0,
        le=100,
        strict=True,
        description="items with eo:cloud_cover above this (%) are not read",
    )
    platforms: tuple[str, ...] = Field(
        (), description="only these platforms (e.g. sentinel-2a, landsat-8); all when empty"
    )
    sign: Literal["auto", "planetary-computer", "none"] = Field(
        "auto", description="sign hrefs; auto signs for the Planetary Computer host"
    )
    max_items: int = Field(
        5000,
        ge=1,
        le=100_000,
        strict=True,
        description="a search returning more items than this fails",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        parsed = urlparse(v)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"{v[:200]!r} is not an http(s) URL of a STAC API root")
        if parsed.username or parsed.password or parsed.query:
            raise ValueError(
                "the URL carries credentials or a query string; give the API root only and put "
                "credentials in the environment (they would be written to the manifest)"
            )
        return v.rstrip("/")

    def hash_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"sign", "max_items"})

    @property
    def signs_planetary_computer(self) -> bool:
        if self.sign == "auto":
            return urlparse(self.url).netloc == _PC_HOST
        return self.sign == "planetary-computer"


class StacApiSource:
    """A ``SceneSource`` over a STAC API, with a search cache for offline reruns."""

    name = "stac-api"

    def __init__(
        self, config: StacApiSourceConfig, cache_dir: Path | None = None, offline: bool = False
    ) -> None:
        self.config = config
        self.filter = SearchFilter(config.max_cloud_cover, config.platforms)
        self.cache = cache_dir / "searches" if cache_dir is not None else None
        self.offline = offline
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None  # worker processes open their own
        return state

    def _open(self) -> Any:
        if self._client is None:
            from pystac_client import Client
            from pystac_client.exceptions import APIError

            modifier = None
            if self.config.signs_planetary_computer:
                import planetary_computer

                modifier = planetary_computer.sign_inplace
            try:
                self._client = Client.open(self.config.url, modifier=modifier)
            except (APIError, OSError, ValueError) as exc:
                raise SourceError(
                    f"STAC API {self.config.url}: cannot open ({exc}); check the URL and the "
                    "network, or run with --offline to use cached searches"
                ) from None
        return self._client

    def search(self, site: Site, start: date, end: date) -> list[Scene]:
        """Items over ``site`` acquired in [start, end] (UTC), sorted by datetime then id."""
        request = {
            "url": self.config.url,
            "collections": list(self.config.collections),
            "bbox": [round(v, 6) for v in site.geometry.bounds],
            "datetime": f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59Z",
            "max_cloud_cover": self.config.max_cloud_cover,
            "platforms": list(self.config.platforms),
        }
        docs = self._cached(request)
        if docs is None:
            if self.offline:
                raise SourceError(
                    f"offline: no cached search of {self.config.url} for site {site.id} "
                    f"{start}..{end}; run once without --offline to search"
                )
            docs = self._search(request)
            self._store(request, docs)
        scenes = []
        for doc in docs:
            entry = parse_item(doc, f"{self.config.url} item {doc.get('id')!r}")
            if entry is None or not entry.geometry.intersects(site.geometry):
                continue
            if not self.filter.accepts(entry.properties):
                continue
            if not start <= entry.datetime.date() <= end:
                continue
            scenes.append(entry.scene())
        return sorted(scenes, key=lambda s: (s.datetime, s.id))

    def _search(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        from pystac_client import ConformanceClasses
        from pystac_client.exceptions import APIError

        client = self._open()
        kwargs: dict[str, Any] = {
            "collections": request["collections"],
            "bbox": request["bbox"],
            "datetime": request["datetime"],
            "max_items": self.config.max_items + 1,
            "limit": 100,
        }
        cover, platforms = request["max_cloud_cover"], request["platforms"]
        if client.conforms_to(ConformanceClasses.FILTER):
            args: list[dict[str, Any]] = []
            if cover is not None:
                args.append({"op": "<=", "args": [{"property": "eo:cloud_cover"}, cover]})
            if platforms:
                args.append({"op": "in", "args": [{"property": "platform"}, platforms]})
            if args:
                kwargs["filter"] = args[0] if len(args) == 1 else {"op": "and", "args": args}
                kwargs["filter_lang"] = "cql2-json"
        elif client.conforms_to(ConformanceClasses.QUERY):
            query: dict[str, Any] = {}
            if cover is not None:
                query["eo:cloud_cover"] = {"lte": cover}
            if platforms:
                query["platform"] = {"in": platforms}
            if query:
                kwargs["query"] = query
        try:
            docs = [item.to_dict() for item in client.search(**kwargs).items()]
        except (APIError, OSError, ValueError) as exc:
            raise SourceError(f"STAC API {self.config.url}: search failed ({exc})") from None
        if len(docs) > self.config.max_items:
            raise SourceError(
                f"STAC API {self.config.url}: more than max_items={self.config.max_items} items "
                f"for {request['bbox']} {request['datetime']}; narrow the site, the years or "
                "the collections, or raise source.max_items"
            )
        return docs

    def _key(self, request: dict[str, Any]) -> str:
        text = json.dumps(request, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _cached(self, request: dict[str, Any]) -> list[dict[str, Any]] | None:
        if self.cache is None:
            return None
        if not self.offline:
            return None  # online: always ask the API (new items appear), keep the answer
        path = self.cache / f"{self._key(request)}.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        items = doc.get("items") if isinstance(doc, dict) else None
        return items if isinstance(items, list) else None

    def _store(self, request: dict[str, Any], docs: list[dict[str, Any]]) -> None:
        if self.cache is None:
            return
        path = self.cache / f"{self._key(request)}.json"
        atomic_write_text(path, json.dumps({"request": request, "items": docs}))
