"""The typed run config: YAML in, validated frozen models out.

Every field has a documented default, unknown keys are rejected, and errors name the file, the
key path, the bad value and what is allowed. Relative paths in a config file are resolved against
the folder of that file, so a config can be run from anywhere.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError
from pipeline.masking import (
    CLOUD_DILATION_M,
    QA_PIXEL_CLOUDS,
    QA_PIXEL_NOT_CLEAR,
    SCL_CLOUDS,
    SCL_NOT_CLEAR,
    MaskRules,
)
from pipeline.model import FrozenModel, content_hash
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


class SeasonConfig(_Model):
    """The same day-of-year window every year (DOMAIN.md: 1 Sep - 15 Nov, widened when sparse)."""

    start: MonthDay = Field("09-01", description="first day of the season window (MM-DD)")
    end: MonthDay = Field("11-15", description="last day of the season window (MM-DD)")
    fallback_start: MonthDay = Field("08-15", description="widened window start (MM-DD)")
    fallback_end: MonthDay = Field("11-30", description="widened window end (MM-DD)")
    min_clear_observations: int = Field(
        3, ge=1, description="widen the window (and flag the year) when the median pixel has fewer"
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
    resolution_m: float = Field(10.0, gt=0, le=1000, description="pixel size of the site grid (m)")
    buffer_m: float = Field(200.0, ge=0, le=50_000, description="buffer around each site (m)")


class MaskingConfig(_Model):
    """SCL classes and QA_PIXEL bits masked. SCL 2 (dark area), 3 (cloud shadow), 6 (water) and
    QA_PIXEL bit 4 (cloud shadow) stay unmasked on purpose: Sen2Cor and Fmask label coal piles
    as dark area or shadow, and masking them erases what is measured (DOMAIN.md)."""

    scl_masked: tuple[int, ...] = Field(SCL_NOT_CLEAR, description="SCL classes not clear")
    scl_dilated: tuple[int, ...] = Field(SCL_CLOUDS, description="SCL classes dilated (clouds)")
    qa_pixel_masked_bits: tuple[int, ...] = Field(
        QA_PIXEL_NOT_CLEAR,
        description="Landsat QA_PIXEL bits not clear (0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, "
        "4 shadow, 5 snow, 7 water)",
    )
    qa_pixel_dilated_bits: tuple[int, ...] = Field(
        QA_PIXEL_CLOUDS, description="QA_PIXEL bits dilated like clouds (USGS dilates bit 1)"
    )
    qa_radsat: bool = Field(True, description="mask Landsat pixels saturated in any band")
    cloud_dilation_m: float = Field(
        CLOUD_DILATION_M, ge=0, le=2000, description="cloud dilation radius (m)"
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

    def rules(self) -> MaskRules:
        return MaskRules(
            self.scl_masked,
            self.scl_dilated,
            self.qa_pixel_masked_bits,
            self.qa_pixel_dilated_bits,
            self.qa_radsat,
            self.cloud_dilation_m,
        )


class ReadConfig(_Model):
    """How reads behave over flaky networks (GDAL /vsicurl/, /vsis3/)."""

    retries: int = Field(3, ge=1, le=10, description="attempts per asset before a scene is skipped")
    backoff_s: float = Field(1.0, ge=0, le=60, description="first retry delay, doubled each time")
    timeout_s: float = Field(30.0, gt=0, le=600, description="HTTP timeout per request (s)")

    def settings(self, offline: bool = False) -> ReadSettings:
        return ReadSettings(self.retries, self.backoff_s, self.timeout_s, offline)


class HarmonizeConfig(_Model):
    """Cross-sensor harmonisation of a series mixing Landsat and Sentinel-2 (DOMAIN.md)."""

    to: Literal["none", "landsat-oli"] = Field(
        "none",
        description="none, or landsat-oli: Sentinel-2 MSI by HLS v1.4 (Claverie 2018), TM/ETM+ "
        "by Roy et al. 2016, onto OLI",
    )


class FootprintRule(_Model):
    """Footprint (built, bare, spoil, coal) on the season composite."""

    ndvi_max: float = Field(0.30, ge=-1, le=1, description="footprint needs NDVI below this")
    green_ndvi_max: float = Field(
        0.50,
        ge=-1,
        le=1,
        description="and the season's green_percentile NDVI below this (never green)",
    )
    green_from: MonthDay = Field(
        "06-01", description="greenness counts clear observations from this day to season end"
    )
    green_percentile: float = Field(
        100.0, ge=50, le=100, description="percentile of NDVI over clear observations: greenness"
    )
    mndwi_max: float = Field(0.0, ge=-1, le=1, description="and MNDWI below this (not water)")
    swir16_min: float = Field(
        0.03, ge=0, le=1, description="and SWIR1 above this (not water/shadow)"
    )
    opening_px: int = Field(1, ge=0, le=5, description="morphological opening radius (pixels)")

    edge_fraction: float = Field(
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

    brightness_max: float = Field(
        0.075, gt=0, le=1, description="mean of the bands below this (dark)"
    )
    reflectance_max: float = Field(0.12, gt=0, le=1, description="and every band below this")
    ndvi_max: float = Field(0.2, ge=-1, le=1, description="NDVI below this")
    swir16_min: float = Field(0.025, ge=0, le=1, description="SWIR1 above this (not water)")
    swir22_min: float = Field(0.02, ge=0, le=1, description="SWIR2 above this (not water)")
    mndwi_max: float = Field(0.1, ge=-1, le=1, description="MNDWI below this (not water)")
    swir_minus_blue_min: float = Field(
        0.0, ge=-1, le=1, description="SWIR1 - blue at least (not shadow)"
    )
    min_frequency: float = Field(0.5, gt=0, le=1, description="share of clear observations flagged")
    min_observations: int = Field(3, ge=1, description="and at least this many flags")
    opening_px: int = Field(
        1,
        ge=0,
        le=5,
        description="coal regions thinner than 2 r + 1 pixels everywhere are dropped (ships, roads)",
    )
    edge_fraction: float = Field(
        0.5, gt=0, le=1, description="rim pixels kept when at least this share is coal (unmixing)"
    )


class ClassifyConfig(_Model):
    footprint: FootprintRule = FootprintRule()
    coal: CoalRule = CoalRule()


class ChangeConfig(_Model):
    opening_px: int = Field(
        1,
        ge=0,
        le=5,
        description="opening radius on added/removed masks: drops 1-px misregistration slivers",
    )


class BoundariesConfig(_Model):
    min_mapping_unit_ha: float = Field(0.25, ge=0, le=100, description="smallest polygon kept (ha)")


class TrendsConfig(_Model):
    min_years: int = Field(5, ge=3, description="fewer years than this: trend 'insufficient'")
    alpha: float = Field(0.05, gt=0, lt=1, description="Mann-Kendall significance level")


class YearsConfig(_Model):
    start: int = Field(ge=1984, le=2100, description="first year analysed")
    end: int = Field(ge=1984, le=2100, description="last year analysed (inclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> YearsConfig:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def all(self) -> list[int]:
        return list(range(self.start, self.end + 1))


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
    classify: ClassifyConfig = ClassifyConfig()
    change: ChangeConfig = ChangeConfig()
    boundaries: BoundariesConfig = BoundariesConfig()
    trends: TrendsConfig = TrendsConfig()
    output_dir: Path = Field(Path("runs"), description="outputs go to output_dir/name unless --out")
    cache_dir: Path = Field(Path(".sitewatch-cache"), description="scenario and chip cache")
    workers: int = Field(1, ge=1, le=64, description="parallel processes over (site, year)")
    write_rasters: bool = Field(True, description="write per site-year COGs")
    offline: bool = Field(
        False, description="search and read from the cache only (set by --offline)"
    )

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
        data["sites"] = content_hash(self.sites)
        # Files by content, so a moved catalog gives the same hash and an edited one a new
        # hash (a static catalog's items edited without touching catalog.json are not seen).
        data["source"] = self.source.hash_data()
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


_PATH_FIELDS = ("sites", "output_dir", "cache_dir")
# Fields that change where or how fast a run happens, never its numbers: not in the config hash.
OPERATIONAL_FIELDS = ("output_dir", "cache_dir", "workers", "write_rasters", "offline", "read")


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config; relative paths resolve against its folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(raw).__name__}")
    return config_from_mapping(raw, base_dir=path.parent, origin=str(path))


def config_from_mapping(
    raw: dict[str, Any], base_dir: Path = Path("."), origin: str = "<config>"
) -> RunConfig:
    """Validate a config mapping (as parsed from YAML); ``origin`` names it in errors."""
    data = dict(raw)
    for key in _PATH_FIELDS:
        if isinstance(data.get(key), str):
            data[key] = str(_resolve(base_dir, data[key]))
    source = data.get("source")
    kind = SOURCE_KINDS.get(source.get("kind", "synthetic")) if isinstance(source, dict) else None
    if isinstance(source, dict) and kind is not None:
        resolved = {
            name: str(_resolve(base_dir, source[name]))
            for name in kind.config.path_fields
            if isinstance(source.get(name), str)
        }
        data["source"] = {**source, **resolved}
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(origin, exc)) from None


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def format_validation_error(origin: str, exc: ValidationError) -> str:
    lines = [f"{origin}: {exc.error_count()} problem(s) in the run config:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(err["loc"][:-1])
            lines.append(f"  {key}: unknown key; allowed here: {', '.join(allowed)}")
            continue
        lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
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
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("pathlib.", "").replace("|", "or")
