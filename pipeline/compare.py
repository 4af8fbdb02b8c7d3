"""``sitewatch compare``: the classify and change stages applied to two dates of one place.

Each date is converted to reflectance by its own rule, decided from what its files say
(``sources.local.locate_input``) and checked from its pixels (``radiometry.verify_boa_offset``
and a two-date offset check), and the summary says per date which product, baseline, scale
and offset, and why.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from rasterio.crs import CRS

from pipeline import boundaries
from pipeline.bands import BAND_INDEX, BANDS
from pipeline.classify import valid_pixels
from pipeline.errors import InputRasterError, OutputError
from pipeline.export.geojson import write_feature_collection
from pipeline.export.rasters import write_cog
from pipeline.grid import Grid
from pipeline.masking import CLOUD_DILATION_M, SCL_CLOUDS, SCL_NOT_CLEAR, clear_from_scl
from pipeline.pairwise import ALPHA, detect
from pipeline.radiometry import S2_BOA_OFFSET_DN, Radiometry, verify_boa_offset
from pipeline.recipe import classify_single_image
from pipeline.sources.folder import BASELINE_PATTERN
from pipeline.sources.local import (
    BandSource,
    InputProduct,
    LocalInput,
    band_grids,
    compare_grid,
    footprint,
    input_crs,
    locate_input,
    read_bands,
    read_scl,
    via_grid,
)
from pipeline.sources.sensors import LANDSAT_OFFSET, LANDSAT_SCALE, s2_radiometry
from pipeline.water import pair_without_beds

if TYPE_CHECKING:  # scikit-learn is imported only when training polygons are given
    from pipeline.supervised import TrainedModel, TrainingPolygons

logger = logging.getLogger(__name__)

NODATA = 255
# The change test (IR-MAD and CVA chi-square tests at a false-alarm rate alpha, registration
# tolerance, noise floor) and its defaults live in ``pipeline.pairwise``, with their reasons.
# Fewer pixels with data in both dates than this is refused: the IR-MAD canonical correlations
# and the robust noise estimate (MAD) need a sample; under this fraction of the grid only a
# warning is given (a small AFTER inside a large BEFORE is legitimate).
MIN_VALID_PIXELS = 100
MIN_VALID_FRACTION = 0.01


# A BOA/RADIO offset mismatch between the dates shifts every band by the same 0.1 reflectance
# (1000 DN x 0.0001); the two-date check looks for it within this tolerance.
OFFSET_SHIFT = 0.1
OFFSET_TOLERANCE = 0.03
S2_QUANTIFICATION = 10_000.0

DecidedBy = Literal[
    "--scale/--offset", "--baseline", "metadata", "rule", "pixels", "assumed", "as-given"
]


def parse_baseline_option(
    value: str | Sequence[str | None] | None,
) -> tuple[str | None, str | None]:
    """``--baseline`` as (BEFORE, AFTER): one value for both dates, or ``BEFORE,AFTER`` where an
    empty side means "from the metadata" (``,04.00``). Refuses anything but ``NN.NN``."""
    if value is None:
        return None, None
    parts: list[str | None] = [*value.split(",")] if isinstance(value, str) else [*value]
    if isinstance(value, str) and len(parts) == 1:
        parts = [parts[0], parts[0]]
    if len(parts) != 2:
        raise InputRasterError(
            f"--baseline {value!r} not allowed: give one processing baseline for both dates or "
            f"BEFORE,AFTER (e.g. 02.09,04.00), not {len(parts)} values"
        )
    out: list[str | None] = []
    for label, part in zip(("BEFORE", "AFTER"), parts, strict=True):
        text = (part or "").strip()
        if not text:
            out.append(None)
        elif re.match(BASELINE_PATTERN, text):
            out.append(text)
        else:
            raise InputRasterError(
                f"--baseline {value!r} not allowed: {label}'s {text!r} is not a processing "
                "baseline; allowed: NN.NN such as 02.09 or 04.00, one value for both dates or "
                "BEFORE,AFTER (leave one side empty to take it from the metadata: ,04.00)"
            )
    return out[0], out[1]


@dataclass(frozen=True)
class DateRadiometry:
    """How one date's DN become reflectance (``radiometry``), what decided it and why.

    ``s2_rule``: the Sentinel-2 rule applied (scale and baseline offset), so the pixel checks
    apply; ``decided_by`` ``assumed`` means nothing said which baseline (no offset assumed)."""

    label: str
    path: Path
    product: InputProduct
    baseline: str | None
    baseline_from: str
    radiometry: Radiometry
    decided_by: DecidedBy
    s2_rule: bool = False

    @property
    def offset(self) -> float:
        """The reflectance added after scaling (``DN * scale + offset``)."""
        return self.radiometry.offset_dn * self.radiometry.scale

    def redecided(
        self, offset_dn: float, why: str, by: DecidedBy, check: str = ""
    ) -> DateRadiometry:
        r = self.radiometry
        new = Radiometry(r.scale, offset_dn, f"{r.reason}; {why}", check or r.check)
        return replace(self, radiometry=new, decided_by=by)

    def summary(self) -> dict[str, Any]:
        r, p = self.radiometry, self.product
        return {
            "product": p.product,
            "product_from": p.product_from,
            "sensor": p.sensor,
            "platform": p.platform,
            "baseline": self.baseline,
            "baseline_from": self.baseline_from,
            "scale": r.scale,
            "offset": round(self.offset, 10) + 0.0,
            "decided_by": self.decided_by,
            "why": r.reason,
            "pixel_check": r.check or None,
            "metadata": list(p.metadata),
        }


def decide_radiometry(
    label: str,
    located: LocalInput,
    option_baseline: str | None,
    scale: float | None,
    offset: float | None,
) -> tuple[DateRadiometry, list[str]]:
    """One date's DN -> reflectance rule from what its files say (pure: no pixel is read).

    Explicit ``scale``/``offset`` win (the same for both dates); else Landsat C2 L2 gets
    2.75e-05/-0.2, Sentinel-2 DN 1/QUANTIFICATION_VALUE with the offset of its MTD file, else of
    its baseline (``option_baseline`` first, then STAC item, MTD file, product name; an Earth
    Search ``boa_offset_applied: true`` means no offset left); a product nothing tells is read as
    given. Returns the decision and the warnings (contradicting sources)."""
    product = located.product
    warnings: list[str] = []
    first = product.baselines[0] if product.baselines else None
    for other in product.baselines[1:]:
        if first is not None and other.value != first.value:
            warnings.append(
                f"{label}: {other.source} gives processing baseline {other.value} but "
                f"{first.source} gives {first.value}; {first.value} is used (order: STAC item, "
                "MTD file, product name)"
            )
    if option_baseline is not None:
        baseline, baseline_from = option_baseline, "--baseline"
        if first is not None and first.value != option_baseline:
            warnings.append(
                f"{label}: --baseline {option_baseline} contradicts {first.source} "
                f"({first.value}); the explicit option wins"
            )
    elif first is not None:
        baseline, baseline_from = first.value, first.source
    else:
        baseline, baseline_from = None, "none"

    def date(r: Radiometry, by: DecidedBy, s2_rule: bool = False) -> DateRadiometry:
        return DateRadiometry(label, located.path, product, baseline, baseline_from, r, by, s2_rule)

    if scale is not None or offset is not None:
        k = 1.0 if scale is None else scale
        r = Radiometry(
            k,
            (0.0 if offset is None else offset) / k,
            "--scale/--offset given: applied to both dates as given; they win over the "
            "product's rule, its metadata and --baseline",
        )
        if option_baseline is not None:
            warnings.append(
                f"{label}: --baseline {option_baseline} not used: --scale/--offset win and apply "
                "to both dates alike"
            )
        return date(r, "--scale/--offset"), warnings
    if product.sensor == "landsat":
        if not product.integer_dn:
            return date(
                _as_given(f"{product.product_from}, but floating-point pixels"), "as-given"
            ), warnings
        r = Radiometry(
            LANDSAT_SCALE,
            LANDSAT_OFFSET / LANDSAT_SCALE,
            f"the Landsat Collection 2 Level-2 surface reflectance rule: reflectance = DN * "
            f"{LANDSAT_SCALE:g} - {-LANDSAT_OFFSET:g}",
        )
        return date(r, "rule"), warnings
    if product.sensor != "sentinel-2" and option_baseline is None:
        return date(_as_given(f"product unknown: {product.product_from}"), "as-given"), warnings
    if not product.integer_dn and option_baseline is None:
        why = f"Sentinel-2 ({product.product_from}) with floating-point pixels, not DN"
        return date(_as_given(why), "as-given"), warnings
    q = product.quantification or S2_QUANTIFICATION
    k = 1.0 / q
    q_from = f" (QUANTIFICATION_VALUE in {product.mtd})" if product.quantification else ""
    tag = "RADIO_ADD_OFFSET" if product.product == "L1C" else "BOA_ADD_OFFSET"
    if option_baseline is None and product.add_offsets:
        values = sorted(set(product.add_offsets))
        if len(values) == 1:
            r = Radiometry(
                k,
                values[0],
                f"{tag} {values[0]:+g} in {product.mtd}: reflectance = (DN {values[0]:+g}) / "
                f"{q:g}{q_from}",
            )
            return date(r, "metadata", s2_rule=True), warnings
        warnings.append(
            f"{label}: {product.mtd} lists several {tag} values {values}; the baseline rule "
            "applies instead"
        )
    if baseline is not None:
        props: dict[str, Any] = {"s2:processing_baseline": baseline}
        flag = ""
        if product.offset_applied is not None and product.product != "L1C":
            props["earthsearch:boa_offset_applied"] = product.offset_applied
            flag = f", earthsearch:boa_offset_applied {str(product.offset_applied).lower()}"
            if not baseline_from.startswith(product.offset_applied_from):
                flag += f" in {product.offset_applied_from}"
        rule = s2_radiometry(props, honour_flag=True)
        reason = rule.reason
        if product.product == "L1C":  # the same rule, named RADIO_ADD_OFFSET in Level-1C
            reason = reason.replace("BOA offset", "radiometric offset (RADIO_ADD_OFFSET)")
        r = Radiometry(
            k,
            rule.offset_dn,
            f"{reason}; scale 1/{q:g}{q_from}; baseline from {baseline_from}{flag}",
        )
        by: DecidedBy = "--baseline" if option_baseline else "metadata"
        return date(r, by, s2_rule=True), warnings
    r = Radiometry(
        k,
        0.0,
        f"Sentinel-2 DN / {q:g}{q_from}; no processing baseline (no STAC item, MTD file, "
        "product name or --baseline): no offset assumed, as before baseline 04.00",
    )
    return date(r, "assumed", s2_rule=True), warnings


def _as_given(what: str) -> Radiometry:
    return Radiometry(
        1.0,
        0.0,
        f"{what}: pixels read as given (scale 1, offset 0), as compare always did; give "
        "--scale/--offset to convert them (or --baseline for Sentinel-2 DN)",
    )


def check_date_offset(
    date: DateRadiometry, image: np.ndarray, scl: np.ndarray | None
) -> tuple[DateRadiometry, list[str]]:
    """The per-date pixel check of a Sentinel-2 date (``radiometry.verify_boa_offset`` on its
    clear SWIR2 DN): settles an assumed offset when the pixels can tell, overrides a metadata
    decision they contradict (as a run does) and only warns against ``--baseline``."""
    r = date.radiometry
    swir_dn = image[BAND_INDEX["swir22"]].astype(np.float64) / r.scale - r.offset_dn
    classes = np.zeros(swir_dn.shape, np.uint8) if scl is None else scl
    checked = verify_boa_offset(swir_dn, classes, r)
    check = checked.check
    if not check.startswith("contradicted"):
        if date.decided_by == "assumed" and check.startswith("confirmed"):
            return date.redecided(r.offset_dn, "the pixels confirm no offset", "pixels", check), []
        return replace(date, radiometry=replace(r, check=check)), []
    if date.decided_by == "assumed":
        why = f"the pixels show the offset in the data: DN {checked.offset_dn:+.0f}"
        return date.redecided(checked.offset_dn, why, "pixels", check), []
    if date.decided_by == "--baseline":
        warning = (
            f"{date.label}: the pixels contradict --baseline {date.baseline} ({check}); the "
            "explicit option is kept"
        )
        return replace(date, radiometry=replace(r, check=check)), [warning]
    warning = (
        f"{date.label}: the pixels contradict {date.baseline_from} ({check}); the pixels win, as "
        "in a run"
    )
    return replace(date, radiometry=checked, decided_by="pixels"), [warning]


def relative_offset(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray
) -> tuple[float | None, str]:
    """The uniform reflectance shift of AFTER over BEFORE: +-``OFFSET_SHIFT`` when every band's
    median difference lies within ``OFFSET_TOLERANCE`` of it (an offset shifts all bands alike;
    haze, seasons and real change do not), 0.0 when every band's lies that close to 0, None
    when neither (or too few pixels)."""
    n = int(valid.sum())
    if n < MIN_VALID_PIXELS:
        return None, f"inconclusive: {n} pixels valid in both"
    medians = [float(np.median(after[i][valid] - before[i][valid])) for i in range(len(BANDS))]
    text = ", ".join(f"{b} {m:+.3f}" for b, m in zip(BANDS, medians, strict=True))
    evidence = f"median AFTER - BEFORE {text} over {n} px"
    for shift in (OFFSET_SHIFT, -OFFSET_SHIFT, 0.0):
        if all(abs(m - shift) <= OFFSET_TOLERANCE for m in medians):
            return shift, evidence
    return None, f"inconclusive: {evidence}"


def reconcile_dates(
    dates: list[DateRadiometry], images: list[np.ndarray], valid: np.ndarray
) -> tuple[str | None, list[str]]:
    """The two-date offset check of a Sentinel-2 pair: an assumed date that reads a uniform 0.1
    above the other carries the offset (DN offsets only ever add) and gets it removed; one that
    matches the other is settled; otherwise a loud warning. Adjusts ``dates`` and ``images`` in
    place; returns the check's evidence and the warnings."""
    shift, evidence = relative_offset(images[0], images[1], valid)
    warnings: list[str] = []
    if shift is None:
        return evidence, warnings
    if shift == 0.0:
        for i, d in enumerate(dates):
            other = dates[1 - i]
            if d.decided_by == "assumed" and other.decided_by != "assumed":
                why = f"it matches {other.label} (two-date check: {evidence})"
                dates[i] = d.redecided(d.radiometry.offset_dn, why, "pixels")
        return evidence, warnings
    i = 1 if shift > 0 else 0
    bright, other = dates[i], dates[1 - i]
    if bright.decided_by == "assumed" and bright.s2_rule:
        dn = S2_BOA_OFFSET_DN
        why = (
            f"it reads a uniform {OFFSET_SHIFT:+.2f} above {other.label} in every band "
            f"(two-date check: {evidence}): the offset is in its data: DN {dn:+.0f}"
        )
        dates[i] = bright.redecided(bright.radiometry.offset_dn + dn, why, "pixels")
        images[i] += np.float32(dn * bright.radiometry.scale)
        return evidence, warnings
    remedy = (
        "--scale/--offset apply to both dates alike: give --baseline instead"
        if bright.decided_by == "--scale/--offset"
        else "check its metadata, or give --baseline"
    )
    warnings.append(
        f"{bright.label} reads a uniform {OFFSET_SHIFT:+.2f} reflectance above {other.label} in "
        f"every band ({evidence}) although its offset was decided by {bright.decided_by} "
        f"({bright.radiometry.reason}): an offset is likely mis-declared and absolute thresholds "
        f"will misread it; {remedy}"
    )
    return evidence, warnings


def check_options(
    scale: float | None, offset: float | None, min_mapping_unit_ha: float, alpha: float = ALPHA
) -> None:
    """Refuse scale, offset, mapping unit and alpha values that can only give meaningless
    results."""
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise InputRasterError(
            f"--scale {scale!r} not allowed: the DN scale to reflectance must be a finite number "
            "> 0 (e.g. 0.0001 for Sentinel-2 and Landsat L2A DN), or left out for no scaling"
        )
    if offset is not None and not math.isfinite(offset):
        raise InputRasterError(
            f"--offset {offset!r} not allowed: the offset added after scaling must be a finite "
            "number (e.g. -0.1 for Sentinel-2 DN from processing baseline 04.00), default 0"
        )
    if not (math.isfinite(min_mapping_unit_ha) and min_mapping_unit_ha >= 0):
        raise InputRasterError(
            f"min_mapping_unit_ha {min_mapping_unit_ha!r} not allowed: must be a finite number "
            ">= 0 (hectares)"
        )
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise InputRasterError(
            f"--alpha {alpha!r} not allowed: the false-alarm rate of each change test must be a "
            f"probability strictly between 0 and 1 (default {ALPHA:g}; e.g. 1e-6 finds only "
            "stronger change)"
        )


def _fmt_bounds(b: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in b) + ")"


def _data_bounds(valid: np.ndarray, grid: Grid) -> tuple[float, float, float, float]:
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    t = grid.transform
    return (
        t.c + t.a * cols[0],
        t.f + t.e * (rows[-1] + 1),
        t.c + t.a * (cols[-1] + 1),
        t.f + t.e * rows[0],
    )


def _check_overlap(
    images: Sequence[np.ndarray],
    paths: Sequence[Path],
    sources: Sequence[Mapping[str, BandSource]],
    grid: Grid,
) -> None:
    """Refuse inputs that leave no pixel with data in both: all no data, or no overlap."""
    valid = [valid_pixels(img) for img in images]
    if not valid[0].any():
        raise InputRasterError(
            f"BEFORE {paths[0]}: no valid pixel: every pixel is at the nodata value (or not "
            "finite after --scale/--offset); nothing to compare"
        )
    fps = [footprint(src, grid.crs) for src in sources]
    meet = fps[0][0] < fps[1][2] and fps[1][0] < fps[0][2] and fps[0][1] < fps[1][3]
    meet = meet and fps[1][1] < fps[0][3]
    if (valid[0] & valid[1]).any():
        return
    if not meet:
        detail = ""
    elif not valid[1].any():
        detail = (
            "; every AFTER pixel over BEFORE's extent is at the nodata value (or not finite "
            "after --scale/--offset)"
        )
    else:
        detail = (
            f"; their extents meet but their data do not: BEFORE's data span "
            f"{_fmt_bounds(_data_bounds(valid[0], grid))}, AFTER's "
            f"{_fmt_bounds(_data_bounds(valid[1], grid))}"
        )
    raise InputRasterError(
        f"BEFORE {paths[0]} and AFTER {paths[1]} do not overlap: no pixel has data in both. "
        f"BEFORE covers {_fmt_bounds(fps[0])} and AFTER covers {_fmt_bounds(fps[1])} in "
        f"{grid.crs}{detail}; give two images of the same place"
    )


def compare(
    before: str | Path,
    after: str | Path,
    out: str | Path,
    *,
    bands: Sequence[str] | None = None,
    scale: float | None = None,
    offset: float | None = None,
    baseline: str | Sequence[str | None] | None = None,
    min_mapping_unit_ha: float = 0.25,
    alpha: float = ALPHA,
    training: str | Path | None = None,
    training_layer: str | None = None,
) -> dict[str, Any]:
    """Change between two images of one place; writes change.tif, expansion.tif, change.geojson.

    Each date is converted to reflectance by its own rule (``decide_radiometry``): Sentinel-2
    L1C/L2A DN by their quantification and the offset of their processing baseline (from
    ``baseline``, i.e. ``--baseline``, else a STAC item, the MTD file or the product name),
    Landsat C2 L2 DN * 2.75e-05 - 0.2; an explicit ``scale``/``offset`` wins and applies to both
    dates. A Sentinel-2 date whose baseline nothing gives is checked from its pixels and against
    the other date; when nothing can tell, no offset is applied and the summary warns.

    Both dates are read onto one grid by georeference with the same (bilinear) resampling, so
    extents and CRSs may differ: BEFORE's finest band grid when BEFORE is projected, else the UTM
    zone of BEFORE's centre at its native ground resolution. A band folder holding an ``SCL``
    file has its clouds, cirrus and snow (dilated like a run's) set to no data.

    Raises ``InputRasterError`` for a bad scale, offset or baseline, unreadable or
    ungeoreferenced files, a folder mixing products (L1C and L2A, Sentinel-2 and Landsat),
    metadata contradicting the files, inputs that do not overlap or have no data, and fewer than
    ``MIN_VALID_PIXELS`` pixels valid in both; ``LimitError`` for a grid over
    ``MAX_GRID_PIXELS``. Warns (log and ``warnings`` in the summary) when under
    ``MIN_VALID_FRACTION`` of the grid is valid in both and about radiometry: contradicting
    sources, an offset nothing can tell, mixed products. Returns the summary printed by the CLI.

    ``alpha``: the false-alarm rate per pixel of each of the two change tests
    (``pairwise.detect``); smaller finds only stronger change. The default serves every real
    pair scored (docs/design.md, compare: what a smaller alpha trades).

    ``training``: a GeoPackage or GeoJSON of polygons labelled on BEFORE (``class`` as in
    ``pipeline.supervised``; ``year`` ignored; ``training_layer`` picks the layer): both dates
    are then classified by a model trained on BEFORE's labelled pixels instead of the rules,
    and expansion is that model's footprint gain. ``TrainingDataError`` for a bad file or
    polygon (one covering no pixel of BEFORE's grid included).
    """
    check_options(scale, offset, min_mapping_unit_ha, alpha)
    drawn: TrainingPolygons | None = None
    if training is not None:
        from pipeline.supervised import read_training_polygons

        drawn = read_training_polygons(training, layer=training_layer, year_required=False)
    option_baselines = parse_baseline_option(baseline)
    before, after, out = Path(before), Path(after), Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: is a file, not a folder; give a folder path")
    inputs = [locate_input(before, bands), locate_input(after, bands)]
    src_before, src_after = inputs[0].bands, inputs[1].bands
    warnings: list[str] = []
    dates: list[DateRadiometry] = []
    for label, located, option in zip(("BEFORE", "AFTER"), inputs, option_baselines, strict=True):
        if option is not None and located.product.sensor == "landsat":
            raise InputRasterError(
                f"--baseline {option} for {label} {located.path}: it is Landsat "
                f"({located.product.product_from}); a processing baseline applies to "
                f"Sentinel-2 only: leave {label}'s side empty (e.g. "
                f"{'--baseline ,04.00' if label == 'BEFORE' else '--baseline 04.00,'})"
            )
        decided, notes = decide_radiometry(label, located, option, scale, offset)
        dates.append(decided)
        warnings += notes
    warnings += _pair_warnings(dates)
    choice = compare_grid(src_before, src_after)
    grid = choice.grid
    crs_in = {"before": input_crs(src_before), "after": input_crs(src_after)}
    target = CRS.from_user_input(grid.crs)
    reprojected = {
        k: any(CRS.from_user_input(c) != target for c in v.split("+")) for k, v in crs_in.items()
    }
    # Treat both dates alike: when one is reprojected onto the grid and the other is not, the
    # other takes a detour through the reprojected one's pixel lattice, so that both are
    # resampled (smoothed) alike and identical ground reads as no change.
    natives = {"before": band_grids(src_before), "after": band_grids(src_after)}
    vias: dict[str, dict[str, Grid | None]] = {"before": {}, "after": {}}
    alignment: dict[str, str] = {}
    for key, other in (("before", "after"), ("after", "before")):
        if reprojected[other] and not reprojected[key]:
            vias[key] = {b: via_grid(g, grid) for b, g in natives[other].items()}
        if reprojected[key]:
            alignment[key] = f"reprojected from {crs_in[key]} (bilinear)"
        elif any(v is not None for v in vias[key].values()):
            alignment[key] = (
                f"resampled through {other.upper()}'s {crs_in[other]} pixel lattice of each "
                f"band (bilinear), as {other.upper()} is reprojected"
            )
        else:
            alignment[key] = "read onto the grid by georeference (bilinear)"
    images = [
        read_bands(
            loc.bands, grid, d.radiometry.scale, d.offset, vias[key],
            zero_is_nodata=d.decided_by in ("rule", "metadata", "--baseline", "assumed"),
        )
        for key, loc, d in zip(("before", "after"), inputs, dates, strict=True)
    ]  # fmt: skip
    _check_overlap(images, (before, after), (src_before, src_after), grid)
    masked = np.zeros(grid.shape, bool)
    scls: list[np.ndarray | None] = []
    for img, located in zip(images, inputs, strict=True):
        if located.scl is None:
            scls.append(None)
            continue
        # a Sentinel-2 folder: clouds, cirrus, snow become no data
        scl = np.nan_to_num(read_scl(located.scl, grid), nan=0).astype(np.uint8)
        clear = clear_from_scl(
            scl, SCL_NOT_CLEAR, SCL_CLOUDS, round(CLOUD_DILATION_M / grid.resolution)
        )
        masked |= ~clear & valid_pixels(img)
        img[:, ~clear] = np.nan
        scls.append(scl)
    for i, d in enumerate(dates):
        if d.s2_rule:
            dates[i], notes = check_date_offset(d, images[i], scls[i])
            warnings += notes
            shift_dn = dates[i].radiometry.offset_dn - d.radiometry.offset_dn
            if shift_dn:
                images[i] += np.float32(shift_dn * d.radiometry.scale)
    both = valid_pixels(images[0]) & valid_pixels(images[1])
    relative: str | None = None
    if all(d.s2_rule for d in dates) or (
        scale is not None and all(d.product.sensor == "sentinel-2" for d in dates)
    ):
        relative, notes = reconcile_dates(dates, images, both)
        warnings += notes
    for d in dates:
        if d.decided_by == "assumed":
            warnings.append(
                f"{d.label} {d.path}: Sentinel-2 with no processing baseline (no STAC item, "
                "MTD_MSIL2A.xml/MTD_MSIL1C.xml, product name or --baseline) and the pixels "
                f"cannot tell ({d.radiometry.check or 'not checked'}; two-date check: "
                f"{relative or 'not run'}): read with NO offset, as before baseline 04.00. If "
                "it was processed with baseline 04.00 or later (every product since 25 Jan "
                "2022, and Collection-1 reprocessing) it reads 0.1 too bright and dark ground "
                "(coal, water) is misread: give --baseline"
            )
    n_valid, n_grid = int(both.sum()), grid.width * grid.height
    if n_valid < MIN_VALID_PIXELS:
        by_scl = (
            f", {int(masked.sum())} masked by SCL (clouds, cirrus, snow)" if masked.any() else ""
        )
        raise InputRasterError(
            f"BEFORE {before} and AFTER {after}: only {n_valid} pixels have clear data in both"
            f"{by_scl}; compare needs at least {MIN_VALID_PIXELS} to estimate the no-change noise"
        )
    if n_valid < MIN_VALID_FRACTION * n_grid:
        warnings.append(
            f"only {100 * n_valid / n_grid:.2f} % of the grid ({n_valid} of {n_grid} pixels) has "
            "clear data in both dates: the change threshold rests on that part alone; crop "
            "BEFORE to the overlap to check"
        )
    for w in warnings:
        logger.warning("compare: %s", w)
    model = None
    if drawn is not None:
        from pipeline.supervised import train_on_image

        model = train_on_image(images[0], grid, drawn, valid=valid_pixels(images[0]))
    result = compare_arrays(
        images[0], images[1], grid, min_mapping_unit_ha=min_mapping_unit_ha, alpha=alpha,
        model=model,
    )  # fmt: skip

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"--out {out}: cannot create the folder ({exc.strerror or exc})"
        ) from None
    tags = {
        "before": str(before), "after": str(after), "method": result["method"],
        "alpha": f"{alpha:g}",
    }  # fmt: skip
    if model is not None:
        p = model.provenance
        tags["classification"] = (
            f"supervised: trained on {p['training_file']} (sha256 {p['training_sha256']})"
        )
    for d in dates:
        tags[f"{d.label.lower()}_radiometry"] = (
            f"DN * {d.radiometry.scale:g} {d.offset:+g}: {d.radiometry.reason}"
        )
    for name, mask in (("change", result["changed"]), ("expansion", result["expansion"])):
        data = np.where(result["valid"], mask.astype(np.uint8), NODATA).astype(np.uint8)
        write_cog(out / f"{name}.tif", data, grid, nodata=NODATA, band_names=[name], tags=tags)
    min_px = boundaries.min_pixels_for_area(min_mapping_unit_ha, grid.pixel_area_ha)
    feats: list[tuple[Any, dict[str, Any]]] = []
    for kind in ("change", "expansion"):
        mask = result["changed"] if kind == "change" else result["expansion"]
        for poly in boundaries.vectorize(mask, grid.transform, min_px):
            feats.append((poly, {"kind": kind, "area_ha": round(poly.area / 10_000.0, 4)}))
    write_feature_collection(out / "change.geojson", feats, grid.crs, name="change")
    px = grid.pixel_area_ha
    return {
        "before": str(before),
        "after": str(after),
        "grid": {
            "crs": grid.crs,
            "resolution_m": grid.resolution,
            "width": grid.width,
            "height": grid.height,
            "chosen": choice.chosen,
        },
        "input_crs": crs_in,
        "reprojected": reprojected,
        "alignment": alignment,
        "reflectance_scaled": (
            scale is not None
            if scale is not None or offset is not None
            else all(d.decided_by != "as-given" for d in dates)
        ),
        "radiometry": {
            "before": dates[0].summary(),
            "after": dates[1].summary(),
            "two_date_check": relative,
        },
        "valid_pixels": int(result["valid"].sum()),
        "valid_fraction": round(n_valid / n_grid, 4),
        "masked_by_scl_pixels": int(masked.sum()),
        "changed_pixels": int(result["changed"].sum()),
        "expansion_pixels": int(result["expansion"].sum()),
        "changed_ha": round(float(result["changed"].sum()) * px, 4),
        "expansion_ha": round(float(result["expansion"].sum()) * px, 4),
        # Footprint on the other date's water, wet: a reservoir drawn down, not expansion.
        "exposed_bed_ha": {
            k: round(float(bed.sum()) * px, 4)
            for k, bed in zip(("before", "after"), result["exposed_bed"], strict=True)
        },
        "change_threshold_sigma": round(result["threshold"], 4),
        "method": result["method"],
        "rule": result["rule"],
        "alpha": result["alpha"],
        "normalisation": result["normalisation"],
        "classification": ({"mode": "rules"} if model is None else dict(model.provenance)),
        "warnings": warnings,
        "outputs": ["change.tif", "expansion.tif", "change.geojson"],
    }


def _pair_warnings(dates: Sequence[DateRadiometry]) -> list[str]:
    """Pairs whose difference is not only the ground: TOA against BOA, one sensor against
    another."""
    a, b = (d.product for d in dates)
    if {a.product, b.product} == {"L1C", "L2A"}:
        return [
            f"BEFORE is {a.product} and AFTER {b.product}: top-of-atmosphere against surface "
            "reflectance, so the atmosphere reads as change; compare like with like"
        ]
    if {a.sensor, b.sensor} == {"sentinel-2", "landsat"}:
        return [
            f"BEFORE is {a.sensor} and AFTER {b.sensor}: their bands differ in pass and "
            "resolution and no cross-sensor adjustment is applied; part of the change is the "
            "sensor"
        ]
    return []


def compare_arrays(
    before: np.ndarray,
    after: np.ndarray,
    grid: Grid,
    *,
    min_mapping_unit_ha: float = 0.25,
    alpha: float = ALPHA,
    model: TrainedModel | None = None,
) -> dict[str, Any]:
    """Pure core of compare on two (band, y, x) reflectance arrays already on one grid.

    ``pipeline.pairwise.detect`` with its defaults but ``alpha``, the footprint recipe of
    ``run`` on each date (``recipe.classify_single_image``; with ``model``,
    ``supervised.predict`` and the same clean-up), less the exposed bed of water the other
    date shows (``water.pair_without_beds``, the run's rule for a series of two), and the
    minimum mapping unit in pixels of ``grid``. Keys: ``valid``, ``changed``, ``expansion``
    (masks), ``exposed_bed`` (the ground each date's footprint lost to that rule),
    ``threshold`` (the IR-MAD threshold as a standardised length, in sigma; CVA's when IR-MAD
    has no canonical pair, as for constant images), ``p_nochange`` and ``chi2`` (maps), and
    the provenance of
    ``PairwiseChange.provenance`` (``method``, ``rule``, ``alpha``, ``normalisation``,
    ``irmad``, ``cva``...).
    """
    min_px = boundaries.min_pixels_for_area(min_mapping_unit_ha, grid.pixel_area_ha)

    def classified(reflectance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The run's recipe (rim unmixing, coal, minimum mapping unit) on one date's image.
        valid = np.isfinite(reflectance).all(axis=0)
        if model is not None:
            from pipeline.supervised import predict

            out = predict(model, reflectance, valid, pixel_area_ha=grid.pixel_area_ha)
            return out.footprint, out.coal_mask
        return classify_single_image(reflectance, valid, grid.pixel_area_ha)

    (fp_before, coal_before), (fp_after, coal_after) = classified(before), classified(after)
    footprints, beds = pair_without_beds(
        (before, after), (fp_before, fp_after), (coal_before, coal_after), min_px
    )
    result = detect(before, after, alpha=alpha, min_mapping_unit_px=min_px, footprints=footprints)
    return {
        **result.provenance(),
        "exposed_bed": beds,
        "valid": result.valid,
        "changed": result.changed,
        "expansion": result.expansion,
        "threshold": (
            result.threshold.sigma
            if math.isfinite(result.threshold.sigma)
            else result.cva_threshold.sigma
        ),
        "p_nochange": result.p_nochange,
        "chi2": result.chi2,
    }
