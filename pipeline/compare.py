"""``sitewatch compare``: the classify and change stages applied to two dates of one place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.enums import Resampling

from pipeline import boundaries
from pipeline.change import mask_change, spectral_change
from pipeline.classify import footprint_mask, valid_pixels
from pipeline.export.geojson import write_feature_collection
from pipeline.export.rasters import write_cog
from pipeline.grid import Grid
from pipeline.masking import CLOUD_DILATION_M, SCL_CLOUDS, SCL_NOT_CLEAR, clear_from_scl
from pipeline.sources.local import finest_grid, locate_bands, locate_scl, read_bands
from pipeline.sources.read import read_asset

NODATA = 255
# A change must stand this many robust standard deviations out of the no-change noise.
MIN_CHANGE_SIGMA = 3.0


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

    AFTER is resampled onto BEFORE's finest grid by georeference, so extents may differ. A band
    folder holding an ``SCL`` file has its clouds, cirrus and snow (dilated like a run's) set to
    no data. Returns the summary printed by the CLI.
    """
    before, after, out = Path(before), Path(after), Path(out)
    src_before = locate_bands(before, bands)
    src_after = locate_bands(after, bands)
    grid = finest_grid(src_before)
    k = 1.0 if scale is None else scale
    images = []
    masked = np.zeros(grid.shape, bool)
    for path, src in ((before, src_before), (after, src_after)):
        img = read_bands(src, grid, k, offset)
        scl_path = locate_scl(path)
        if scl_path is not None:  # a Sentinel-2 folder: clouds, cirrus, snow become no data
            scl = read_asset(scl_path, grid, Resampling.nearest)
            clear = clear_from_scl(
                np.nan_to_num(scl, nan=0).astype(np.uint8),
                SCL_NOT_CLEAR,
                SCL_CLOUDS,
                round(CLOUD_DILATION_M / grid.resolution),
            )
            masked |= ~clear & valid_pixels(img)
            img[:, ~clear] = np.nan
        images.append(img)
    result = compare_arrays(images[0], images[1], grid, min_mapping_unit_ha=min_mapping_unit_ha)

    out.mkdir(parents=True, exist_ok=True)
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
        },
        "reflectance_scaled": scale is not None,
        "valid_pixels": int(result["valid"].sum()),
        "masked_by_scl_pixels": int(masked.sum()),
        "changed_pixels": int(result["changed"].sum()),
        "expansion_pixels": int(result["expansion"].sum()),
        "changed_ha": round(float(result["changed"].sum()) * px, 4),
        "expansion_ha": round(float(result["expansion"].sum()) * px, 4),
        "change_threshold_sigma": round(result["threshold"], 4),
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
