"""Change between two dates or years: footprint gain/loss and general spectral change (CVA)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from skimage.filters import threshold_otsu

from pipeline.masking import open_mask

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class MaskChange:
    """Pixels that became True (``added``) and stopped being True (``removed``)."""

    added: BoolArray
    removed: BoolArray


def mask_change(
    before: BoolArray,
    after: BoolArray,
    valid: BoolArray | None = None,
    opening_px: int = 1,
) -> MaskChange:
    """Gain and loss of a class mask, only where both dates have data.

    The opening drops slivers a pixel wide along stable edges: a one-pixel shift between years is
    normal for Sentinel-2 geolocation and must not read as expansion (DOMAIN.md).
    """
    if before.shape != after.shape:
        raise ValueError(f"masks differ in shape: {before.shape} vs {after.shape}")
    ok = np.ones(before.shape, bool) if valid is None else valid
    added = open_mask(after & ~before & ok, opening_px)
    removed = open_mask(before & ~after & ok, opening_px)
    return MaskChange(added, removed)


def change_vector_magnitude(before: FloatArray, after: FloatArray) -> FloatArray:
    """Euclidean length of the per-pixel spectral difference (band, y, x) -> (y, x)."""
    if before.shape != after.shape:
        raise ValueError(f"images differ in shape: {before.shape} vs {after.shape}")
    diff = after.astype(np.float64) - before.astype(np.float64)
    out: FloatArray = np.sqrt(np.sum(diff * diff, axis=0)).astype(np.float32)
    return out


@dataclass(frozen=True)
class SpectralChange:
    changed: BoolArray
    magnitude: FloatArray
    threshold: float


def standardised_difference(before: FloatArray, after: FloatArray) -> FloatArray:
    """Per-band difference divided by its robust standard deviation (1.4826 MAD).

    Makes the change magnitude unit-free, so uncalibrated DN and reflectance behave alike; a band
    that does not differ at all contributes zero.
    """
    diff = after.astype(np.float64) - before.astype(np.float64)
    out = np.zeros_like(diff)
    for i, d in enumerate(diff):
        ok = np.isfinite(d)
        if not ok.any():
            out[i] = np.nan
            continue
        centre = float(np.median(d[ok]))
        sigma = 1.4826 * float(np.median(np.abs(d[ok] - centre)))
        out[i] = (d - centre) / sigma if sigma > 0 else np.where(ok, 0.0, np.nan)
    return out.astype(np.float32)


def spectral_change(
    before: FloatArray,
    after: FloatArray,
    *,
    min_magnitude: float = 0.0,
    standardize: bool = False,
    opening_px: int = 0,
) -> SpectralChange:
    """Change vector analysis with an Otsu threshold on the magnitude, floored at
    ``min_magnitude`` (so identical or merely noisy images give no change). With
    ``standardize`` the magnitude is in robust standard deviations of each band's difference."""
    if standardize:
        zero = np.zeros_like(before)
        mag = change_vector_magnitude(zero, standardised_difference(before, after))
    else:
        mag = change_vector_magnitude(before, after)
    valid = np.isfinite(mag)
    values = mag[valid]
    threshold = float(min_magnitude)
    if values.size and float(values.max()) > float(values.min()):
        threshold = max(threshold, float(threshold_otsu(values)))  # type: ignore[no-untyped-call]
    with np.errstate(invalid="ignore"):
        changed = valid & (mag > threshold)
    return SpectralChange(open_mask(np.asarray(changed), opening_px), mag, threshold)
