"""What every scene source provides: a search over a site and a date range, returning scenes."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from pipeline.errors import SourceError
from pipeline.sites import Site


@dataclass(frozen=True)
class Asset:
    """One file of a scene: an href GDAL can open (a local path, ``/vsicurl/...``, ``/vsis3/...``)
    and what the STAC item says of its pixels (``proj:transform``, ``proj:shape``,
    ``raster:bands``), so a reader knows the native lattice without opening the file."""

    href: str
    transform: tuple[float, ...] | None = None
    shape: tuple[int, int] | None = None
    raster_bands: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Scene:
    """One acquisition over (part of) a site, as found by a search.

    ``assets`` are keyed by the provider's asset keys (``blue`` or ``B02``); ``profile`` names the
    ``sensors.PROFILES`` entry that reads them. ``properties`` keeps the STAC item properties
    that decide radiometry (``s2:processing_baseline``, ``earthsearch:boa_offset_applied``, ...).
    ``crs`` is the item's ``proj:code``/``proj:epsg`` where given.
    """

    id: str
    collection: str
    datetime: datetime
    assets: Mapping[str, Asset]
    properties: Mapping[str, Any] = field(default_factory=dict)
    profile: str = "earth-search/sentinel-2-l2a"
    crs: str | None = None

    @property
    def date(self) -> date:
        return self.datetime.date()

    @property
    def platform(self) -> str:
        """``platform`` (``sentinel-2a``, ``landsat-8``), or USGS's ``eo:platform`` normalised."""
        value = self.properties.get("platform") or self.properties.get("eo:platform") or ""
        return str(value).lower().replace("_", "-")


class SceneSource(Protocol):
    """Where scenes come from: static STAC catalog, STAC API, local folder, synthetic scenario."""

    name: str

    def search(self, site: Site, start: date, end: date) -> list[Scene]:
        """Scenes intersecting ``site`` acquired in [start, end], sorted by datetime then id."""
        ...


def item_crs(properties: Mapping[str, Any]) -> str | None:
    """``proj:code`` (STAC proj v2) or ``proj:epsg`` (v1) of an item, as ``EPSG:nnnn``."""
    code = properties.get("proj:code")
    if isinstance(code, str) and code:
        return code
    epsg = properties.get("proj:epsg")
    return f"EPSG:{int(epsg)}" if isinstance(epsg, int | float) and epsg else None


def sun_angles(properties: Mapping[str, Any]) -> tuple[float, float] | None:
    """(elevation, azimuth) of the sun in degrees from an item's properties: STAC view
    ``view:sun_elevation``/``view:sun_azimuth`` (Earth Search, USGS Landsat), the older
    ``eo:sun_*``, or Planetary Computer's ``s2:mean_solar_zenith``/``s2:mean_solar_azimuth``;
    None when none of them is given as a number."""

    def number(key: str) -> float | None:
        value = properties.get(key)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    for elevation_key, azimuth_key in (
        ("view:sun_elevation", "view:sun_azimuth"),
        ("eo:sun_elevation", "eo:sun_azimuth"),
    ):
        elevation, azimuth = number(elevation_key), number(azimuth_key)
        if elevation is not None and azimuth is not None:
            return elevation, azimuth
    zenith, azimuth = number("s2:mean_solar_zenith"), number("s2:mean_solar_azimuth")
    if zenith is not None and azimuth is not None:
        return 90.0 - zenith, azimuth
    return None


def stac_asset(href: str, asset: Mapping[str, Any], item_props: Mapping[str, Any]) -> Asset:
    """An ``Asset`` from a STAC asset object; proj fields fall back to the item's."""

    def pick(key: str) -> Any:
        value = asset.get(key)
        return value if value is not None else item_props.get(key)

    transform = pick("proj:transform")
    shape = pick("proj:shape")
    bands = asset.get("raster:bands") or ()
    return Asset(
        href,
        tuple(float(v) for v in transform[:6]) if _numbers(transform, 6) else None,
        (int(shape[0]), int(shape[1])) if _numbers(shape, 2) else None,
        tuple(b for b in bands if isinstance(b, Mapping)),
    )


def _numbers(value: Any, n: int) -> bool:
    return (
        isinstance(value, Sequence)
        and len(value) >= n
        and all(isinstance(v, int | float) for v in value[:n])
    )


@dataclass(frozen=True)
class SearchFilter:
    """What a search keeps besides place and date: the item's ``eo:cloud_cover`` at most
    ``max_cloud_cover`` (percent; items without it are kept, the masks judge them) and its
    ``platform`` among ``platforms`` (all when empty). STAC APIs that conform to the query or
    filter extension apply it on the server; every source applies it on the client too."""

    max_cloud_cover: float | None = None
    platforms: tuple[str, ...] = ()

    def accepts(self, properties: Mapping[str, Any]) -> bool:
        cover = properties.get("eo:cloud_cover")
        if (
            self.max_cloud_cover is not None
            and isinstance(cover, int | float)
            and cover > self.max_cloud_cover
        ):
            return False
        platform = str(properties.get("platform") or "").lower()
        return not self.platforms or platform in {p.lower() for p in self.platforms}


# How GDAL opens remote asset hrefs; no other URL scheme is read.
_VSI_PREFIXES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/"}
_QUERY = re.compile(r"\?[^\s'\"]*")
_USERINFO = re.compile(r"(//)[^/@\s'\"]+@")


def redact(text: str) -> str:
    """``text`` with URL query strings (signatures, tokens) and user:password@ removed, for
    messages, logs and the manifest: credentials never leave the process."""
    return _USERINFO.sub(r"\1", _QUERY.sub("?<redacted>", text))


class RedactSecrets(logging.Filter):
    """A handler filter that ``redact``s every record naming a URL or GDAL path: GDAL's own
    warnings (logged by rasterio, from any thread) quote the signed URL they failed on."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message or "/vsi" in message:
            record.msg, record.args = redact(message), None
        return True


def gdal_href(href: str, base: Path | None = None) -> str:
    """An asset href GDAL can open: http(s) and s3 URLs through ``/vsi*``, ``file://`` and
    relative local paths (against ``base``, the item's folder) as absolute paths. Other schemes
    and raw GDAL virtual paths (``/vsi...``) are refused with ``SourceError``: an item must not
    make the reader open archives, pipes or other services."""
    if href.startswith("/vsi"):
        raise SourceError(f"asset href {redact(href)!r}: GDAL virtual paths are not allowed")
    parsed = urlparse(href)
    if parsed.scheme and len(parsed.scheme) > 1 and parsed.scheme not in (*_VSI_PREFIXES, "file"):
        raise SourceError(
            f"asset href {redact(href)!r}: scheme {parsed.scheme!r} not allowed; "
            "allowed: http, https, s3, file and local paths"
        )
    if parsed.scheme in _VSI_PREFIXES:
        rest = href if parsed.scheme.startswith("http") else href.split("://", 1)[1]
        return _VSI_PREFIXES[parsed.scheme] + rest
    if parsed.scheme == "file":
        return unquote(parsed.path)
    path = Path(href)
    if path.is_absolute() or base is None:
        return str(path)
    return str((base / path).resolve())
