"""The typed run config: YAML in, validated frozen models out.

Every field has a documented default, unknown keys are rejected, and errors name the file, the
key path, the bad value and what is allowed. Relative paths in a config file are resolved against
the folder of that file, so a config can be run from anywhere.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import types
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.bands import BANDS
from pipeline.errors import ConfigError, LimitError
from pipeline.events import DEFAULT_EVENTS
from pipeline.masking import (
    CLOUD_DILATION_M,
    CLOUD_HEIGHTS_M,
    QA_PIXEL_CLOUDS,
    QA_PIXEL_NOT_CLEAR,
    SCL_CLOUDS,
    SCL_NOT_CLEAR,
    MaskRules,
)
from pipeline.model import FrozenModel, content_hash, shorten, shorten_text
from pipeline.sites import (
    BYTES_PER_GRID_PIXEL,
    CAMP_KINDS,
    DEFAULT_MAX_GRID_PIXELS,
    DEFAULT_MAX_SITE_AREA_KM2,
    SITE_KINDS,
)
from pipeline.sources.base import redact
from pipeline.sources.read import ReadSettings
from pipeline.sources.registry import SOURCE_KINDS, SourceConfig, SyntheticSourceConfig

_Model = FrozenModel


def _month_day(value: str) -> tuple[int, int]:
    try:
        month, day = (int(p) for p in value.split("-"))
        date(2001, month, day)  # a non-leap year: 02-29 is rejected on purpose
    except ValueError:
        raise ValueError(f"{value!r} is not a month-day like '09-01' (MM-DD)") from None
    return month, day


MonthDay = Annotated[str, Field(pattern=r"^\d{2}-\d{2}$")]
# YAML's looseness is refused: a number field takes an int or a float, never `true` or "0.3";
# an int field never takes a bool or 2.0 (strict mode); booleans take only true/false.
Real = Annotated[float, Field(strict=True)]


class SeasonConfig(_Model):
    """The same day-of-year window every year (DOMAIN.md: 1 Sep - 15 Nov, widened when sparse)."""

    start: MonthDay = Field("09-01", description="first day of the season window (MM-DD)")
    end: MonthDay = Field("11-15", description="last day of the season window (MM-DD)")
    fallback_start: MonthDay = Field("08-15", description="widened window start (MM-DD)")
    fallback_end: MonthDay = Field("11-30", description="widened window end (MM-DD)")
    min_clear_observations: int = Field(
        3,
        ge=1,
        le=100,
        strict=True,
        description="widen the window (and flag the year) when the median pixel has fewer "
        "(at most 100: no season window holds more looks)",
    )

    @field_validator("start", "end", "fallback_start", "fallback_end")
    @classmethod
    def _valid_day(cls, v: str) -> str:
        _month_day(v)
        return v

    @model_validator(mode="after")
    def _ordered(self) -> SeasonConfig:
        if _month_day(self.start) > _month_day(self.end):
            raise ValueError(f"start {self.start} is after end {self.end}; windows within one year")
        if not (
            _month_day(self.fallback_start) <= _month_day(self.start)
            and _month_day(self.end) <= _month_day(self.fallback_end)
        ):
            raise ValueError("the fallback window must contain the season window")
        return self

    def day(self, year: int, month_day: str) -> date:
        return date(year, *_month_day(month_day))

    def window(self, year: int, widened: bool = False) -> tuple[date, date]:
        a, b = (self.fallback_start, self.fallback_end) if widened else (self.start, self.end)
        return date(year, *_month_day(a)), date(year, *_month_day(b))


class GridConfig(_Model):
    resolution_m: Real = Field(10.0, gt=0, le=1000, description="pixel size of the site grid (m)")
    buffer_m: Real = Field(200.0, ge=0, le=50_000, description="buffer around each site (m)")
    chunk_px: int | None = Field(
        1024,
        ge=64,
        le=1_000_000,
        strict=True,
        description="sites wider or taller than this many pixels are read and composited in "
        "chunks of it (bounded memory, identical results; pipeline/chunks.py); null: always "
        "the whole grid",
    )


class MaskingConfig(_Model):
    """SCL classes and QA_PIXEL bits masked. SCL 2 (dark area), 3 (cloud shadow), 6 (water) and
    QA_PIXEL bit 4 (cloud shadow) stay unmasked on purpose: Sen2Cor and Fmask label coal piles
    as dark area or shadow, and masking them erases what is measured (DOMAIN.md). The shadow
    class's pixels that lie where the scene's own clouds cast their shadows are left out of the
    coal count only (``cloud_shadow_heights_m``, ``masking.match_cloud_shadows``)."""

    scl_masked: tuple[StrictInt, ...] = Field(
        SCL_NOT_CLEAR, max_length=64, description="SCL classes not clear"
    )
    scl_dilated: tuple[StrictInt, ...] = Field(
        SCL_CLOUDS, max_length=64, description="SCL classes dilated (clouds)"
    )
    qa_pixel_masked_bits: tuple[StrictInt, ...] = Field(
        QA_PIXEL_NOT_CLEAR,
        max_length=64,
        description="Landsat QA_PIXEL bits not clear (0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, "
        "4 shadow, 5 snow, 7 water)",
    )
    qa_pixel_dilated_bits: tuple[StrictInt, ...] = Field(
        QA_PIXEL_CLOUDS,
        max_length=64,
        description="QA_PIXEL bits dilated like clouds (USGS dilates bit 1)",
    )
    qa_radsat: bool = Field(
        True, strict=True, description="mask Landsat pixels saturated in any band"
    )
    cloud_dilation_m: Real = Field(
        CLOUD_DILATION_M, ge=0, le=2000, description="cloud dilation radius (m)"
    )
    cloud_shadow_heights_m: tuple[Real, Real] | None = Field(
        CLOUD_HEIGHTS_M,
        description="lowest and highest cloud (m) searched when matching the mask's cloud-shadow "
        "class (SCL 3, QA_PIXEL bit 4) to the scene's clouds: the flagged pixels where the "
        "clouds cast their shadows at the matched height are left out of the coal count, the "
        "rest (coal) stay clear; needs the sun's angles in the item (view:sun_elevation/"
        "azimuth). null: no match, the class is clear everywhere",
    )

    @field_validator("scl_masked", "scl_dilated")
    @classmethod
    def _scl_range(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [c for c in v if not 0 <= c <= 11]
        if bad:
            raise ValueError(f"SCL classes {bad} do not exist; allowed 0..11")
        return tuple(sorted(set(v)))

    @field_validator("qa_pixel_masked_bits", "qa_pixel_dilated_bits")
    @classmethod
    def _qa_bits(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [b for b in v if b not in (0, 1, 2, 3, 4, 5, 7)]
        if bad:
            raise ValueError(f"QA_PIXEL bits {bad} not allowed; allowed 0, 1, 2, 3, 4, 5, 7")
        return tuple(sorted(set(v)))

    @field_validator("cloud_shadow_heights_m")
    @classmethod
    def _heights(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 < v[0] < v[1] <= 20_000:
            raise ValueError(
                f"cloud heights {list(v)} not allowed: [lowest, highest] in metres with "
                "0 < lowest < highest <= 20000, e.g. [200, 12000] (Fmask's range)"
            )
        return v

    def rules(self) -> MaskRules:
        heights = self.cloud_shadow_heights_m
        return MaskRules(
            self.scl_masked,
            self.scl_dilated,
            self.qa_pixel_masked_bits,
            self.qa_pixel_dilated_bits,
            self.qa_radsat,
            self.cloud_dilation_m,
            None if heights is None else (float(heights[0]), float(heights[1])),
        )


class ReadConfig(_Model):
    """How reads behave over flaky networks (GDAL /vsicurl/, /vsis3/)."""

    retries: int = Field(
        3, ge=1, le=10, strict=True, description="attempts per asset before a scene is skipped"
    )
    backoff_s: Real = Field(1.0, ge=0, le=60, description="first retry delay, doubled each time")
    timeout_s: Real = Field(30.0, gt=0, le=600, description="HTTP timeout per request (s)")
    max_fetch_mb: Real = Field(
        512.0,
        gt=0,
        le=100_000,
        description="most one remote asset read may fetch (uncompressed blocks); an untiled file "
        "that would be downloaded whole skips its scene",
    )

    threads: int = Field(
        4,
        ge=1,
        le=32,
        strict=True,
        description="scenes a worker reads at once (remote reads overlap their latency; the "
        "results do not depend on it)",
    )

    def settings(self, offline: bool = False) -> ReadSettings:
        return ReadSettings(
            self.retries, self.backoff_s, self.timeout_s, offline, self.max_fetch_mb, self.threads
        )


class HarmonizeConfig(_Model):
    """Cross-sensor harmonisation of a series mixing Landsat and Sentinel-2 (DOMAIN.md)."""

    to: Literal["none", "landsat-oli"] = Field(
        "none",
        description="none, or landsat-oli: Sentinel-2 MSI by HLS v1.4 (Claverie 2018), TM/ETM+ "
        "by Roy et al. 2016, onto OLI",
    )


class HazeConfig(_Model):
    """Residual haze removed from each look before it is classified (``pipeline/haze.py``):
    estimated from dark dense vegetation (surface blue ~ SWIR2 / 4, Kaufman et al. 1997, as in
    the MODIS and Sen2Cor aerosol retrievals) block by block, removed along an Angstrom
    spectrum, recorded per scene (``haze_blue`` in the manifest)."""

    enabled: bool = Field(True, strict=True, description="estimate and remove residual haze")
    block_m: Real = Field(
        500.0, gt=0, le=50_000, description="side of the blocks haze is estimated on (metres)"
    )
    vegetation_swir_ratio: Real = Field(
        1.5,
        ge=1,
        le=4,
        description="dark vegetation candidates need SWIR1 >= this x SWIR2 (leaf water; soil, "
        "built ground, coal and char sit at 1.0-1.3)",
    )
    percentile: Real = Field(
        5.0, gt=0, lt=50, description="percentile of a block's DDV blue excess taken as its haze"
    )
    min_pixels: int = Field(
        100, ge=1, strict=True, description="dark vegetated clear pixels a block needs"
    )
    min_haze: Real = Field(
        0.006,
        ge=0,
        le=0.1,
        description="block estimates below this (the DDV relation's uncertainty in blue) are 0",
    )
    angstrom: Real = Field(
        1.5, ge=0, le=4, description="Angstrom exponent: haze falls as wavelength^-angstrom"
    )
    floor: Real = Field(
        0.005, ge=0, le=0.1, description="no band is taken below this reflectance by the removal"
    )


class FootprintRule(_Model):
    """Footprint (built, bare, spoil, coal) on the season composite."""

    ndvi_max: Real = Field(0.30, ge=-1, le=1, description="footprint needs NDVI below this")
    green_ndvi_max: Real = Field(
        0.50,
        ge=-1,
        le=1,
        description="and the season's green_percentile NDVI below this (never green)",
    )
    green_from: MonthDay = Field(
        "06-01", description="greenness counts clear observations from this day to season end"
    )
    green_percentile: Real = Field(
        100.0, ge=50, le=100, description="percentile of NDVI over clear observations: greenness"
    )
    mndwi_max: Real = Field(0.0, ge=-1, le=1, description="and MNDWI below this (not water)")
    swir16_min: Real = Field(
        0.03, ge=0, le=1, description="and SWIR1 above this (not water/shadow)"
    )
    opening_px: int = Field(
        1, ge=0, le=5, strict=True, description="morphological opening radius (pixels)"
    )

    edge_fraction: Real = Field(
        0.5,
        gt=0,
        le=1,
        description="rim pixels kept when at least this share is footprint (unmixing)",
    )

    @field_validator("green_from")
    @classmethod
    def _valid_day(cls, v: str) -> str:
        _month_day(v)
        return v


class CoalRule(_Model):
    """Coal per clear observation, counted with the frequency rule of DOMAIN.md."""

    brightness_max: Real = Field(
        0.075, gt=0, le=1, description="mean of the bands below this (dark)"
    )
    reflectance_max: Real = Field(0.12, gt=0, le=1, description="and every band below this")
    ndvi_max: Real = Field(0.2, ge=-1, le=1, description="NDVI below this")
    swir16_min: Real = Field(0.025, ge=0, le=1, description="SWIR1 above this (not water)")
    swir22_min: Real = Field(0.02, ge=0, le=1, description="SWIR2 above this (not water)")
    mndwi_max: Real = Field(0.1, ge=-1, le=1, description="MNDWI below this (not water)")
    swir_minus_blue_min: Real = Field(
        -0.005,
        ge=-1,
        le=1,
        description="SWIR1 - blue at least, in the look or on the median of the season's dark "
        "looks (not shadow; the margin is the products' accuracy, so flat coal passes)",
    )
    nir_minus_red_max: Real = Field(
        0.025,
        ge=0,
        le=1,
        description="or NIR - red below this (not vegetation where NDVI is noise: dark ground)",
    )
    flat_range_max: Real = Field(
        0.04,
        ge=0,
        le=1,
        description="when the bands lie within this of each other (flat, as coal is)",
    )
    min_frequency: Real = Field(0.5, gt=0, le=1, description="share of clear observations flagged")
    min_observations: int = Field(
        3,
        ge=1,
        le=100,
        strict=True,
        description="and at least this many flags (at most 100: no season holds more looks)",
    )
    seen_once_reach_m: Real = Field(
        30.0,
        ge=0,
        le=1000,
        description=(
            "where clouds leave a pixel one clear look, its coal flag counts only connected to "
            "confirmed coal within this distance (a cloud edge across a pile); 0: never"
        ),
    )
    veil_min_rise: Real = Field(
        0.015,
        ge=0,
        le=1,
        description=(
            "a look at least this much brighter than the season's median in blue, green and "
            "red, and no more in the SWIR (a thin cloud edge or haze the mask missed), is not "
            "counted as a clear look of the pixel unless flagged coal through it; 0: every "
            "clear look counts"
        ),
    )
    shade_min_loss: Real = Field(
        0.2,
        ge=0,
        lt=1,
        description=(
            "a look darker than the season's median by at least this share in every band (a "
            "cloud shadow the mask missed) is not counted as a clear look of the pixel unless "
            "flagged coal through it; 0: every clear look counts"
        ),
    )
    opening_px: int = Field(
        1,
        ge=0,
        le=5,
        strict=True,
        description=(
            "coal regions thinner than 2 r + 1 pixels everywhere are dropped (ships, roads); "
            "holes smaller than that square (a pixel the count missed) do not make a pile thin"
        ),
    )
    edge_rule: Literal["auto", "area", "majority"] = Field(
        "auto",
        description=(
            "how a pile's mixed rim is mapped (unmixing): area, its rim pixels, the most coal "
            "first, until the pile holds its unmixed area (a blurred pile keeps its area, not "
            "its outline); majority, a rim pixel when edge_fraction of it is coal; auto, area "
            "where the rim spans 3 grid pixels or more (Landsat on a 10 m grid), else majority"
        ),
    )
    edge_fraction: Real = Field(
        0.5,
        gt=0,
        le=1,
        description=(
            "with edge_rule majority (or auto on a narrow rim): rim pixels kept when at least "
            "this share is coal"
        ),
    )


class TerrainRule(_Model):
    """A slope in topographic shadow: dark ground whose brightness falls with the sinking sun
    through the season, left out of footprint and coal (``pipeline/terrain.py``)."""

    min_looks: int = Field(
        4, ge=3, le=100, strict=True, description="clear looks a pixel needs to be judged"
    )
    min_span_deg: Real = Field(
        8.0, gt=0, le=60, description="and the noon sun elevation they span (degrees)"
    )
    min_darkening_per_deg: Real = Field(
        0.006, ge=0, le=1, description="mean darkening (ln reflectance) per degree of sun, at least"
    )
    seed_sigmas: Real = Field(
        3.0, gt=0, le=20, description="a seed darkens this many spreads faster than flat ground"
    )
    grow_sigmas: Real = Field(
        2.0, gt=0, le=20, description="and its connected neighbours this many"
    )
    significance: Real = Field(
        0.025, gt=0, lt=0.5, description="one-sided level of a seed's Kendall trend test"
    )
    min_width_px: int = Field(
        3, ge=1, le=20, strict=True, description="regions without a square this wide are kept"
    )


class ClassifyConfig(_Model):
    footprint: FootprintRule = FootprintRule()
    coal: CoalRule = CoalRule()
    terrain: TerrainRule = TerrainRule()
    mode: Literal["rules", "supervised"] = Field(
        "rules",
        description="rules: the threshold recipe; supervised: a random forest trained on "
        "classify.training replaces each season's footprint and coal maps (docs/supervised.md)",
    )
    training: Path | None = Field(
        None,
        description="training polygons (GeoPackage or GeoJSON with fields class, year, optional "
        "site_id; `sitewatch training-template` writes an empty one); relative to the config "
        "file; required with mode supervised",
    )
    training_layer: str | None = Field(
        None, description="layer of classify.training holding the polygons (default: its only one)"
    )
    seed: int = Field(0, ge=0, strict=True, description="random_state of the supervised model")

    @model_validator(mode="after")
    def _training_given(self) -> ClassifyConfig:
        if self.mode == "supervised" and self.training is None:
            raise ValueError(
                "mode supervised needs training: the polygons to train on "
                "(`sitewatch training-template FILE` writes an empty file to draw them in)"
            )
        return self


class ChangeConfig(_Model):
    opening_px: int = Field(
        1,
        ge=0,
        le=5,
        strict=True,
        description="opening radius on added/removed masks: drops 1-px misregistration slivers",
    )


BandName = Literal[BANDS]  # type: ignore[valid-type]


class CoregistrationConfig(_Model):
    """Bringing a site's years onto one frame before areas and boundary movement are measured
    (``pipeline/coregister.py``: phase correlation of every pair of years, a least-squares
    network, whole-pixel moves kept only when they improve the match, as AROSICS checks)."""

    enabled: bool = Field(
        True,
        strict=True,
        description="co-register each site's years (a year a pixel or more off the others is "
        "moved back by whole pixels and flagged coregistered)",
    )
    band: BandName = Field(
        "swir16",
        description="band whose gradient magnitude is matched (edges persist across seasons and "
        "sensors)",
    )
    max_shift_px: Real = Field(
        5.0,
        gt=0,
        le=50,
        description="largest shift believed (pixels; AROSICS's default, 50 m at 10 m, covers the "
        "38 m found between Landsat 8 and Sentinel-2)",
    )
    min_correlation: Real = Field(
        0.2,
        gt=0,
        lt=1,
        description="two years count only when their gradient images, aligned, correlate at "
        "least this much (too little shared texture: no shift)",
    )
    min_overlap_px: int = Field(
        2500,
        ge=64,
        le=100_000_000,
        strict=True,
        description="pixels valid in both years for their pair to count",
    )
    max_residual_px: Real = Field(
        0.35,
        gt=0,
        le=5,
        description="a pair disagreeing with the network's adjustment by more than this "
        "(pixels) is dropped as a blunder",
    )
    upsample_factor: int = Field(
        20, ge=1, le=100, strict=True, description="sub-pixel precision: 1/upsample_factor px"
    )
    min_shift_px: Real = Field(
        0.75,
        ge=0.5,
        le=5,
        description="a year moves along an axis only when it lies this far off the others "
        "(pixels): a one-pixel move helps only past half a pixel, and the estimate and the "
        "frame are each uncertain by about 0.15 px",
    )
    min_resample_px: Real | None = Field(
        0.4,
        ge=0.25,
        le=5,
        description="a year that moving by whole pixels would leave this far off its site's "
        "other years (pixels, along either axis), or would move, is made again with every look "
        "resampled onto the years that stay before it is classified: a year a fraction of a "
        "pixel off maps a small site a rim of pixels aside, which whole-pixel moves cannot "
        "mend (the estimate and the frame are each uncertain by about 0.15 px); null: never "
        "(years a pixel or more off are then moved by whole pixels)",
    )


class LookRegistrationConfig(_Model):
    """Registering each look the season uses onto the looks' consensus at sub-pixel precision
    before they are composited (``pipeline/look_registration.py``: phase correlation of each
    look's gradient image against the median of the season's looks, AROSICS's reliability
    tests, bilinear resampling of the look and nearest for its masks; the shift applied is
    recorded per scene as ``registered_px`` in the manifest)."""

    enabled: bool = Field(
        True,
        strict=True,
        description="register each look onto its season's consensus before the median (a "
        "median of looks a fraction of a pixel apart is blurred and can sit that fraction off)",
    )
    band: BandName = Field(
        "red",
        description="band whose gradient magnitude is matched (a 10 m band: 20 m bands place "
        "edges less precisely)",
    )
    max_shift_px: Real = Field(
        2.0,
        gt=0,
        le=10,
        description="largest shift of a look believed (pixels); a site read by chunks reads "
        "floor(max_shift_px) + 1 more pixels around each chunk",
    )
    min_correlation: Real = Field(
        0.2,
        gt=0,
        lt=1,
        description="a look moves only when its gradient image, moved, correlates with the "
        "reference's at least this much and better than unmoved (noise, a flat field: no move)",
    )
    min_overlap_px: int = Field(
        2500,
        ge=64,
        le=100_000_000,
        strict=True,
        description="clear pixels a look needs on the reference to be matched (a cloudy look "
        "stays as read)",
    )
    upsample_factor: int = Field(
        20, ge=1, le=100, strict=True, description="sub-pixel precision: 1/upsample_factor px"
    )
    min_shift_px: Real = Field(
        0.25,
        ge=0,
        le=2,
        description="a look moves only when it lies this far off along an axis (pixels): "
        "bilinear resampling by s px keeps 1 - 2s of the finest detail",
    )


class LinesConfig(_Model):
    """New linear features (roads, tracks) found as lines against the neighbouring years and
    added to each year's footprint (``pipeline/linear.py``, ``analysis.add_lines``): a 12 m
    road through forest fills half of each 10 m pixel it crosses, too green for the per-pixel
    rules, and one pixel thin, what the opening removes. Depths and losses are NDVI."""

    enabled: bool = Field(True, strict=True, description="look for new linear features")
    min_depth: Real = Field(
        0.12,
        gt=0,
        le=1,
        description="a line lies at least this far below the ground on both sides of it (NDVI; "
        "a road half across a pixel of forest: ~0.3; unchanged ground: below 0.1 in 99% of "
        "pixels); a field edge or a shifted edge is a step, not a valley",
    )
    min_loss: Real = Field(
        0.12,
        gt=0,
        le=2,
        description="NDVI a line lost against the year before it appeared, beyond the median "
        "change of the ground around it (16-pixel blocks), along its median, and still lost the "
        "next year within a pixel of it (that year's composite may sit a pixel aside)",
    )
    min_length_m: Real = Field(
        200.0,
        gt=0,
        le=100_000,
        description="a line's largest extent (m): shorter dark strips are not taken for roads",
    )
    max_width_m: Real = Field(
        30.0,
        gt=0,
        le=1000,
        description="a line's mean width (area over length, m): three 10 m pixels, the widest "
        "strip the footprint's one-pixel opening removes",
    )
    span_px: int = Field(
        5,
        ge=3,
        le=15,
        strict=True,
        description="pixels of the segments that measure a valley (odd): fills valleys up to "
        "span_px - 1 pixels wide",
    )

    max_gap_m: Real | None = Field(
        30.0,
        ge=0,
        le=100_000,
        description="a new line counts only when it comes this near the year's footprint (m; a "
        "road cut to the camp or mine joins it, logging tracks and field paths out in the "
        "country do not), itself or through the valleys it connects to within min_length_m "
        "(where a road's loss dips under min_loss, or it follows an older track); null: "
        "anywhere in the analysis area",
    )

    @field_validator("span_px")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"span_px must be odd, got {v}")
        return v


class BoundariesConfig(_Model):
    min_mapping_unit_ha: Real = Field(0.25, ge=0, le=100, description="smallest polygon kept (ha)")


SiteKind = Literal[SITE_KINDS]  # type: ignore[valid-type]


class AdjacentZonesConfig(_Model):
    """The zones beside the camps (where released prisoners and their families live), each
    tracked as its own site ``<id>-adjacent`` (``sites.adjacent_zones``)."""

    width_m: Real = Field(
        0.0,
        ge=0,
        le=20_000,
        description="ring width outside each whole site of `kinds` (m); 0: no adjacent zones",
    )
    kinds: tuple[SiteKind, ...] = Field(
        CAMP_KINDS, description="site kinds that get a ring (whole sites only, not focus areas)"
    )


class PerimetersConfig(_Model):
    """Analyst-drawn perimeters, one polygon per site and year or date (``pipeline.perimeters``)."""

    path: Path = Field(description="GeoJSON, GeoPackage or KML, relative to the config file")
    layer: str | None = Field(None, description="GeoPackage layer (needed when it has several)")
    site_field: str = Field("site_id", description="field holding the site id")
    year_field: str = Field("year", description="field holding the year")
    date_field: str = Field("date", description="field holding an ISO date (if no year)")


class ExpansionConfig(_Model):
    """Boundary expansion between years (``pipeline.expansion``), from the footprints and from
    analyst-drawn perimeters."""

    sectors: int = Field(
        16, ge=4, le=72, strict=True, description="direction sectors for outward displacement"
    )
    perimeters: PerimetersConfig | None = Field(
        None, description="analyst-drawn perimeters to measure as well (or --perimeters)"
    )


class EventConfig(_Model):
    """A dated event the trend tables test each series against."""

    name: str = Field(min_length=1, max_length=200, description="what happened")
    date: datetime.date = Field(description="when (YYYY-MM-DD)")


class TrendsConfig(_Model):
    min_years: int = Field(
        5,
        ge=3,
        le=100,
        strict=True,
        description="fewer years than this: trend 'insufficient' (3..100: years run 1984..2100)",
    )
    alpha: Real = Field(0.05, gt=0, lt=1, description="Mann-Kendall significance level")
    keep_flagged: bool = Field(
        False,
        strict=True,
        description="keep years flagged few-clear-observations or partial-coverage in the "
        "statistics (they are left out by default and counted in the table)",
    )
    reference_samples: Path | None = Field(
        None,
        description="a reference sample labelled in QGIS (sitewatch sample, then label): "
        "trends.csv then carries its sample-based areas and 95% intervals (interval_basis "
        "sample) where it has labels; relative to the config file",
    )
    events: tuple[EventConfig, ...] = Field(
        tuple(EventConfig.model_validate({"name": e.name, "date": e.date}) for e in DEFAULT_EVENTS),
        description="events each series is tested against (before/after means, interrupted "
        "time series); default: UNSCR 2321, UNSCR 2371 and the two 2018 summits",
    )


class YearsConfig(_Model):
    start: int = Field(ge=1984, le=2100, strict=True, description="first year analysed")
    end: int = Field(ge=1984, le=2100, strict=True, description="last year analysed (inclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> YearsConfig:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def all(self) -> list[int]:
        return list(range(self.start, self.end + 1))


class LimitsConfig(_Model):
    """Sizes refused before any search or read (``sites.check_site_limits``), so a site too big
    for the machine fails at once with what to do instead of a MemoryError hours in. The
    defaults are sized for 24 GB: read by chunks (``grid.chunk_px``), a site-year needs ~500 B
    per grid pixel per worker; read whole, ~4.5 KB (60 scenes of 6 float32 bands and a mask,
    plus the composite's temporaries), so a whole-grid read also stays within 4 Mpx."""

    max_site_area_km2: Real = Field(
        DEFAULT_MAX_SITE_AREA_KM2,
        gt=0,
        le=1_000_000,
        description="refuse a site larger than this (km2, without buffer): what 24 GB holds at "
        "20 m; split larger sites (at most 1,000,000 km2: a UTM zone is ~700 km wide)",
    )
    max_grid_pixels: int = Field(
        DEFAULT_MAX_GRID_PIXELS,
        ge=1,
        le=1_000_000_000,
        strict=True,
        description=f"refuse a site grid (buffer included) with more pixels: read by chunks "
        f"~{BYTES_PER_GRID_PIXEL:,} bytes per pixel per worker, 12 Mpx = 6 GB (read whole, at "
        "most 4 Mpx: 18 GB); coarsen grid.resolution_m instead (at most 1e9)",
    )


class RunConfig(_Model):
    """One run: which sites, which years, where pixels come from and how they are judged."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", description="run name")
    sites: Path = Field(description="site GeoJSON (aoi/*.geojson), relative to the config file")
    site_ids: tuple[str, ...] | None = Field(None, description="subset of site ids; all if absent")
    years: YearsConfig
    source: SourceConfig = SyntheticSourceConfig()
    grid: GridConfig = GridConfig()
    season: SeasonConfig = SeasonConfig()
    masking: MaskingConfig = MaskingConfig()
    read: ReadConfig = ReadConfig()
    harmonize: HarmonizeConfig = HarmonizeConfig()
    haze: HazeConfig = HazeConfig()
    classify: ClassifyConfig = ClassifyConfig()
    change: ChangeConfig = ChangeConfig()
    coregistration: CoregistrationConfig = CoregistrationConfig()
    look_registration: LookRegistrationConfig = LookRegistrationConfig()
    lines: LinesConfig = LinesConfig()
    boundaries: BoundariesConfig = BoundariesConfig()
    adjacent_zones: AdjacentZonesConfig = AdjacentZonesConfig()
    expansion: ExpansionConfig = ExpansionConfig()
    trends: TrendsConfig = TrendsConfig()
    output_dir: Path = Field(Path("runs"), description="outputs go to output_dir/name unless --out")
    cache_dir: Path = Field(Path(".sitewatch-cache"), description="scenario and chip cache")
    limits: LimitsConfig = LimitsConfig()
    workers: int = Field(
        1,
        ge=1,
        le=64,
        strict=True,
        description="parallel processes over site-years, and over the chunks of a site read by "
        "chunks (grid.chunk_px); each holds one task's arrays in memory",
    )
    scheduler: str | None = Field(
        None,
        description=(
            "address of an existing dask.distributed scheduler (tcp://HOST:PORT) to run the "
            "site-years on instead of local processes; its workers need this sitewatch version "
            "and the run's folder on a shared file system (set by --scheduler)"
        ),
    )
    write_rasters: bool = Field(True, strict=True, description="write per site-year COGs")
    offline: bool = Field(
        False, strict=True, description="search and read from the cache only (set by --offline)"
    )

    @field_validator("output_dir", "cache_dir")
    @classmethod
    def _folder_path(cls, v: Path) -> Path:
        """A folder the run creates or writes into: refused at load when a file is in the way
        (the path itself or one of its parents)."""
        if "\x00" in str(v):
            raise ValueError("a path cannot contain a NUL character")
        for p in (v, *v.parents):
            try:
                if p.is_dir():
                    break
                if p.exists():
                    what = "the path" if p == v else f"its parent {shorten(str(p))}"
                    raise ValueError(f"{what} is a file, not a folder; give a folder path")
            except OSError:  # unreadable parent, name too long: the run says so when it writes
                break
        return v

    def updated(self, **changes: Any) -> RunConfig:
        """A copy with top-level ``changes`` (e.g. ``workers=4``), validated like a loaded file."""
        try:
            return RunConfig.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise ConfigError(format_validation_error("command-line options", exc)) from None

    def hash(self) -> str:
        """SHA-256 of what decides the numbers: the resolved config without where outputs and
        caches go or how many workers run, with the sites file by content, not by path."""
        data = self.model_dump(mode="json", exclude=set(OPERATIONAL_FIELDS))
        del data["grid"]["chunk_px"]  # how a site-year is read, never what it gives
        data["sites"] = content_hash(self.sites)
        # Files by content, so a moved catalog gives the same hash and an edited one a new
        # hash (a static catalog's items edited without touching catalog.json are not seen).
        data["source"] = self.source.hash_data()
        if self.expansion.perimeters is not None:
            data["expansion"]["perimeters"]["path"] = content_hash(self.expansion.perimeters.path)
        if self.classify.training is not None:
            data["classify"]["training"] = content_hash(self.classify.training)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


_PATH_FIELDS = ("sites", "output_dir", "cache_dir")
# Where and how parallel a run executes: left out of the manifest's copy of the config as well
# as the hash, so that a run on a dask cluster writes the same bytes as a local one.
EXECUTION_FIELDS = ("workers", "scheduler")
# Fields that change where or how fast a run happens, never its numbers: not in the config hash.
OPERATIONAL_FIELDS = (
    "output_dir",
    "cache_dir",
    "workers",
    "scheduler",
    "write_rasters",
    "offline",
    "read",
    "limits",
)


# A run config is a page of keys; anything larger is not one (and would be parsed in memory).
MAX_CONFIG_BYTES = 1_000_000
# YAML anchors and aliases are allowed (``<<: *defaults``), but every alias counts as a copy of
# what it names: past this many nodes in all, the file is refused (a "billion laughs" document
# of 9 levels of 10 aliases expands to 10^9 nodes from a few hundred bytes).
MAX_ALIAS_NODES = 10_000
# Deeper nesting than this is no config (the deepest key is 4 levels down).
MAX_YAML_DEPTH = 50
# Problems listed per validation error message; the count says how many there were.
MAX_PROBLEMS_SHOWN = 20


class _YamlRefused(Exception):
    """Raised inside the loader; ``load_config`` turns it into a ConfigError or LimitError."""

    def __init__(self, line: int, message: str, limit: bool = False) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.limit = limit


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data only: no Python objects) that also refuses duplicate
    keys, nesting deeper than ``MAX_YAML_DEPTH`` and aliases expanding past
    ``MAX_ALIAS_NODES`` nodes, before anything is constructed from them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._expanded = 0
        self._depth = 0
        self._open: set[str] = set()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            anchor = str(event.anchor)
            if anchor in self._open:
                raise _YamlRefused(
                    line,
                    f"alias *{shorten_text(anchor, 60)} refers to itself; aliases may only repeat "
                    "a value defined before them",
                )
            node = self.anchors.get(anchor)
            if node is not None:
                self._expanded += self._size(node)
                if self._expanded > MAX_ALIAS_NODES:
                    raise _YamlRefused(
                        line,
                        f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} nodes; anchors "
                        f"and aliases are allowed up to {MAX_ALIAS_NODES:,} expanded nodes in "
                        "all: write the values out",
                        limit=True,
                    )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _YamlRefused(
                line, f"nested deeper than {MAX_YAML_DEPTH} levels; a run config is at most 4"
            )
        opened: str | None = getattr(event, "anchor", None)
        if opened is not None:
            self._open.add(opened)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if opened is not None:
                self._open.discard(opened)

    def _size(self, node: yaml.Node) -> int:
        """Nodes in ``node`` with every alias expanded (memoised: linear in the file)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._size(n) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return size

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: later keys override merged ones, as YAML says
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)  # 1, 1.0 and true are one key in the dict built
            except TypeError:
                continue  # an unhashable key: SafeLoader refuses it below
            if first is None:
                seen[key] = line
            else:
                raise _YamlRefused(
                    line,
                    f"duplicate key {shorten(key)} (first at line {first}); each key may "
                    "appear once in a mapping: remove one",
                )
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, origin: str = "<config>") -> Any:
    """Parse config YAML safely (see ``_ConfigLoader``); errors name ``origin`` and the line."""
    loader: _ConfigLoader | None = None
    try:
        loader = _ConfigLoader(text)  # the reader checks every character here
        return loader.get_single_data()
    except _YamlRefused as exc:
        error = LimitError if exc.limit else ConfigError
        raise error(f"{origin}: line {exc.line}: {exc.message}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {shorten_text(str(exc))}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config; relative paths resolve against its folder."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read config ({shorten_text(str(exc))})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise LimitError(
            f"{path}: config file larger than {MAX_CONFIG_BYTES:,} bytes; a run config is a "
            "page of keys: is this the right file?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read config, not UTF-8 text ({exc})") from None
    raw = parse_yaml(text, origin=str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(raw).__name__}")
    return config_from_mapping(raw, base_dir=path.parent, origin=str(path))


def config_from_mapping(
    raw: dict[str, Any], base_dir: Path = Path("."), origin: str = "<config>"
) -> RunConfig:
    """Validate a config mapping (as parsed from YAML); ``origin`` names it in errors."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{origin}: top level must be a mapping of keys, got {type(raw).__name__}"
        )
    data = dict(raw)
    for key in _PATH_FIELDS:
        if isinstance(data.get(key), str):
            data[key] = str(_resolve(base_dir, data[key], key, origin))
    source = data.get("source")
    name = source.get("kind", "synthetic") if isinstance(source, dict) else None
    kind = SOURCE_KINDS.get(name) if isinstance(name, str) else None
    if isinstance(source, dict) and kind is not None:
        resolved = {
            name: str(_resolve(base_dir, source[name], f"source.{name}", origin))
            for name in kind.config.path_fields
            if isinstance(source.get(name), str)
        }
        data["source"] = {**source, **resolved}
    expansion = data.get("expansion")
    perimeters = expansion.get("perimeters") if isinstance(expansion, dict) else None
    if (
        isinstance(expansion, dict)
        and isinstance(perimeters, dict)
        and isinstance(perimeters.get("path"), str)
    ):
        where = "expansion.perimeters.path"
        path = str(_resolve(base_dir, perimeters["path"], where, origin))
        data["expansion"] = {**expansion, "perimeters": {**perimeters, "path": path}}
    classify = data.get("classify")
    if isinstance(classify, dict) and isinstance(classify.get("training"), str):
        path = str(_resolve(base_dir, classify["training"], "classify.training", origin))
        data["classify"] = {**classify, "training": path}
    trends = data.get("trends")
    if isinstance(trends, dict) and isinstance(trends.get("reference_samples"), str):
        where = "trends.reference_samples"
        path = str(_resolve(base_dir, trends["reference_samples"], where, origin))
        data["trends"] = {**trends, "reference_samples": path}
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(origin, exc)) from None
    except RecursionError:
        raise ConfigError(f"{origin}: the run config is nested too deeply") from None


def _resolve(base: Path, value: str, key: str = "path", origin: str = "<config>") -> Path:
    try:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p).resolve()
    except (RuntimeError, ValueError, OSError) as exc:  # ~nobody/, a NUL byte, a link loop
        raise ConfigError(
            f"{origin}: {key}: {shorten(value)} is not a usable path ({shorten_text(str(exc))})"
        ) from None


def format_validation_error(origin: str, exc: ValidationError) -> str:
    """One line per problem: the key path, what is wrong and the value given, every value cut
    to ``MESSAGE_VALUE_CHARS`` (never the whole input) and at most ``MAX_PROBLEMS_SHOWN``."""
    errors = exc.errors(include_url=False)
    lines = [f"{origin}: {len(errors)} problem(s) in the run config:"]
    listed: set[str] = set()
    for err in errors[:MAX_PROBLEMS_SHOWN]:
        key = shorten_text(".".join(str(p) for p in err["loc"]), 200) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(err["loc"][:-1]))
            if allowed in listed:
                lines.append(f"  {key}: unknown key; allowed keys as listed above")
            else:
                listed.add(allowed)
                lines.append(f"  {key}: unknown key; allowed here: {allowed}")
            continue
        # redact: a URL given with user:password@ or a signed query must not reach the terminal
        problem = f"{shorten_text(err['msg'])} (got {shorten(err.get('input'))})"
        lines.append(f"  {key}: {redact(problem)}")
    if len(errors) > MAX_PROBLEMS_SHOWN:
        lines.append(f"  ... and {len(errors) - MAX_PROBLEMS_SHOWN} more")
    return "\n".join(lines)


def _allowed_keys(parent: tuple[int | str, ...]) -> list[str]:
    """The field names of the model at ``parent`` (a pydantic error location) in RunConfig."""
    model: type[BaseModel] = RunConfig
    for part in parent:
        if isinstance(part, int):
            continue
        if isinstance(part, str) and part in SOURCE_KINDS:
            model = SOURCE_KINDS[part].config
            continue
        info = model.model_fields.get(str(part))
        nested = [
            t for t in (getattr(info.annotation, "__args__", None) or (info.annotation,))
            if isinstance(t, type) and issubclass(t, BaseModel)
        ] if info else []  # fmt: skip
        if not nested:
            break
        if len(nested) == 1:
            model = nested[0]  # a union (``source``) is resolved by the next part, its kind
    return list(model.model_fields)


def config_to_yaml(config: RunConfig) -> str:
    """The resolved config as YAML, every default written out."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def config_reference() -> str:
    """Markdown reference of every config key, its default and its meaning (docs/config.md)."""
    lines = [
        "# Run config reference",
        "",
        "Generated from `pipeline/config.py` by `sitewatch config reference`; a test keeps this",
        "file in step with the code. Keys not written in a config take the default shown.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            key = f"{prefix}{name}"
            ann = info.annotation
            nested = [
                t for t in (getattr(ann, "__args__", None) or (ann,))
                if isinstance(t, type) and issubclass(t, BaseModel)
            ]  # fmt: skip
            if len(nested) == 1:
                walk(nested[0], key + ".")
                continue
            if len(nested) > 1:
                continue  # `source`: one table per kind below
            default = "required" if info.is_required() else f"`{_plain(info.get_default())}`"
            doc = (info.description or "").replace("|", "\\|")
            lines.append(f"| `{key}` | {_type_name(ann)} | {default} | {doc} |")

    walk(RunConfig, "")
    for variant in (k.config for k in SOURCE_KINDS.values()):
        lines += ["", f"## `source` with `kind: {variant.model_fields['kind'].default}`", ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        walk(variant, "source.")
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return "{...}"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _type_name(annotation: Any) -> str:
    if "Annotated[" in str(annotation):  # a constrained type (``Real``) reads as its type
        return _unannotated(annotation)
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("pathlib.", "").replace("|", "or")


def _unannotated(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "None"
    if annotation is Ellipsis:
        return "..."
    if origin is Annotated:
        return _unannotated(args[0])
    if isinstance(annotation, types.UnionType) or origin is Union:
        return " or ".join(_unannotated(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_unannotated(a) for a in args)}]"
    return str(getattr(annotation, "__name__", annotation))
