"""``sitewatch compare``: the classify and change stages applied to two dates of one place."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS

from pipeline import boundaries
from pipeline.change import mask_change, spectral_change
from pipeline.classify import footprint_mask, valid_pixels
from pipeline.errors import InputRasterError, OutputError
from pipeline.export.geojson import write_feature_collection
from pipeline.export.rasters import write_cog
from pipeline.grid import Grid
from pipeline.masking import CLOUD_DILATION_M, SCL_CLOUDS, SCL_NOT_CLEAR, clear_from_scl
from pipeline.sources.local import (
    BandSource,
    band_grids,
    compare_grid,
    footprint,
    input_crs,
    locate_bands,
    locate_scl,
    read_bands,
    read_scl,
    via_grid,
)

logger = logging.getLogger(__name__)

NODATA = 255
# A change must stand out of the no-change noise as a 3-sigma outlier does in one band. The
# magnitude of 6 standardised bands of pure noise is chi-distributed (6 degrees of freedom): its
# 99.73 % quantile is sqrt(chi2.ppf(0.9973, 6)) = 4.48. (A floor of 3 passed 17 % of pure-noise
# pixels; once one date is resampled its noise is spatially coherent, the minimum mapping unit
# no longer removes them, and 2 % of an unchanged reprojected pair read as change.)
MIN_CHANGE_SIGMA = 4.48
# Fewer pixels with data in both dates than this is refused: the robust noise estimate (MAD) and
# the Otsu threshold need a sample; under this fraction of the grid only a warning is given (a
# small AFTER inside a large BEFORE is legitimate).
MIN_VALID_PIXELS = 100
MIN_VALID_FRACTION = 0.01


def check_options(scale: float | None, offset: float, min_mapping_unit_ha: float) -> None:
    """Refuse scale, offset and mapping unit values that can only give meaningless results."""
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise InputRasterError(
            f"--scale {scale!r} not allowed: the DN scale to reflectance must be a finite number "
            "> 0 (e.g. 0.0001 for Sentinel-2 and Landsat L2A DN), or left out for no scaling"
        )
    if not math.isfinite(offset):
        raise InputRasterError(
            f"--offset {offset!r} not allowed: the offset added after scaling must be a finite "
            "number (e.g. -0.1 for Sentinel-2 DN from processing baseline 04.00), default 0"
        )
    if not (math.isfinite(min_mapping_unit_ha) and min_mapping_unit_ha >= 0):
        raise InputRasterError(
            f"min_mapping_unit_ha {min_mapping_unit_ha!r} not allowed: must be a finite number "
            ">= 0 (hectares)"
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
    offset: float = 0.0,
    min_mapping_unit_ha: float = 0.25,
) -> dict[str, Any]:
    """Change between two images of one place; writes change.tif, expansion.tif, change.geojson.

    Both dates are read onto one grid by georeference with the same (bilinear) resampling, so
    extents and CRSs may differ: BEFORE's finest band grid when BEFORE is projected, else the UTM
    zone of BEFORE's centre at its native ground resolution. A band folder holding an ``SCL``
    file has its clouds, cirrus and snow (dilated like a run's) set to no data.

    Raises ``InputRasterError`` for a bad scale or offset, unreadable or ungeoreferenced files,
    inputs that do not overlap or have no data, and fewer than ``MIN_VALID_PIXELS`` pixels valid
    in both; ``LimitError`` for a grid over ``MAX_GRID_PIXELS``. Warns (log and ``warnings`` in
    the summary) when under ``MIN_VALID_FRACTION`` of the grid is valid in both. Returns the
    summary printed by the CLI.
    """
    check_options(scale, offset, min_mapping_unit_ha)
    before, after, out = Path(before), Path(after), Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: is a file, not a folder; give a folder path")
    src_before = locate_bands(before, bands)
    src_after = locate_bands(after, bands)
    scl_paths = [locate_scl(before), locate_scl(after)]
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
    k = 1.0 if scale is None else scale
    images = [
        read_bands(src_before, grid, k, offset, vias["before"]),
        read_bands(src_after, grid, k, offset, vias["after"]),
    ]
    _check_overlap(images, (before, after), (src_before, src_after), grid)
    masked = np.zeros(grid.shape, bool)
    for img, scl_path in zip(images, scl_paths, strict=True):
        if scl_path is not None:  # a Sentinel-2 folder: clouds, cirrus, snow become no data
            scl = read_scl(scl_path, grid)
            clear = clear_from_scl(
                np.nan_to_num(scl, nan=0).astype(np.uint8),
                SCL_NOT_CLEAR,
                SCL_CLOUDS,
                round(CLOUD_DILATION_M / grid.resolution),
            )
            masked |= ~clear & valid_pixels(img)
            img[:, ~clear] = np.nan
    both = valid_pixels(images[0]) & valid_pixels(images[1])
    n_valid, n_grid = int(both.sum()), grid.width * grid.height
    if n_valid < MIN_VALID_PIXELS:
        by_scl = (
            f", {int(masked.sum())} masked by SCL (clouds, cirrus, snow)" if masked.any() else ""
        )
        raise InputRasterError(
            f"BEFORE {before} and AFTER {after}: only {n_valid} pixels have clear data in both"
            f"{by_scl}; compare needs at least {MIN_VALID_PIXELS} to estimate the no-change noise"
        )
    warnings: list[str] = []
    if n_valid < MIN_VALID_FRACTION * n_grid:
        warnings.append(
            f"only {100 * n_valid / n_grid:.2f} % of the grid ({n_valid} of {n_grid} pixels) has "
            "clear data in both dates: the change threshold rests on that part alone; crop "
            "BEFORE to the overlap to check"
        )
    for w in warnings:
        logger.warning("compare: %s", w)
    result = compare_arrays(images[0], images[1], grid, min_mapping_unit_ha=min_mapping_unit_ha)

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"--out {out}: cannot create the folder ({exc.strerror or exc})"
        ) from None
    tags = {"before": str(before), "after": str(after), "method": "standardised CVA + Otsu"}
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
        "reflectance_scaled": scale is not None,
        "valid_pixels": int(result["valid"].sum()),
        "valid_fraction": round(n_valid / n_grid, 4),
        "masked_by_scl_pixels": int(masked.sum()),
        "changed_pixels": int(result["changed"].sum()),
        "expansion_pixels": int(result["expansion"].sum()),
        "changed_ha": round(float(result["changed"].sum()) * px, 4),
        "expansion_ha": round(float(result["expansion"].sum()) * px, 4),
        "change_threshold_sigma": round(result["threshold"], 4),
        "warnings": warnings,
        "outputs": ["change.tif", "expansion.tif", "change.geojson"],
    }


def compare_arrays(
    before: np.ndarray, after: np.ndarray, grid: Grid, *, min_mapping_unit_ha: float = 0.25
) -> dict[str, Any]:
    """Pure core of compare on two (band, y, x) reflectance arrays already on one grid."""
    valid = valid_pixels(before) & valid_pixels(after)
    change = spectral_change(before, after, min_magnitude=MIN_CHANGE_SIGMA, standardize=True)
    changed = change.changed & valid
    fp = mask_change(footprint_mask(before), footprint_mask(after), valid, opening_px=1)
    # Expansion: gained footprint that also changed spectrally (flicker of the rule alone is not).
    expansion = fp.added & changed
    min_px = boundaries.min_pixels_for_area(min_mapping_unit_ha, grid.pixel_area_ha)
    return {
        "valid": valid,
        "changed": boundaries.remove_small_regions(changed, min_px),
        "expansion": boundaries.remove_small_regions(expansion, min_px),
        "threshold": change.threshold,
    }
