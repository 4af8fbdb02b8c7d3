"""Rule-based classification: footprint on a composite, coal per clear observation.

Thresholds arrive as plain keyword parameters (``run`` unpacks them from the config), so these
functions can be called from a notebook with nothing but arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pipeline import indices

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


def valid_pixels(reflectance: FloatArray) -> BoolArray:
    """Pixels where every band is finite (has data)."""
    return np.asarray(np.isfinite(reflectance).all(axis=0))


def open_mask(mask: BoolArray, radius_px: int) -> BoolArray:
    """Morphological opening with a square: drops features thinner than ``2 * radius_px + 1``
    pixels and keeps rectangular corners (a disk would nibble them)."""
    if radius_px <= 0:
        return mask
    square = np.ones((2 * radius_px + 1,) * 2, bool)
    return np.asarray(ndimage.binary_opening(mask, structure=square))


def footprint_mask(
    reflectance: FloatArray,
    *,
    ndvi_max: float = 0.30,
    mndwi_max: float = 0.0,
    swir16_min: float = 0.03,
    opening_px: int = 1,
) -> BoolArray:
    """Disturbed or built surface (built, bare soil, spoil, coal, asphalt) on one image.

    Low NDVI excludes vegetation, low MNDWI excludes water, a SWIR1 floor excludes water and
    deep shadow. NaN pixels are never footprint.
    """
    with np.errstate(invalid="ignore"):
        mask = (
            valid_pixels(reflectance)
            & (indices.ndvi(reflectance) < ndvi_max)
            & (indices.mndwi(reflectance) < mndwi_max)
            & (indices.band(reflectance, "swir16") > swir16_min)
        )
    return open_mask(np.asarray(mask), opening_px)


def coal_observation(
    reflectance: FloatArray,
    *,
    reflectance_max: float = 0.10,
    ndvi_max: float = 0.15,
    swir16_min: float = 0.025,
    swir22_min: float = 0.02,
    mndwi_max: float = 0.1,
    swir_minus_blue_min: float = 0.0,
) -> BoolArray:
    """Coal-like pixels in one clear observation: dark and flat across the spectrum.

    The SWIR floors and MNDWI ceiling reject water; SWIR1 >= blue rejects shadows, which fall
    toward SWIR while coal does not (DOMAIN.md, "Confusers").
    """
    blue = indices.band(reflectance, "blue")
    swir16 = indices.band(reflectance, "swir16")
    with np.errstate(invalid="ignore"):
        mask = (
            (
                np.nanmax(np.where(np.isfinite(reflectance), reflectance, np.inf), axis=0)
                < reflectance_max
            )
            & (indices.ndvi(reflectance) < ndvi_max)
            & (swir16 > swir16_min)
            & (indices.band(reflectance, "swir22") > swir22_min)
            & (indices.mndwi(reflectance) < mndwi_max)
            & (swir16 - blue >= swir_minus_blue_min)
        )
    return np.asarray(mask)


@dataclass(frozen=True)
class CoalFrequency:
    """Per pixel: share of clear observations flagged as coal, the flag count and clear count."""

    frequency: FloatArray
    flagged: NDArray[np.int16]
    clear: NDArray[np.int16]

    def mask(self, min_frequency: float = 0.5, min_observations: int = 3) -> BoolArray:
        """DOMAIN.md counting rule: coal for the year if flagged in >= 50% and >= 3 observations."""
        with np.errstate(invalid="ignore"):
            return np.asarray(
                (self.frequency >= min_frequency) & (self.flagged >= min_observations)
            )


def coal_frequency(stack: FloatArray, clear: BoolArray, **rule: float) -> CoalFrequency:
    """Classify each clear observation of ``stack`` (time, band, y, x) and count coal flags."""
    flagged = np.zeros(stack.shape[2:], np.int16)
    count = np.zeros(stack.shape[2:], np.int16)
    for obs, ok in zip(stack, clear, strict=True):
        ok = ok & valid_pixels(obs)
        flagged += (coal_observation(obs, **rule) & ok).astype(np.int16)
        count += ok.astype(np.int16)
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = np.where(count > 0, flagged / np.maximum(count, 1), np.nan).astype(np.float32)
    return CoalFrequency(freq, flagged, count)
