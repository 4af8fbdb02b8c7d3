"""What a synthetic scenario contains: ``ScenarioParams`` and the constants its validation needs.

Light on purpose: pydantic and the standard library only (no numpy, rasterio or shapely), so the
config layer can validate ``source.scenario`` without loading the generator.
"""

from __future__ import annotations

import hashlib
import math

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Bump when the generator's output changes for the same parameters: it is part of the cache key.
GENERATOR_VERSION = "2"
DEMO_SITE_IDS: tuple[str, ...] = ("demo-camp", "demo-port", "demo-control")
# Surfaces are rasterised at 10 m / SUPERSAMPLE (2.5 m), shifted there and block-averaged: mixed
# pixels at every edge, and misregistration in 2.5 m steps.
SUPERSAMPLE = 4
SUPER_RES_M = 10.0 / SUPERSAMPLE
MAX_SHIFT_M = 10.0


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

    def cache_key(self) -> str:
        """A short hash of these parameters and ``GENERATOR_VERSION``."""
        text = f"{GENERATOR_VERSION}\n{self.model_dump_json()}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]
