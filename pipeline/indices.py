"""Spectral indices over reflectance arrays shaped (band, ...) in ``sensors.BANDS`` order.

Normalised differences return NaN where both terms are zero or either is NaN; float32 out.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.bands import BAND_INDEX

FloatArray = NDArray[np.float32]


def band(reflectance: FloatArray, name: str) -> FloatArray:
    out: FloatArray = reflectance[BAND_INDEX[name]]
    return out


def normalized_difference(a: FloatArray, b: FloatArray) -> FloatArray:
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(total != 0, (a - b) / total, np.nan)
    return out.astype(np.float32)


def ndvi(r: FloatArray) -> FloatArray:
    return normalized_difference(band(r, "nir"), band(r, "red"))


def ndbi(r: FloatArray) -> FloatArray:
    return normalized_difference(band(r, "swir16"), band(r, "nir"))


def mndwi(r: FloatArray) -> FloatArray:
    return normalized_difference(band(r, "green"), band(r, "swir16"))


def bsi(r: FloatArray) -> FloatArray:
    """Bare soil index: ((SWIR1 + R) - (NIR + B)) / ((SWIR1 + R) + (NIR + B))."""
    return normalized_difference(
        band(r, "swir16") + band(r, "red"), band(r, "nir") + band(r, "blue")
    )


def nbr(r: FloatArray) -> FloatArray:
    return normalized_difference(band(r, "nir"), band(r, "swir22"))


def awei_sh(r: FloatArray) -> FloatArray:
    """AWEIsh (Feyisa 2014): B + 2.5 G - 1.5 (NIR + SWIR1) - 0.25 SWIR2."""
    out: FloatArray = (
        band(r, "blue")
        + 2.5 * band(r, "green")
        - 1.5 * (band(r, "nir") + band(r, "swir16"))
        - 0.25 * band(r, "swir22")
    )
    return out.astype(np.float32)
