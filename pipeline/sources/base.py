"""What every scene source provides: a search over a site and a date range, returning scenes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from pipeline.sites import Site


@dataclass(frozen=True)
class Scene:
    """One acquisition over (part of) a site, as found by a search.

    ``assets`` maps canonical band names (``pipeline.sources.sensors.BANDS`` and ``"scl"``) to
    hrefs GDAL can open (local paths, ``/vsicurl/`` URLs, ...). ``properties`` keeps the STAC item
    properties that decide radiometry (``s2:processing_baseline``,
    ``earthsearch:boa_offset_applied``, ...).
    """

    id: str
    collection: str
    datetime: datetime
    assets: Mapping[str, str]
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def date(self) -> date:
        return self.datetime.date()


class SceneSource(Protocol):
    """Where scenes come from. Implementations: static STAC catalog, synthetic scenario."""

    name: str

    def search(self, site: Site, start: date, end: date) -> list[Scene]:
        """Scenes intersecting ``site`` acquired in [start, end], sorted by datetime then id."""
        ...
