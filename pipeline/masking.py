"""Clear-sky masks from Sentinel-2 scene classification (SCL), and mask morphology."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

BoolArray = NDArray[np.bool_]

# DOMAIN.md: no data, defective, clouds, cirrus and snow are not clear. Dark area (2), cloud
# shadow (3) and water (6) are kept: Sen2Cor labels coal piles so.
SCL_NOT_CLEAR: tuple[int, ...] = (0, 1, 8, 9, 10, 11)
SCL_CLOUDS: tuple[int, ...] = (8, 9, 10)
CLOUD_DILATION_M = 150.0


def disk(radius_px: int) -> BoolArray:
    """A disk-shaped structuring element of the given pixel radius."""
    y, x = np.ogrid[-radius_px : radius_px + 1, -radius_px : radius_px + 1]
    return np.asarray(x * x + y * y <= radius_px * radius_px)


def clear_from_scl(
    scl: NDArray[np.integer],
    masked: Collection[int],
    dilated: Collection[int] = (),
    dilation_px: int = 0,
) -> BoolArray:
    """True where a pixel is clear: its SCL class is not masked and it is not near a cloud.

    Classes in ``dilated`` (clouds) are grown by ``dilation_px`` before masking, since cloud edges
    are under-detected; SCL 2, 3 and 6 are not masked by default callers (coal looks like them).
    """
    not_clear = np.isin(scl, list(masked))
    if dilated and dilation_px > 0:
        clouds = np.isin(scl, list(dilated))
        if clouds.any():
            not_clear |= ndimage.binary_dilation(clouds, structure=disk(dilation_px))
    return np.asarray(~not_clear)


def open_mask(mask: BoolArray, radius_px: int) -> BoolArray:
    """Morphological opening with a square: drops features thinner than ``2 * radius_px + 1``
    pixels and keeps rectangular corners (a disk would nibble them)."""
    if radius_px <= 0:
        return mask
    square = np.ones((2 * radius_px + 1,) * 2, bool)
    return np.asarray(ndimage.binary_opening(mask, structure=square))
