"""Results of a run, passed from orchestration to export: small frozen records and arrays."""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import Polygon

from pipeline.classify import CoalFrequency
from pipeline.composite import Composite
from pipeline.config import RunConfig
from pipeline.expansion import BoundaryChange
from pipeline.grid import Grid
from pipeline.sites import Site
from pipeline.terrain import SUN_ARRAYS, SunResponse
from pipeline.trends import ChangeKind

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
    processing_baseline: str = ""  # Sentinel-2 ``s2:processing_baseline`` (NN.NN), when known
    # Residual haze removed (blue path reflectance, ``haze``): mean and largest over the grid.
    haze_blue: float | None = None
    haze_blue_max: float | None = None
    # Where the look lay against its season's consensus, in pixels east and north, before it
    # was resampled back onto it (``look_registration``), plus its year's own offset from the
    # site's other years when the year was resampled onto them (``coregister.year_shifts``);
    # None: left as read.
    registered_px: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.registered_px is not None:  # a list when loaded from JSON
            east, north = self.registered_px
            object.__setattr__(self, "registered_px", (float(east), float(north)))


@dataclass(frozen=True)
class SeasonEvidence:
    """What one season says of ground its greenness test cannot settle alone; the neighbouring
    years decide (``analysis.date_footprints``). Masks (y, x), from ``recipe.site_year``."""

    # Not footprint, not ``ambiguous``, and green at some point of the season: vegetation.
    vegetated: BoolArray
    # The part of ``vegetated`` with low NDVI in some look (sown, flooded or harvested): a field.
    field: BoolArray
    # Bare at the season's end but green earlier (so not footprint), and already bare before
    # harvest time: cleared this season, or a field harvested early. The next year tells.
    ambiguous: BoolArray
    # Footprint that had no clear look while crops stand: a field harvested before the first
    # clear look would look the same. The neighbouring years tell.
    unconfirmed: BoolArray
    # Coal-counted ground that was green earlier in the season (so not coal this year): a burn
    # scar's char, or a pile dumped on vegetation during the season. The next year tells: char
    # regreens, a pile stays. None: not known (stored before it existed).
    coal_on_green: BoolArray | None = None


#: Arrays of ``SeasonEvidence`` in a stored site-year, by npz name.
_EVIDENCE_ARRAYS = {"vegetated": "evidence_vegetated", "field": "evidence_field",
                    "ambiguous": "evidence_ambiguous",
                    "unconfirmed": "evidence_unconfirmed"}  # fmt: skip


@dataclass(frozen=True)
class Registration:
    """Where a site-year's imagery lay against its site's common frame, in pixels east and
    north (``coregister``): ``shift_px`` as estimated (sub-pixel), ``resampled_px`` the
    sub-pixel correction every look was resampled by before the year was classified
    (``coregister.year_shifts``; (0, 0): none), ``moved_px`` the whole-pixel correction
    applied after (every per-pixel array was moved back by it; (0, 0): left in place, the
    shift being under ``min_shift_px``, or the move not confirmed by every pair or not
    improving the match), ``pairs`` how many reliable pairs with other years placed it."""

    shift_px: tuple[float, float]
    moved_px: tuple[int, int]
    pairs: int
    resampled_px: tuple[float, float] = (0.0, 0.0)

    @property
    def moved(self) -> bool:
        """Whether the year was brought onto the frame, resampled or moved."""
        return self.moved_px != (0, 0) or self.resampled_px != (0.0, 0.0)


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
    # None: not known (no data, or a site-year stored before it existed).
    evidence: SeasonEvidence | None = None
    # Set by ``analysis.date_footprints`` (None before it, or where it could not judge): the
    # ground this year's footprint gained as cleared during its season (confirmed by the next
    # year), and the ground it lost as a field unseen while crops stand (by its neighbours).
    redated: BoolArray | None = None
    unseen_fields: BoolArray | None = None
    # Set by ``water.drop_exposed_beds`` (``analysis.analyse_site``; None before it): the ground
    # this year's footprint lost as the exposed bed of water drawn down.
    exposed_bed: BoolArray | None = None
    # Footprint-like or coal-counted ground left unmapped because its brightness followed the
    # sinking sun through the season (``recipe.Classified.terrain_shadow``); None: not known.
    terrain_shadow: BoolArray | None = None
    # Footprint-like or coal-counted ground whose season could tell and saw it not follow the
    # sun (``recipe.Classified.terrain_flat``); None: not known.
    # ``analysis.settle_terrain_shadow`` weighs the years' verdicts.
    terrain_flat: BoolArray | None = None
    # How the season's clear looks followed the sun (``terrain.sun_response``), where the
    # footprint or coal rule may map the ground or it is dark (``recipe.season_products``):
    # what ``analysis.settle_terrain_shadow`` pools over the years; None: not known.
    sun: SunResponse | None = None
    # Set by ``coregister.coregister_years`` (``analysis.analyse_site``; for a year made again
    # resampled onto its site's frame, by ``run.loaded_site_year`` first): where this year lay
    # against the site's common frame and how it was brought onto it; None: not estimated (no
    # composite, no reliable pair, co-registration off, or before the analysis).
    registration: Registration | None = None
    # Set by ``analysis.add_lines`` (None before it, or with line detection off): the long,
    # thin features (new roads, tracks) this year's footprint gained as lines
    # (``linear.track_lines``), which the change stage's opening leaves in place.
    linear: BoolArray | None = None
    # Set by ``analysis.analyse_site`` (None before it): ground flagged as coal in half or more
    # of its clear looks but seen in too few to count (``analysis.undecided_coal``), and ground
    # never seen clear that the nearest year that saw it counted as coal
    # (``analysis.fill_unseen``): coal the clouds may have hidden, not coal.
    coal_undecided: BoolArray | None = None
    # Set by ``analysis.fill_unseen`` (None before it): footprint of the analysis area this
    # year never saw clear, carried from the nearest year that saw it (not ``valid``).
    gap_filled: BoolArray | None = None

    @property
    def n_used(self) -> int:
        return sum(1 for s in self.scenes if s.skipped is None and s.role == "season")

    @property
    def n_skipped(self) -> int:
        return sum(1 for s in self.scenes if s.skipped is not None)


#: Arrays of a stored ``SiteYear`` (``site_year_arrays``), by npz name.
_COMPOSITE_ARRAYS = ("composite_reflectance", "composite_clear_count", "composite_mad")
_COAL_ARRAYS = ("coal_frequency", "coal_flagged", "coal_clear", "coal_refuted")


def site_year_arrays(sy: SiteYear) -> dict[str, NDArray[Any]]:
    """The arrays of ``sy`` by name, for an ``npz`` file (no object arrays: loads without
    pickle). ``site_year_record`` holds everything else."""
    arrays: dict[str, NDArray[Any]] = {
        "footprint": sy.footprint,
        "coal_mask": sy.coal_mask,
        "valid": sy.valid,
    }
    if sy.evidence is not None:
        for name, key in _EVIDENCE_ARRAYS.items():
            arrays[key] = getattr(sy.evidence, name)
        if sy.evidence.coal_on_green is not None:
            arrays["evidence_coal_on_green"] = sy.evidence.coal_on_green
    if sy.redated is not None:
        arrays["redated"] = sy.redated
    if sy.unseen_fields is not None:
        arrays["unseen_fields"] = sy.unseen_fields
    if sy.terrain_shadow is not None:
        arrays["terrain_shadow"] = sy.terrain_shadow
    if sy.terrain_flat is not None:
        arrays["terrain_flat"] = sy.terrain_flat
    if sy.composite is not None:
        arrays["composite_reflectance"] = sy.composite.reflectance
        arrays["composite_clear_count"] = sy.composite.clear_count
        arrays["composite_mad"] = sy.composite.mad
    if sy.sun is not None:
        for name, value in zip(SUN_ARRAYS, sy.sun.arrays(), strict=True):
            arrays[f"sun_{name}"] = value
    if sy.coal is not None:
        arrays["coal_frequency"] = sy.coal.frequency
        arrays["coal_flagged"] = sy.coal.flagged
        arrays["coal_clear"] = sy.coal.clear
        if sy.coal.refuted is not None:
            arrays["coal_refuted"] = sy.coal.refuted
    return arrays


def site_year_record(sy: SiteYear) -> dict[str, Any]:
    """Everything of ``sy`` but its arrays, as JSON-ready values."""
    return {
        "site_id": sy.site_id,
        "year": sy.year,
        "window": list(sy.window),
        "widened": sy.widened,
        "scenes": [asdict(s) for s in sy.scenes],
        "median_clear": sy.median_clear,
        "coverage": sy.coverage,
        "has_composite": sy.composite is not None,
        "has_coal": sy.coal is not None,
        "has_coal_refuted": sy.coal is not None and sy.coal.refuted is not None,
        "has_evidence": sy.evidence is not None,
        "has_coal_on_green": sy.evidence is not None and sy.evidence.coal_on_green is not None,
        "has_redated": sy.redated is not None,
        "has_unseen_fields": sy.unseen_fields is not None,
        "has_terrain_shadow": sy.terrain_shadow is not None,
        "has_terrain_flat": sy.terrain_flat is not None,
        "has_sun": sy.sun is not None,
    }


class StoredArrays:
    """The arrays of one stored site-year (an uncompressed ``npz``), each read from the file
    whenever asked for and never kept: what a large site's composites need so that a run holds
    one year's at a time. The file stays open, so its data stays readable after the run prunes
    its work folder (on POSIX an open file outlives its name), until this object is dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # A damaged archive fails here, not at first use (and before np.load, which leaks its
        # file when the archive is damaged).
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
        self._npz = np.load(path, allow_pickle=False)

    def __call__(self, name: str) -> NDArray[Any]:
        return np.asarray(self._npz[name])

    __getitem__ = __call__


class StoredComposite(Composite):
    """A ``Composite`` whose arrays are read from a ``StoredArrays`` on each access."""

    _arrays: StoredArrays

    def __init__(self, arrays: StoredArrays) -> None:
        object.__setattr__(self, "_arrays", arrays)

    @property
    def reflectance(self) -> NDArray[np.float32]:
        return self._arrays("composite_reflectance").astype(np.float32, copy=False)

    @property
    def clear_count(self) -> NDArray[np.int16]:
        return self._arrays("composite_clear_count").astype(np.int16, copy=False)

    @property
    def mad(self) -> NDArray[np.float32]:
        return self._arrays("composite_mad").astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"StoredComposite({self._arrays.path})"


class StoredCoalFrequency(CoalFrequency):
    """A ``CoalFrequency`` whose arrays are read from a ``StoredArrays`` on each access."""

    _arrays: StoredArrays
    _has_refuted: bool

    def __init__(self, arrays: StoredArrays, has_refuted: bool = True) -> None:
        object.__setattr__(self, "_arrays", arrays)
        object.__setattr__(self, "_has_refuted", has_refuted)

    @property
    def frequency(self) -> NDArray[np.float32]:
        return self._arrays("coal_frequency").astype(np.float32, copy=False)

    @property
    def flagged(self) -> NDArray[np.int16]:
        return self._arrays("coal_flagged").astype(np.int16, copy=False)

    @property
    def clear(self) -> NDArray[np.int16]:
        return self._arrays("coal_clear").astype(np.int16, copy=False)

    @property
    def refuted(self) -> NDArray[np.int16] | None:
        if not self._has_refuted:
            return None
        return self._arrays("coal_refuted").astype(np.int16, copy=False)

    def __repr__(self) -> str:
        return f"StoredCoalFrequency({self._arrays.path})"


class StoredSunResponse(SunResponse):
    """A ``SunResponse`` whose arrays are read from a ``StoredArrays`` on each access."""

    _arrays: StoredArrays

    def __init__(self, arrays: StoredArrays) -> None:
        object.__setattr__(self, "_arrays", arrays)

    @property
    def slope(self) -> NDArray[np.float32]:
        return self._arrays("sun_slope").astype(np.float32, copy=False)

    @property
    def trend(self) -> NDArray[np.float32]:
        return self._arrays("sun_trend").astype(np.float32, copy=False)

    @property
    def span(self) -> NDArray[np.float32]:
        return self._arrays("sun_span").astype(np.float32, copy=False)

    @property
    def looks(self) -> NDArray[np.int16]:
        return self._arrays("sun_looks").astype(np.int16, copy=False)

    @property
    def score(self) -> NDArray[np.float32]:
        return self._arrays("sun_score").astype(np.float32, copy=False)

    @property
    def variance(self) -> NDArray[np.float32]:
        return self._arrays("sun_variance").astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"StoredSunResponse({self._arrays.path})"


def site_year_from_stored(
    record: dict[str, Any], arrays: Any, stored: StoredArrays | None = None
) -> SiteYear:
    """The ``SiteYear`` of a ``site_year_record`` and its arrays (a mapping or an ``NpzFile``);
    ``KeyError``/``TypeError``/``ValueError`` when they do not fit together. A record stored
    before the season evidence existed (no ``has_evidence``) loads with ``evidence=None``: the
    cross-year step then leaves that year as it is and flags it. With ``stored``, the composite
    and the coal frequency (nine tenths of a site-year's bytes) are read from it on demand
    instead (``StoredComposite``, ``StoredCoalFrequency``), and so is the season's response to
    the sun (``StoredSunResponse``); the masks are loaded."""

    def arr(name: str) -> NDArray[Any]:
        return np.asarray(arrays[name])

    composite: Composite | None = None
    coal: CoalFrequency | None = None
    if record["has_composite"]:
        composite = (
            StoredComposite(stored)
            if stored is not None
            else Composite(*(arr(n) for n in _COMPOSITE_ARRAYS))
        )
    if record["has_coal"]:
        refuted = bool(record.get("has_coal_refuted"))
        coal = (
            StoredCoalFrequency(stored, refuted)
            if stored is not None
            else CoalFrequency(*(arr(n) for n in _COAL_ARRAYS[: 4 if refuted else 3]))
        )
    sun: SunResponse | None = None
    if record.get("has_sun"):
        sun = (
            StoredSunResponse(stored)
            if stored is not None
            else SunResponse(*(arr(f"sun_{n}") for n in SUN_ARRAYS))
        )
    window = record["window"]
    if len(window) != 2:
        raise ValueError(f"window {window!r} is not a (start, end) pair")
    return SiteYear(
        site_id=str(record["site_id"]),
        year=int(record["year"]),
        window=(str(window[0]), str(window[1])),
        widened=bool(record["widened"]),
        scenes=tuple(SceneRecord(**s) for s in record["scenes"]),
        composite=composite,
        coal=coal,
        footprint=arr("footprint"),
        coal_mask=arr("coal_mask"),
        valid=arr("valid"),
        median_clear=float(record["median_clear"]),
        coverage=float(record["coverage"]),
        evidence=(
            SeasonEvidence(
                **{n: arr(k).astype(bool) for n, k in _EVIDENCE_ARRAYS.items()},
                coal_on_green=(
                    arr("evidence_coal_on_green").astype(bool)
                    if record.get("has_coal_on_green")
                    else None
                ),
            )
            if record.get("has_evidence")
            else None
        ),
        redated=arr("redated").astype(bool) if record.get("has_redated") else None,
        unseen_fields=(
            arr("unseen_fields").astype(bool) if record.get("has_unseen_fields") else None
        ),
        terrain_shadow=(
            arr("terrain_shadow").astype(bool) if record.get("has_terrain_shadow") else None
        ),
        terrain_flat=(arr("terrain_flat").astype(bool) if record.get("has_terrain_flat") else None),
        sun=sun,
    )


@dataclass(frozen=True)
class YearMetrics:
    """Areas of one site-year (ha), measured on the footprint ``analysis.date_footprints``
    settled. ``*_pm_ha`` are 95% half-widths from the boundary (``trends.edge_uncertainty_ha``:
    internal edges only, the cut at the analysis area's border and at no-data is not counted)."""

    year: int
    footprint_ha: float
    footprint_pm_ha: float
    coal_ha: float
    coal_pm_ha: float
    footprint_polygons: tuple[Polygon, ...]
    coal_polygons: tuple[Polygon, ...]
    # What ``analysis.date_footprints`` changed in this year's footprint (``footprint_ha`` is
    # after it): ground cleared during this season, dated here by the next year, and ground
    # removed as a field this season never saw while crops stand (the neighbours' verdict).
    redated_ha: float = 0.0
    unseen_fields_ha: float = 0.0
    # Ground taken out of this year's footprint as the exposed bed of water drawn down
    # (``water.drop_exposed_beds``): former water, wet this year.
    exposed_bed_ha: float = 0.0
    # Ground left out of this year's footprint and coal as a terrain-shadowed slope (its
    # brightness followed the sinking sun: ``terrain.shadowed``).
    terrain_shadow_ha: float = 0.0
    # Ground flagged as coal in half or more of its clear looks but seen in too few looks to
    # count (``analysis.undecided_coal``), or never seen and coal the nearest year that saw it
    # (``analysis.fill_unseen``): what ``coal_ha`` may be missing, not in it.
    coal_undecided_ha: float = 0.0
    # Footprint of ground this year never saw clear, carried from the nearest year that saw it
    # (``analysis.fill_unseen``): in ``footprint_ha``, not seen this year.
    gap_filled_ha: float = 0.0
    # Where the year's imagery lay against the site's common frame, pixels east and north
    # (``Registration.shift_px``); None: not estimated.
    shift_x_px: float | None = None
    shift_y_px: float | None = None
    # Flags for the trend tables (``analysis.MAY_LAG``, ``REDATED``, ``UNSEEN_FIELDS``,
    # ``EXPOSED_BED``, ``TERRAIN_SHADOW``, ``COREGISTERED``, ``LINEAR_FEATURES``,
    # ``COAL_UNDECIDED``, ``GAP_FILLED``).
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeMetrics:
    """Change between two years of a site (consecutive years with data, and first vs last),
    within the pixels seen in both years. Areas in ha, ``*_pm_ha`` 95% half-widths.

    ``added_ha``/``removed_ha`` (and the coal ones) are the change stage's rings: cleaned of
    misregistration slivers (the opening) and of pieces below the minimum mapping unit, the
    same rings as ``expansion.geojson``; ``added_pm_ha``/``removed_pm_ha`` their boundary's
    edge uncertainty. ``net_ha`` is the footprint's area change within the pixels seen in both
    years (``trends.net_change``: raw masks, so it need not equal added - removed), with
    ``net_pm_ha`` counting the unchanged boundary's error once for both years.
    ``significant``: |net_ha| > net_pm_ha. ``kind``: ``trends.change_kind`` of the net change
    and the rings. ``coal_net_ha``/``coal_net_pm_ha``: the same net change for coal.
    """

    year_from: int
    year_to: int
    added_ha: float
    removed_ha: float
    coal_added_ha: float
    coal_removed_ha: float
    significant: bool
    added_polygons: tuple[Polygon, ...]
    removed_polygons: tuple[Polygon, ...]
    # How the footprint's boundary moved: the earlier footprint against the same plus the added
    # and minus the removed polygons, so it agrees with the rings above (no misregistration
    # slivers, no unseen pixels).
    boundary: BoundaryChange
    net_ha: float
    net_pm_ha: float
    added_pm_ha: float
    removed_pm_ha: float
    kind: ChangeKind
    coal_net_ha: float
    coal_net_pm_ha: float


@dataclass(frozen=True)
class SiteAnalysis:
    site: Site
    grid: Grid
    area_ha: float
    years: tuple[SiteYear, ...]
    metrics: tuple[YearMetrics, ...]
    changes: tuple[ChangeMetrics, ...]
    accuracy: dict[str, Any] | None = None
    # Boundary change of analyst-drawn perimeters ("consecutive" or "first-last", change), in
    # the grid's CRS.
    perimeter_changes: tuple[tuple[str, BoundaryChange], ...] = ()


@dataclass
class RunResult:
    """What a run produced: per-site analyses and the output folder."""

    out_dir: Path
    config: RunConfig
    sites: list[SiteAnalysis] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None
    # How footprint and coal were mapped: {"mode": "rules"}, or the supervised model's
    # provenance (training file and SHA-256, classes, features, validation; ``supervised``).
    classification: dict[str, Any] = field(default_factory=lambda: {"mode": "rules"})
