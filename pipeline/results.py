"""Results of a run, passed from orchestration to export: small frozen records and arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import Polygon

from pipeline.classify import CoalFrequency
from pipeline.composite import Composite
from pipeline.config import RunConfig
from pipeline.grid import Grid
from pipeline.sites import Site

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class SceneRecord:
    """What happened to one scene found for a site-year: provenance for the manifest."""

    scene_id: str
    datetime: str
    role: str = "season"  # "season": in the composite; "greenness": only tells crops from bare
    offset_dn: float | None = None
    radiometry: str = ""
    clear_fraction: float | None = None
    skipped: str | None = None
    collection: str = ""
    platform: str = ""
    scale: float | None = None
    offset_check: str = ""  # what the pixels said of the offset (Sentinel-2), see sensors
    mask: dict[str, float] = field(default_factory=dict)  # share of the grid per mask reason
    reprojected_from: str | None = None  # the scene's CRS when it differs from the site grid's


@dataclass(frozen=True)
class SiteYear:
    """One site-year after composite and classification."""

    site_id: str
    year: int
    window: tuple[str, str]
    widened: bool
    scenes: tuple[SceneRecord, ...]
    composite: Composite | None
    coal: CoalFrequency | None
    footprint: BoolArray
    coal_mask: BoolArray
    valid: BoolArray
    median_clear: float  # median clear observations over the analysis area (unseen pixels = 0)
    coverage: float  # share of the analysis area seen clear at least once

    @property
    def n_used(self) -> int:
        return sum(1 for s in self.scenes if s.skipped is None and s.role == "season")

    @property
    def n_skipped(self) -> int:
        return sum(1 for s in self.scenes if s.skipped is not None)


@dataclass(frozen=True)
class YearMetrics:
    year: int
    footprint_ha: float
    footprint_pm_ha: float
    coal_ha: float
    coal_pm_ha: float
    footprint_polygons: tuple[Polygon, ...]
    coal_polygons: tuple[Polygon, ...]


@dataclass(frozen=True)
class ChangeMetrics:
    year_from: int
    year_to: int
    added_ha: float
    removed_ha: float
    coal_added_ha: float
    coal_removed_ha: float
    significant: bool
    added_polygons: tuple[Polygon, ...]
    removed_polygons: tuple[Polygon, ...]


@dataclass(frozen=True)
class SiteAnalysis:
    site: Site
    grid: Grid
    area_ha: float
    years: tuple[SiteYear, ...]
    metrics: tuple[YearMetrics, ...]
    changes: tuple[ChangeMetrics, ...]
    accuracy: dict[str, Any] | None = None


@dataclass
class RunResult:
    """What a run produced: per-site analyses and the output folder."""

    out_dir: Path
    config: RunConfig
    sites: list[SiteAnalysis] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None
