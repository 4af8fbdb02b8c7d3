"""What a synthetic scenario contains: ``ScenarioParams`` and the constants its validation needs.

Light on purpose: pydantic and the standard library only (no numpy, rasterio or shapely), so the
config layer can validate ``source.scenario`` without loading the generator.
"""

from __future__ import annotations

import hashlib
import math
from datetime import date
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

# Bump when the generator's output changes for the same parameters: it is part of the cache key.
GENERATOR_VERSION = "3"
DEMO_SITE_IDS: tuple[str, ...] = ("demo-camp", "demo-port", "demo-control")
# Surfaces are rasterised at 10 m / SUPERSAMPLE (2.5 m), shifted there and block-averaged: mixed
# pixels at every edge, and misregistration in 2.5 m steps.
SUPERSAMPLE = 4
SUPER_RES_M = 10.0 / SUPERSAMPLE
MAX_SHIFT_M = 10.0
# The hard cases of the accuracy suite (``pipeline.accuracy_suite``): each field puts one
# difficulty into the scenario. All are off by default and left out of every dump while off
# (``cache_key``, ``scenario.json``, a run's config and its hash), so the demo is unchanged.
HARD_CASE_FIELDS: tuple[str, ...] = (
    "haze_strength",
    "snow_years",
    "snow_from",
    "harvest_shift_days",
    "terrain_shadow",
    "flat_coal",
    "water_level",
    "road_year",
    "burn_date",
    "missing_years",
    "wrong_offset_probability",
    "shift_by_year",
    "construction_date",
    "landsat_until",
)
# Fields left out of every dump while at their default, as the hard cases are: the hard cases
# and ``acquisition_window`` (small scenarios for the accuracy suite).
OPTIONAL_FIELDS: tuple[str, ...] = (*HARD_CASE_FIELDS, "acquisition_window")
_MonthDay = tuple[int, int]


class ScenarioParams(BaseModel):
    """What the synthetic scenario contains. Every field is part of the cache key.

    The defaults are the demo scenario: three sites, ten years, 15-30 acquisitions per site and
    year (at least ``autumn_min_acquisitions`` of them in 1 Sep - 15 Nov), realistic clouds.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(42, ge=0, description="root of every random draw")
    start_year: int = Field(2016, ge=2016, le=2030, description="first calendar year imaged")
    end_year: int = Field(2025, ge=2016, le=2030, description="last calendar year imaged")
    acquisitions_per_year: tuple[int, int] = Field(
        (15, 30), description="(min, max) scenes per site and year, all seasons; max <= 36"
    )
    autumn_min_acquisitions: int = Field(
        8, ge=0, le=15, description="scenes at least in 1 Sep - 15 Nov (when the year allows)"
    )
    sites: tuple[str, ...] = Field(DEMO_SITE_IDS, description="demo site ids to generate")
    cloud_frequency: float = Field(
        1.0, ge=0.0, le=3.0, description="scales the monthly chance of clouds; 0 = always clear"
    )
    noise_sigma: float = Field(0.004, ge=0.0, le=0.05, description="sensor noise (reflectance)")
    gain_jitter: float = Field(0.03, ge=0.0, le=0.2, description="per-scene band gain, +/-")
    offset_jitter: float = Field(0.005, ge=0.0, le=0.05, description="per-scene offset, +/-")
    haze_probability: float = Field(0.3, ge=0.0, le=1.0, description="chance of unflagged haze")
    snow_probability: float = Field(0.5, ge=0.0, le=1.0, description="chance of snow, Dec-Mar")
    coal_dark_label_fraction: float = Field(
        0.35, ge=0.0, le=1.0, description="share of scenes where SCL labels coal 2 or 3"
    )
    partial_coverage_probability: float = Field(
        0.05, ge=0.0, le=1.0, description="chance a swath edge leaves part of a scene nodata"
    )
    ship_probability: float = Field(
        0.4, ge=0.0, le=1.0, description="chance a loaded coal ship is moored at the port"
    )
    max_shift_m: float = Field(
        MAX_SHIFT_M, ge=0.0, le=MAX_SHIFT_M, description="misregistration bound, multiple of 2.5"
    )
    acquisition_window: tuple[_MonthDay, _MonthDay] | None = Field(
        None,
        description="((month, day), (month, day)): only passes in this part of each year are "
        "imaged (a small scenario holding just the scenes a run reads); None: all year",
    )
    # ---- hard cases (HARD_CASE_FIELDS), all off by default
    haze_strength: float = Field(
        1.0, ge=1.0, le=10.0, description="multiplies the unflagged haze's path reflectance"
    )
    snow_years: tuple[int, ...] = Field(
        (), description="years whose autumn has snow from snow_from on, inside the season window"
    )
    snow_from: _MonthDay = Field(
        (10, 20), description="(month, day) from which snow lies in snow_years"
    )
    harvest_shift_days: tuple[tuple[int, int], ...] = Field(
        (),
        description="(year, days): crops harvested that many days early (< 0) or late (> 0); "
        "bare fields are not footprint",
    )
    terrain_shadow: bool = Field(
        False,
        description="a rocky north-facing slope in topographic shadow, deepest under the low "
        "autumn sun: dark and flat like coal, but neither coal nor footprint",
    )
    flat_coal: bool = Field(
        False,
        description="coal exactly flat from blue to SWIR2 (SWIR1 = blue), the flattest real "
        "coal: on the edge of the coal rule's shadow test",
    )
    water_level: tuple[tuple[int, float], ...] = Field(
        (),
        description="(year, share of the full reservoir under water): the site's pond becomes "
        "a 6 ha reservoir whose exposed bed is mud (not footprint); unlisted years are full",
    )
    road_year: int | None = Field(
        None, description="a new 12 m asphalt road at the camp from this year-state (footprint)"
    )
    burn_date: date | None = Field(
        None,
        description="a forest fire at each site on this day: a dark scar that regreens over two "
        "seasons (neither footprint nor coal)",
    )
    missing_years: tuple[int, ...] = Field((), description="years with no scene at all")
    wrong_offset_probability: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="chance a scene's metadata contradicts the BOA offset in its pixels",
    )
    shift_by_year: bool = Field(
        False,
        description="every scene of a year misregistered by max_shift_m, in a direction that "
        "changes from year to year",
    )
    construction_date: date | None = Field(
        None,
        description="a new compound at the camp, cleared on this day (1 Apr - 31 Aug): its "
        "year's truth has it, and the scenes before that day do not",
    )
    landsat_until: int | None = Field(
        None,
        description="calendar years up to this one are imaged by Landsat 8/9 OLI (30 m, "
        "Collection 2 Level-2 items) instead of Sentinel-2",
    )

    @field_validator("sites")
    @classmethod
    def _known_sites(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in DEMO_SITE_IDS]
        if unknown or not value or len(set(value)) != len(value):
            raise ValueError(f"sites {list(value)}: need distinct ids among {list(DEMO_SITE_IDS)}")
        return value

    @field_validator("max_shift_m")
    @classmethod
    def _on_supergrid(cls, value: float) -> float:
        if not math.isclose(value / SUPER_RES_M, round(value / SUPER_RES_M)):
            raise ValueError(f"max_shift_m {value}: must be a multiple of {SUPER_RES_M} m")
        return value

    @field_validator("snow_from")
    @classmethod
    def _month_day(cls, value: tuple[int, int]) -> tuple[int, int]:
        _check_month_day("snow_from", value)
        return value

    @field_validator("acquisition_window")
    @classmethod
    def _window(
        cls, value: tuple[tuple[int, int], tuple[int, int]] | None
    ) -> tuple[tuple[int, int], tuple[int, int]] | None:
        if value is not None:
            start, end = (_check_month_day("acquisition_window", v) for v in value)
            if start > end:
                raise ValueError(f"acquisition_window {value}: starts after it ends")
        return value

    @field_validator("harvest_shift_days")
    @classmethod
    def _shifts(cls, value: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        if any(abs(days) > 45 for _, days in value):
            raise ValueError(f"harvest_shift_days {value}: shifts of at most 45 days")
        return value

    @field_validator("water_level")
    @classmethod
    def _levels(cls, value: tuple[tuple[int, float], ...]) -> tuple[tuple[int, float], ...]:
        if any(not 0.1 <= share <= 1.0 for _, share in value):
            raise ValueError(f"water_level {value}: shares between 0.1 and 1")
        return value

    @field_validator("construction_date")
    @classmethod
    def _in_growing_season(cls, value: date | None) -> date | None:
        if value is not None and not 4 <= value.month <= 8:
            raise ValueError(
                f"construction_date {value}: must fall in 1 Apr - 31 Aug, after its year-state "
                "begins and before the season window"
            )
        return value

    @model_serializer(mode="wrap")
    def _omit_hard_cases_when_off(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in OPTIONAL_FIELDS:
                if getattr(self, name) == type(self).model_fields[name].default:
                    data.pop(name, None)
        return data

    @model_validator(mode="after")
    def _ranges(self) -> ScenarioParams:
        if self.end_year < self.start_year:
            raise ValueError(f"end_year {self.end_year} is before start_year {self.start_year}")
        lo, hi = self.acquisitions_per_year
        if not 1 <= lo <= hi <= 36:
            raise ValueError(
                f"acquisitions_per_year {(lo, hi)}: need 1 <= min <= max <= 36 "
                "(36 is the 10-day revisit of one satellite)"
            )
        return self

    @property
    def years(self) -> list[int]:
        return list(range(self.start_year, self.end_year + 1))

    @property
    def hard_cases(self) -> tuple[str, ...]:
        """The hard-case fields set away from their defaults."""
        return tuple(
            n for n in HARD_CASE_FIELDS if getattr(self, n) != type(self).model_fields[n].default
        )

    def cache_key(self) -> str:
        """A short hash of these parameters and ``GENERATOR_VERSION``."""
        text = f"{GENERATOR_VERSION}\n{self.model_dump_json()}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_month_day(name: str, value: tuple[int, int]) -> date:
    try:
        return date(2021, *value)
    except (ValueError, OverflowError):
        raise ValueError(f"{name} {list(value)}: not a (month, day)") from None
