"""Residual haze in one look: estimated from dark dense vegetation, removed along an Angstrom
spectrum.

L2A reflectance still carries haze where the processor's aerosol estimate fell short (Sen2Cor's
is imperfect; DPRK summers and autumns are hazy). Haze adds a path reflectance that falls with
wavelength, ``h * (lambda_blue / lambda) ** alpha`` (Angstrom exponent ``alpha`` ~1-2 for
continental aerosol; 1.5 here). On a dark target it matters most: coal (~0.05, flat) under
0.03 of blue haze is brighter in blue than in SWIR1, which is what the coal rule reads as a
shadow, so hazy looks stop counting as coal.

The estimate is the dark-dense-vegetation (DDV) relation behind the MODIS and Sen2Cor aerosol
retrievals (Kaufman et al. 1997, IEEE TGRS 35:1286; Sen2Cor ATBD): over dark vegetated ground
(SWIR2 0.01-0.25) surface blue is about a quarter of SWIR2, which haze barely touches. So
``blue - 0.25 * SWIR2`` is ~0 on such ground without haze and rises by the haze's blue path
reflectance with it. Candidates must be vegetation by a test haze cannot move either: SWIR1 at
least 1.5 x SWIR2 (leaf water absorbs deeper at 2.2 um: 1.5-2.5 for vegetation, 1.0-1.3 for
soil, built ground, rock, coal and char), so a block of bare ground, whose own excess is
~0.02, never passes for hazy vegetation. Nor may snow lie on it: snow, white in the visible and
dark in SWIR, keeps the SWIR1/SWIR2 ratio of the vegetation it partly covers (forest under
three quarters of snow still passes it) while adding ~0.8 of its share to blue, so a block of
forest under patchy snow the scene's snow mask missed (it flags a pixel mostly snow) would read
as haze of 0.1-0.3 and its removal would crush the look's visible bands. Vegetation's NDSI
(green - SWIR1) / (green + SWIR1) is negative (leaf water darkens SWIR1, Hall et al. 1995); a
sixth of snow lifts dense forest's above 0, haze only beyond ~0.15 in blue, more than an L2A
look keeps (a lighter dusting still passes, and can leave a block up to ~0.1 of haze too much
in a look mostly under snow). Every other surface sits above the line. A low percentile of
that excess over the candidate pixels of a block of the grid is the block's haze, the lower
envelope of the relation, which sits below its line by about twice the scatter of sensor
noise and of the relation itself, so the estimate errs on the side of leaving haze in.
A block whose estimate is below ``min_haze`` (the relation's own uncertainty, about 0.006 in
blue, Kaufman et al. 1997) has no haze the relation can tell from its ground: 0, so a
haze-free look is left exactly as it is.
Blocks follow the haze's spatial variation (it is smooth over kilometres); blocks without
enough candidates take their nearest estimated block's value, and the field is bilinear
between block centres.

Removal subtracts the haze spectrum, never taking a band below ``floor`` (a pixel already
darker keeps its value): no correction makes a look darker than a physical surface.

Pure: arrays in, arrays out. The estimate depends on the whole grid's clear pixels and the block
lattice of the grid, never on how the grid is read, so a site read by chunks (``chunks``)
estimates it once per scene from its survey and applies it to each chunk's window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pipeline.bands import BAND_INDEX, BANDS

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]

#: Band centres (micrometres) of ``BANDS``: Sentinel-2 MSI (B02 B03 B04 B08 B11 B12); Landsat
#: OLI's lie within 0.025 um of them, which changes the haze spectrum by under 4 %.
WAVELENGTH_UM: dict[str, float] = {
    "blue": 0.490, "green": 0.560, "red": 0.665, "nir": 0.842, "swir16": 1.610, "swir22": 2.190,
}  # fmt: skip
#: Surface blue / SWIR2 of dark dense vegetation (Kaufman et al. 1997; Sen2Cor's DDV).
DDV_BLUE_PER_SWIR22 = 0.25
#: SWIR2 range of dark vegetated targets (the MODIS dark-target selection).
DDV_SWIR22 = (0.01, 0.25)
#: Highest NDSI of a dark vegetated target: vegetation's is negative, snow's above 0.4.
DDV_NDSI_MAX = 0.0


@dataclass(frozen=True)
class HazeRule:
    """How haze is estimated and removed (``run`` builds it from ``haze`` in the config).

    ``block_m``: side of the estimate's blocks (metres); candidates are clear pixels in
    ``DDV_SWIR22`` with SWIR1 at least ``vegetation_swir_ratio`` x SWIR2; ``percentile`` of the
    DDV excess over a block's candidates (at least ``min_pixels``) is its haze, 0 below
    ``min_haze``; ``angstrom``: the haze spectrum's exponent; ``floor``: no band is taken below
    it."""

    block_m: float = 500.0
    vegetation_swir_ratio: float = 1.5
    percentile: float = 5.0
    min_pixels: int = 100
    min_haze: float = 0.006
    angstrom: float = 1.5
    floor: float = 0.005

    def block_px(self, pixel_m: float) -> int:
        """The side of a block in pixels of ``pixel_m`` metres."""
        return max(round(self.block_m / pixel_m), 1)


def spectrum(angstrom: float) -> NDArray[np.float32]:
    """The haze's path reflectance per band of ``BANDS``, relative to blue."""
    lam = np.array([WAVELENGTH_UM[b] for b in BANDS])
    out: NDArray[np.float32] = ((WAVELENGTH_UM["blue"] / lam) ** angstrom).astype(np.float32)
    return out


@dataclass(frozen=True)
class HazeField:
    """One look's haze: the blue path reflectance at the centres of ``block_px`` blocks of the
    grid (``blocks``: block rows, block cols), bilinear in between (``at``)."""

    blocks: FloatArray
    block_px: int

    @property
    def mean(self) -> float:
        """Mean blue haze over the blocks (reflectance)."""
        return float(self.blocks.mean()) if self.blocks.size else 0.0

    @property
    def max(self) -> float:
        """Largest block's blue haze (reflectance)."""
        return float(self.blocks.max()) if self.blocks.size else 0.0

    def at(self, rows: slice, cols: slice) -> FloatArray:
        """The blue haze of the grid's pixels ``rows`` x ``cols`` (each pixel's value depends on
        its position in the grid only, not on the window asked for)."""
        r0, r1, wr = _weights(rows, self.block_px, self.blocks.shape[0])
        c0, c1, wc = _weights(cols, self.block_px, self.blocks.shape[1])
        b = self.blocks
        top = b[np.ix_(r0, c0)] * (1 - wc) + b[np.ix_(r0, c1)] * wc
        bottom = b[np.ix_(r1, c0)] * (1 - wc) + b[np.ix_(r1, c1)] * wc
        out: FloatArray = (top * (1 - wr)[:, None] + bottom * wr[:, None]).astype(np.float32)
        return out


def _weights(
    index: slice, block_px: int, n_blocks: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]:
    """Per pixel of ``index``: the blocks before and after its position between block centres
    and its weight toward the latter (clamped at the grid's outer block centres)."""
    pixel = np.arange(index.start, index.stop, dtype=np.float64)
    u = np.clip((pixel - (block_px - 1) / 2) / block_px, 0.0, max(n_blocks - 1, 0))
    lo = np.floor(u).astype(np.intp)
    hi = np.minimum(lo + 1, n_blocks - 1)
    return lo, hi, (u - lo).astype(np.float32)


def ddv_excess(
    blue: FloatArray,
    green: FloatArray,
    swir16: FloatArray,
    swir22: FloatArray,
    vegetation_swir_ratio: float = 1.5,
) -> FloatArray:
    """Blue above what dark dense vegetation of this SWIR2 reflects, per unit of blue haze
    (haze adds to SWIR2 too, a little): the blue haze where the pixel is such vegetation, more
    elsewhere. NaN where SWIR2 lies outside ``DDV_SWIR22``, SWIR1 is below
    ``vegetation_swir_ratio`` x SWIR2, or the NDSI (green, SWIR1) is above ``DDV_NDSI_MAX``
    (not a dark vegetated target free of snow)."""
    k = DDV_BLUE_PER_SWIR22
    in_swir22 = WAVELENGTH_UM["blue"] / WAVELENGTH_UM["swir22"]
    with np.errstate(invalid="ignore"):
        dark = (
            (swir22 >= DDV_SWIR22[0])
            & (swir22 <= DDV_SWIR22[1])
            & (swir16 >= np.float32(vegetation_swir_ratio) * swir22)
            & (green - swir16 <= np.float32(DDV_NDSI_MAX) * (green + swir16))
        )
        excess = (blue - np.float32(k) * swir22) / np.float32(1 - k * in_swir22**1.5)
    out: FloatArray = np.where(dark, excess, np.nan).astype(np.float32)
    return out


def estimate(
    blue: FloatArray,
    green: FloatArray,
    swir16: FloatArray,
    swir22: FloatArray,
    clear: BoolArray,
    pixel_m: float,
    rule: HazeRule | None = None,
) -> HazeField:
    """The haze field of one look from its ``blue``, ``green``, ``swir16`` and ``swir22``
    reflectance (y, x) and its ``clear`` mask on a grid of ``pixel_m`` pixels (see the module's
    docstring). Zero everywhere when no block has enough dark vegetated candidates."""
    rule = rule if rule is not None else HazeRule()
    b = rule.block_px(pixel_m)
    shape = blue.shape
    nb = (-(-shape[0] // b), -(-shape[1] // b))
    found = ddv_excess(blue, green, swir16, swir22, rule.vegetation_swir_ratio)
    excess = np.where(clear, found, np.nan)
    # Pad to whole blocks with NaN, then one row of values per block.
    padded = np.full((nb[0] * b, nb[1] * b), np.nan, np.float32)
    padded[: shape[0], : shape[1]] = excess
    per_block = padded.reshape(nb[0], b, nb[1], b).transpose(0, 2, 1, 3).reshape(*nb, b * b)
    counts = np.isfinite(per_block).sum(axis=-1)
    enough = counts >= min(rule.min_pixels, b * b)
    blocks = np.zeros(nb, np.float32)
    if not enough.any():
        return HazeField(blocks, b)
    low = np.nanpercentile(per_block[enough], rule.percentile, axis=-1)
    blocks[enough] = np.where(low >= rule.min_haze, low, 0.0)
    if not enough.all():
        # Blocks without dark vegetation take the value of the nearest block with it.
        _, (ri, ci) = ndimage.distance_transform_edt(~enough, return_indices=True)
        blocks = blocks[ri, ci]
    return HazeField(blocks.astype(np.float32), b)


def remove(
    reflectance: FloatArray, haze_blue: FloatArray, rule: HazeRule | None = None
) -> FloatArray:
    """``reflectance`` (band, y, x) without the haze whose blue path reflectance is
    ``haze_blue`` (y, x), spread over the bands along ``spectrum(rule.angstrom)``. No band is
    taken below ``rule.floor``; a pixel already below it keeps its value."""
    rule = rule if rule is not None else HazeRule()
    path = spectrum(rule.angstrom)[:, None, None] * haze_blue[None]
    floor = np.float32(rule.floor)
    out: FloatArray = np.maximum(reflectance - path, np.minimum(reflectance, floor))
    return out.astype(np.float32, copy=False)


#: The bands ``estimate`` reads, in its argument order.
DDV_BANDS = ("blue", "green", "swir16", "swir22")


def ddv_bands(reflectance: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The bands ``estimate`` reads from a look (band, y, x): blue, green, SWIR1, SWIR2."""
    blue, green, swir16, swir22 = (reflectance[BAND_INDEX[b]] for b in DDV_BANDS)
    return blue, green, swir16, swir22
