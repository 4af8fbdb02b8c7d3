"""Linear features: new roads and tracks, found as lines rather than as pixels.

Pure stage: arrays and a frozen ``LineRule`` in, boolean masks out.

A 12 m road cut through forest fills about half of each 10 m pixel it crosses: the mixed pixels
keep an NDVI near 0.35, too green for any per-pixel footprint rule, and a strip one pixel wide
is what the footprint's opening and the minimum mapping unit are there to remove. What gives the
road away is its shape and its history, not its pixels: along its whole length it is darker in
NDVI than the ground on *both* sides (a valley, where a field edge or a one-pixel shift of an
edge is a step), it lost greenness against the year before, and the loss persists the next year
(a one-year artefact is not a road).

* ``valley_depth``: how far each pixel lies below the ground on both sides of it, the largest
  over four directions: the directional black top-hat, a closing by a short line segment
  minus the image (Soille & Talbot 2001, "Directional morphological filtering", IEEE TPAMI
  23:1313). A step edge has ground at its own level on one side and is not filled: depth 0.
  (Hessian ridge filters such as ``skimage.filters.sato`` answer the dark side of a step
  nearly as strongly as a line: 0.115 against 0.122 for a 0.55 step and a 0.35 line at
  sigma 1, so a harvested field's edge would pass for a road.)
* ``greenness_loss``: NDVI lost between two years, less the median change of the ground
  around it (``local_median``: each cover follows its own phenology between composites).
* ``long_thin``: the regions of a candidate mask that are long (largest extent, the maximum
  Feret diameter, at least ``min_length_m``) and thin (area over the length of the thinned
  skeleton, ``skimage.morphology.thin``, at most ``max_width_m``), pieces a pixel apart taken
  together and mended (a road is not broken by one pixel of a lighter mix).
* ``displaced``: lines whose darkening is paired with greening beside them: a thin dark
  feature moved by a sub-pixel shift, not a new one.
* ``persistent``: the lines whose median loss holds within a pixel (``held_loss``: the
  next year's composite may sit up to a pixel aside), each judged as a whole.
* ``joining``: the lines that reach the footprint (a road cut to the camp or mine).
* ``new_lines``: the lines that appeared in a year: valleys of that year's NDVI that lost
  greenness against the year before and stayed so the next year, long and thin.
* ``track_lines``: per year of a series, the lines that appeared in it or earlier and are
  still there (still lower than before they appeared): what each year's footprint gains.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage import measure, morphology

__all__ = [
    "LineRule",
    "displaced",
    "greenness_loss",
    "held_loss",
    "joining",
    "local_median",
    "long_thin",
    "new_lines",
    "persistent",
    "track_lines",
    "valley_depth",
]

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.floating]

_SQUARE = np.ones((3, 3), bool)


@dataclass(frozen=True)
class LineRule:
    """What counts as a new linear feature (``config.LinesConfig`` documents each field).

    Depths and losses are in NDVI units: a 12 m asphalt road (NDVI ~0.1) across 10 m pixels
    of forest (0.6-0.8) leaves mixes near 0.35-0.5, a valley and a loss of 0.15-0.4 (more where
    it is centred on a pixel, less where it straddles two); 0.12 keeps the straddling case and
    lies above the composites' noise (medians of ~8 looks: valley depths of unchanged ground
    stay below 0.1 in 99 % of pixels).

    ``max_gap_m``: how near a new line must come to the footprint the year already has (a road
    cut to a camp or mine joins it; logging tracks and field paths out in the country do not
    count); None: anywhere.
    """

    min_depth: float = 0.12
    min_loss: float = 0.12
    min_length_m: float = 200.0
    max_width_m: float = 30.0
    span_px: int = 5
    max_gap_m: float | None = 30.0


def _line_footprints(span_px: int) -> list[BoolArray]:
    """Segments of ``span_px`` pixels through the centre: horizontal, vertical, both diagonals."""
    c = span_px // 2
    horizontal = np.zeros((span_px, span_px), bool)
    horizontal[c, :] = True
    diagonal = np.eye(span_px, dtype=bool)
    return [horizontal, horizontal.T.copy(), diagonal, np.fliplr(diagonal).copy()]


def valley_depth(index: FloatArray, span_px: int = 5) -> NDArray[np.float32]:
    """Depth of each pixel of ``index`` below the ground on both sides of it: the largest,
    over four directions, of the closing by a ``span_px`` segment minus ``index`` (valleys up
    to ``span_px - 1`` pixels wide are filled; a step edge is not). NaN (unseen) pixels are
    filled with the image median first and come out 0."""
    if span_px < 3 or span_px % 2 == 0:
        raise ValueError(f"span_px must be an odd number >= 3, got {span_px}")
    x = np.asarray(index, np.float32)
    missing = ~np.isfinite(x)
    if missing.all():
        return np.zeros(x.shape, np.float32)
    x = np.where(missing, np.float32(np.nanmedian(x)), x)
    depth = np.max([morphology.closing(x, fp) - x for fp in _line_footprints(span_px)], axis=0)
    return np.where(missing, np.float32(0.0), depth).astype(np.float32)


def long_thin(candidates: BoolArray, pixel_m: float, rule: LineRule) -> BoolArray:
    """The pixels of ``candidates`` in long, thin regions (``rule.min_length_m``,
    ``rule.max_width_m``), regions grouped across one-pixel gaps, and the gaps filled."""
    mask = np.asarray(candidates, bool)
    if not mask.any():
        return np.zeros(mask.shape, bool)
    groups, n = _groups(mask)
    keep = np.zeros(n + 1, bool)
    for region in measure.regionprops(groups):  # type: ignore[no-untyped-call]
        top, left, bottom, right = region.bbox
        # The Feret diameter never exceeds the box's diagonal: most pieces stop here, cheaply.
        if math.hypot(bottom - top, right - left) * pixel_m < rule.min_length_m:
            continue
        if float(region.feret_diameter_max) * pixel_m < rule.min_length_m:
            continue
        piece = region.image
        skeleton: BoolArray = morphology.thin(piece)  # type: ignore[no-untyped-call]
        width_m = float(region.area) * pixel_m / _path_length_px(skeleton)
        keep[region.label] = width_m <= rule.max_width_m
    kept = np.asarray(keep[groups], bool)
    # The gaps of a pixel between a line's pieces are road too: one region, not fragments
    # that a minimum mapping unit would drop.
    return np.asarray(ndimage.binary_closing(kept, _SQUARE) | kept, bool)


#: Side (pixels) of the blocks whose median change ``greenness_loss`` takes as the ground's:
#: many times the widest line (``max_width_m``, 3 px at 10 m) and the valley span, so that a
#: line is a small share of any block, and a cover's patch (a stand of forest, a field) across
#: (160 m at 10 m).
LOSS_BLOCK_PX = 16


def local_median(values: FloatArray, block_px: int) -> NDArray[np.float32]:
    """A smooth background of ``values``: the median of each ``block_px`` square block of
    finite values, bilinear between the blocks' centres (the mesh background of source
    extraction, Bertin & Arnouts 1996, A&AS 117:393, without its clipping). A block less than
    a quarter finite takes the median of the whole image (0 when none is finite)."""
    if block_px < 1:
        raise ValueError(f"block_px must be a whole number >= 1, got {block_px}")
    h, w = values.shape
    finite = np.isfinite(values)
    counts = measure.block_reduce(finite, block_px, np.sum, cval=0)  # type: ignore[no-untyped-call]
    enough = counts * 4 >= block_px**2
    whole = float(np.median(values[finite])) if finite.any() else 0.0
    # Blocks with too few values are refilled below; nanmedian's warning about them says nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = measure.block_reduce(values, block_px, np.nanmedian, cval=np.nan)  # type: ignore[no-untyped-call]
    coarse = np.where(enough, medians, whole).astype(np.float32)
    y = (np.arange(h, dtype=np.float64) + 0.5) / block_px - 0.5
    x = (np.arange(w, dtype=np.float64) + 0.5) / block_px - 0.5
    at = np.meshgrid(y, x, indexing="ij")
    return np.asarray(ndimage.map_coordinates(coarse, at, order=1, mode="nearest"), np.float32)


def greenness_loss(
    before: FloatArray, after: FloatArray, block_px: int = LOSS_BLOCK_PX
) -> NDArray[np.float32]:
    """NDVI lost from ``before`` to ``after``, less the change of the ground around it: two
    years' composites differ everywhere by phenology and residual haze, which is not change
    (the relative normalisation of change detection, e.g. Canty & Nielsen 2008, RSE 112:1025,
    here reduced to an offset). The offset is the median change of the ``block_px`` square
    blocks, bilinear between their centres (``local_median``), not one for the scene: each
    cover follows its own phenology (forest 0.2 NDVI greener in one year's composite while
    built ground and stubble did not change), and against the scene's median a whole forest
    reads as gain, so that every road cut through it passes for a strip moved by a shift
    (``displaced``). NaN where either year is unseen."""
    with np.errstate(invalid="ignore"):
        change = np.asarray(before, np.float32) - np.asarray(after, np.float32)
    return (change - local_median(change, block_px)).astype(np.float32)


def displaced(lines: BoolArray, loss: FloatArray, radius_px: int, min_gain: float) -> BoolArray:
    """The lines of ``lines`` (grouped as ``long_thin`` groups them) most of whose pixels have,
    within ``radius_px`` pixels, one that gained at least ``min_gain`` (``loss`` at most
    ``-min_gain``): a thin dark feature that moved between composites (a shift of part of a
    pixel, below what co-registration moves, or a local one) darkens the pixels on one side
    and brightens those on the other; a new road darkens without anything greening beside it."""
    groups, n = _groups(lines)
    if n == 0:
        return np.zeros(lines.shape, bool)
    with np.errstate(invalid="ignore"):
        gained = np.asarray(loss) <= -min_gain
    size = 2 * radius_px + 1
    paired = ndimage.maximum_filter(gained, size=size) & lines
    share = ndimage.mean(paired, groups, np.arange(1, n + 1))
    keep = np.concatenate([[False], np.asarray(share) > 0.5])
    return np.asarray(keep[groups], bool)


def held_loss(loss: FloatArray) -> NDArray[np.float32]:
    """The largest ``loss`` within a pixel of each pixel (its 3 x 3 neighbourhood; unseen
    pixels count as no loss): where a later year still holds a line's loss. Two years'
    composites can sit most of a pixel apart: co-registration brings a year back only when it
    lies 0.4 px or more off the others (``coregister.MIN_RESAMPLE_PX``), each year's position
    is uncertain by about 0.15 px, and each season's looks are jittered about their own
    positions. A one-pixel road seen half a pixel or more aside leaves its loss in the pixel
    beside it (seed 23 of the synthetic ``new-road`` case: a road found in 2022 kept a median
    loss of 0.09 in place in 2023, and 0.27 within a pixel)."""
    values = np.where(np.isfinite(loss), np.asarray(loss, np.float32), -np.inf)
    return np.asarray(ndimage.maximum_filter(values, footprint=_SQUARE), np.float32)


def persistent(lines: BoolArray, held: FloatArray, rule: LineRule) -> BoolArray:
    """The lines of ``lines`` (grouped across one-pixel gaps, as ``long_thin`` does) whose
    median ``held`` (a later year's loss held within a pixel: ``held_loss``) is at least
    ``rule.min_loss``: each line judged as a whole, so that the sub-pixel jitter of a one-pixel
    road between composites does not break it up."""
    groups, n = _groups(lines)
    if n == 0:
        return np.zeros(lines.shape, bool)
    median = ndimage.median(held, groups, np.arange(1, n + 1))
    keep = np.concatenate([[False], np.asarray(median) >= rule.min_loss])
    return np.asarray(keep[groups], bool)


def new_lines(
    before: FloatArray,
    this: FloatArray,
    after: FloatArray,
    pixel_m: float,
    rule: LineRule,
    known: BoolArray | None = None,
) -> BoolArray:
    """Lines that appeared in the year of NDVI ``this``: valleys at least ``rule.min_depth``
    deep that lost at least ``rule.min_loss`` (``greenness_loss``) against ``before`` (the
    previous year), outside ``known`` (footprint the year already has: a line is what the
    per-pixel rules missed, and a road is not widened by the yard it leaves), long and thin
    (``long_thin``), not a dark strip moved by a sub-pixel shift (``displaced``), whose loss
    against ``before`` persists in ``after`` (the next year, within a pixel: ``held_loss``,
    ``persistent``), and that come within ``rule.max_gap_m`` of ``known`` (``joining``;
    without ``known``, anywhere).

    A road is a valley all along, but its loss can fall short of ``rule.min_loss`` for a few
    pixels (a 12 m road across 10 m pixels of forest loses 0.1-0.16 NDVI, as it straddles them),
    or be none where it follows an older track: the part that passes can end short of the
    footprint it leads to, in pieces too short to pass alone. So a line joins through the
    valley pixels it connects to within ``rule.min_length_m`` of it (its ``reach``: hysteresis,
    seeded by the full rule; a longer stretch of valleys would be a line of its own, and an
    old track network must not carry a new track from far away to the footprint), and the
    pixels of its reach that lost greenness, and kept it lost the next year, are part of it."""
    loss = greenness_loss(before, this)
    with np.errstate(invalid="ignore"):
        valleys = valley_depth(this, rule.span_px) >= rule.min_depth
        candidates = valleys & (loss >= rule.min_loss)
    if known is not None:
        valleys &= ~known
        candidates &= ~known
    lines = long_thin(candidates, pixel_m, rule)
    # A strip up to span_px - 1 wide moved by a pixel: its old rim lies that far from the new.
    lines &= ~displaced(lines, loss, rule.span_px - 1, rule.min_loss)
    held = held_loss(greenness_loss(before, after))
    lines = persistent(lines, held, rule)
    if known is None or rule.max_gap_m is None or not lines.any():
        return lines
    near = ndimage.distance_transform_edt(~lines) <= rule.min_length_m / pixel_m
    reach = np.asarray(
        ndimage.binary_propagation(lines, _SQUARE, mask=lines | (valleys & near)), bool
    )
    joined = joining(reach, known, rule.max_gap_m / pixel_m)
    extended = candidates & (held >= rule.min_loss)
    return np.asarray(joined & (lines | extended), bool)


def joining(lines: BoolArray, known: BoolArray, max_gap_px: float) -> BoolArray:
    """The lines of ``lines`` (grouped as ``long_thin`` groups them) that come within
    ``max_gap_px`` pixels (centre to centre) of a pixel of ``known``."""
    groups, n = _groups(lines)
    if n == 0 or not known.any():
        return np.zeros(lines.shape, bool)
    near = ndimage.distance_transform_edt(~known) <= max_gap_px
    keep = np.zeros(n + 1, bool)
    keep[np.unique(groups[near & lines])] = True
    keep[0] = False
    return np.asarray(keep[groups], bool)


def track_lines(
    ndvi: Sequence[FloatArray],
    pixel_m: float,
    rule: LineRule,
    known: Sequence[BoolArray] | None = None,
) -> list[BoolArray]:
    """Per year of ``ndvi`` (consecutive years with data, ascending, on one frame) the lines
    it holds: those that appeared in it (``new_lines`` outside the year's ``known`` footprint,
    judged by its neighbours, so never in the first or the last year) and those of earlier
    years whose loss against the year before they appeared still holds (``persistent``: not
    regrown)."""
    shape = ndvi[0].shape if ndvi else (0, 0)
    out: list[BoolArray] = []
    since = np.full(shape, -1, np.int32)  # index of the year before each line pixel appeared
    for i, this in enumerate(ndvi):
        kept = np.zeros(shape, bool)
        for s in np.unique(since[since >= 0]):
            kept |= persistent(since == s, held_loss(greenness_loss(ndvi[s], this)), rule)
        new = np.zeros(shape, bool)
        if 0 < i < len(ndvi) - 1:
            mask = None if known is None else known[i]
            new = new_lines(ndvi[i - 1], this, ndvi[i + 1], pixel_m, rule, mask) & ~kept
        since = np.where(kept, since, -1)
        since = np.where(new, i - 1, since)
        out.append(kept | new)
    return out


def _path_length_px(skeleton: BoolArray) -> float:
    """Length (pixels) of a one-pixel-thin ``skeleton``: its steps between 4-neighbours count
    1, between diagonal neighbours sqrt(2) (at least 1)."""
    s = skeleton
    straight = int((s[:, 1:] & s[:, :-1]).sum() + (s[1:] & s[:-1]).sum())
    diagonal = int((s[1:, 1:] & s[:-1, :-1]).sum() + (s[1:, :-1] & s[:-1, 1:]).sum())
    return max(straight + math.sqrt(2.0) * diagonal, 1.0)


def _groups(mask: BoolArray) -> tuple[NDArray[np.int32], int]:
    """Labels of ``mask``'s pixels, pieces a pixel apart in one group; 0 off ``mask``."""
    if not mask.any():
        return np.zeros(mask.shape, np.int32), 0
    groups, n = ndimage.label(ndimage.binary_dilation(mask, _SQUARE))
    return np.where(mask, groups, 0).astype(np.int32), int(n)
