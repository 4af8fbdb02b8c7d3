"""Cross-sensor harmonisation onto Landsat 8/9 OLI (DOMAIN.md "Radiometry").

Sentinel-2 MSI -> OLI: HLS v1.4 (Claverie et al. 2018) per-band ``OLI = a * MSI + b`` (S2A
coefficients, B8A for NIR); Landsat 4/5 TM and 7 ETM+ -> OLI: Roy et al. 2016 (RSE 185:57),
reduced-major-axis ``OLI = a * ETM + b``. Applied per observation by platform, before compositing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from pipeline.bands import BANDS, by_platform

# (slope, intercept) per band, in BANDS order: blue green red nir swir16 swir22.
MSI_TO_OLI: tuple[tuple[float, float], ...] = (
    (0.9778, -0.004), (1.0053, -0.0009), (0.9765, 0.0009), (0.9983, -0.0001),
    (0.9987, -0.0011), (1.003, -0.0012),
)  # fmt: skip
ETM_TO_OLI: tuple[tuple[float, float], ...] = (
    (0.9785, -0.0095), (0.9542, -0.0016), (0.9825, -0.0022), (1.0073, -0.0021),
    (1.0171, -0.0030), (0.9949, 0.0029),
)  # fmt: skip
_BY_PLATFORM_PREFIX: Mapping[str, tuple[tuple[float, float], ...]] = {
    "sentinel-2": MSI_TO_OLI,
    "landsat-4": ETM_TO_OLI,
    "landsat-5": ETM_TO_OLI,
    "landsat-7": ETM_TO_OLI,
}
assert len(MSI_TO_OLI) == len(ETM_TO_OLI) == len(BANDS)


def coefficients(platform: str) -> tuple[tuple[float, float], ...] | None:
    """The (slope, intercept) per band onto OLI for ``platform``; None for OLI itself."""
    return by_platform(_BY_PLATFORM_PREFIX, platform)


def to_oli(reflectance: NDArray[np.float32], platform: str) -> NDArray[np.float32]:
    """``reflectance`` (band, y, x) of ``platform`` expressed as Landsat 8/9 OLI would see it."""
    coef = coefficients(platform)
    if coef is None:
        return reflectance
    slope = np.array([c[0] for c in coef], np.float32)[:, None, None]
    intercept = np.array([c[1] for c in coef], np.float32)[:, None, None]
    return (reflectance * slope + intercept).astype(np.float32)
