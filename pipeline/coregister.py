"""Co-registration of a site's years onto one common frame, before areas and boundary movement
are measured.

Owns: the registration image of a composite, the shift between two of them, the network of
pairwise shifts that places every year, the whole-pixel moves that bring the years together,
and moving a site-year's per-pixel arrays. Pure: arrays and plain parameters in, arrays and
frozen records out.

Why: one year's imagery can sit a pixel or more off the others (Landsat against Sentinel-2,
Storey et al. 2016 found up to 38 m; Sentinel-2 before the Global Reference Image), and a map
one pixel off reads as a ring of expansion on one side and of loss on the other. AROSICS
(Scheffler et al. 2017, Remote Sensing 9(7):676) measures such shifts by phase correlation and
keeps one only when it is reliable and improves the images' similarity; this module does the
same for a series, with scikit-image's sub-pixel ``phase_cross_correlation`` (Guizar-Sicairos et
al. 2008) and without an external reference image:

1. Each year's registration image is the gradient magnitude (Sobel) of one band (SWIR1 by
   default) over its valid pixels, standardised: edges of buildings, roads, fields and spoil
   persist across seasons and sensors where a band's level follows phenology and haze.
2. Every pair of years is correlated (phase correlation under a Hann window, sub-pixel); a pair
   counts when enough pixels are valid in both, the shift stays within ``max_shift_px`` and the
   two images, aligned by it, correlate at ``min_correlation`` at least (texture they share:
   noise, water or a flat field correlate near 0 at any shift).
3. The pairwise shifts are adjusted by least squares into a position per year (a free network,
   Wolf & Ghilani 2006: positions are relative, so the minimum-norm solution fixes them at their
   mean); a pair that disagrees with the others by more than ``max_residual_px`` is dropped,
   worst first (a blunder), and the adjustment repeated.
4. Maps move by whole pixels only (classes and counts are not resampled; a half pixel is the
   best a 10 m map can do): the frame is the one that leaves the least misregistration between
   the years once each is moved by its rounded position, then the one that moves the fewest
   pixels (most years are right in most series), then the one nearest the series' mean. An
   axis moves only when the year lies ``min_shift_px`` or more off the frame along it.
5. A move is kept only when every reliable pair of the year agreed with the adjustment (a pair
   dropped as a blunder may be the year's own false match) and it raises the year's
   correlation with the per-pixel median of the other years (moved likewise): AROSICS's check
   that a correction improves similarity.

A year without a composite, or without a reliable pair, is left where it is.

Maps moved by whole pixels cannot mend a year that lies a fraction of a pixel off: classified
0.6 px off, a 5 ha site's footprint comes out a row and a column aside, and a year 0.8 px off
moved back by a pixel is left 0.2 px off the other way. So the run places its finished years
first (:func:`year_shifts`) and makes again, with every look resampled before it is
composited and classified, each year that steps 1-5 would move, or would leave
``min_resample_px`` or more off the others (:func:`subpixel_shifts`): it is shifted the whole
way onto the years that would stay, with the same checks as step 5 (no blunder, a better match
once moved). "The others" are where most years would sit once moved (three years that agree
and one half a pixel off them: the frame of step 4 settles between them, where the odd year
lies under ``min_resample_px`` off), or the frame itself when no more than half of them sit
together. Steps 1-5 then find those years on the frame. A series in which every year would
move (each a pixel off the ground in another direction) has no year to resample onto: its
years are moved by whole pixels, as before.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.filters import sobel, window
from skimage.registration import phase_cross_correlation

from pipeline.classify import CoalFrequency
from pipeline.composite import Composite
from pipeline.results import Registration, SeasonEvidence, SiteYear
from pipeline.terrain import SunResponse

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]

#: Defaults of :class:`CoregistrationParams` (and of ``config.CoregistrationConfig``).
#: AROSICS's default bound: 5 px covers Storey et al.'s 38 m Landsat-8/Sentinel-2 offsets at 10 m.
MAX_SHIFT_PX = 5.0
#: The registration images of two years share structure above this correlation once aligned.
MIN_CORRELATION = 0.2
#: Pixels valid in both years for a pair to count (a 500 m square at 10 m; AROSICS matches in
#: a 256 px window and refuses windows below 8 px).
MIN_OVERLAP_PX = 2500
#: A pair whose shift differs from the network's adjustment by more than this is a blunder.
MAX_RESIDUAL_PX = 0.35
#: Frames whose squared misregistration is within this of the least are equally good (px^2):
#: a frame a whole pixel away repeats the same misfit but for float rounding.
MISFIT_TOLERANCE_PX2 = 1e-9
#: A year moves along an axis only when it lies this far off the frame (pixels). Moving an
#: image by one pixel helps only when its true offset exceeds half a pixel; with the estimate
#: and the frame each uncertain by about 0.15 px (the spread of seasonal composites, whose
#: pixels come from different scenes), 0.75 px makes that so with about 90% confidence
#: (0.5 + 1.28 x 0.21), where 0.5 would be a coin toss.
MIN_SHIFT_PX = 0.75
#: A year's looks are resampled onto the frame before it is classified (``subpixel_shifts``)
#: when the year lies this far off it along an axis (pixels): with the estimate and the frame
#: each uncertain by about 0.15 px, a year that is right moves this far about one time in 20
#: (0.4 / 0.21 = 1.9 sigma), and a year this far off loses or gains a rim of pixels on a small
#: site.
MIN_RESAMPLE_PX = 0.4
#: Sub-pixel precision of the pairwise shifts: 1/UPSAMPLE_FACTOR px.
UPSAMPLE_FACTOR = 20


@dataclass(frozen=True)
class CoregistrationParams:
    """How the years of a site are brought onto one frame (module docstring, steps 1-5).

    ``band``: index of the band whose gradient is matched (``bands.BAND_INDEX``)."""

    band: int = 4
    max_shift_px: float = MAX_SHIFT_PX
    min_correlation: float = MIN_CORRELATION
    min_overlap_px: int = MIN_OVERLAP_PX
    max_residual_px: float = MAX_RESIDUAL_PX
    upsample_factor: int = UPSAMPLE_FACTOR
    min_shift_px: float = MIN_SHIFT_PX
    min_resample_px: float | None = MIN_RESAMPLE_PX


#: What ``analysis.analyse_site`` uses unless told otherwise (the config's defaults).
DEFAULT_COREGISTRATION = CoregistrationParams()


@dataclass(frozen=True)
class PairShift:
    """The shift (rows, cols) that moves year ``j``'s image onto year ``i``'s, and how well the
    two correlate once aligned by it (rounded to whole pixels)."""

    i: int
    j: int
    shift: tuple[float, float]
    correlation: float


@dataclass(frozen=True)
class Placement:
    """Where each image of a series lies against the common frame, in pixels (rows, cols):
    ``position`` the adjusted sub-pixel estimate (None: no reliable pair placed it), ``move``
    the whole-pixel correction kept (the image is shifted by ``-move``; (0, 0): left in place),
    ``pairs`` how many reliable pairs placed it."""

    position: tuple[float, float] | None
    move: tuple[int, int]
    pairs: int


def registration_image(band: NDArray[Any], valid: BoolArray) -> FloatArray | None:
    """The standardised gradient magnitude (Sobel) of ``band`` over the pixels of ``valid``
    whose 3x3 neighbourhood is valid (0 elsewhere, which is the mean), or None when it has no texture at all (no valid pixel, or a
    constant band)."""
    ok = valid & np.isfinite(band)
    # Where the 3x3 operator sees only valid pixels: the edge of ``valid`` (the analysis area,
    # the same every year) must not become a feature that pins every shift at zero.
    interior = ndimage.binary_erosion(ok, np.ones((3, 3), bool))
    if interior.sum() < 2:
        return None
    values = np.where(ok, band, np.median(band[ok])).astype(np.float64)
    grad = sobel(values)  # type: ignore[no-untyped-call]
    inside = grad[interior]
    spread = float(inside.std())
    if not spread > 0.0:
        return None
    return np.where(interior, (grad - float(inside.mean())) / spread, 0.0)


def shift_array(array: NDArray[Any], move: tuple[int, int], fill: Any) -> NDArray[Any]:
    """``array`` (..., y, x) moved by ``move`` whole pixels (rows down, cols right), ``fill``
    where the move brings in pixels from outside (no wrap-around)."""
    dy, dx = move
    if (dy, dx) == (0, 0):
        return array
    h, w = array.shape[-2:]
    out = np.full_like(array, fill)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    dst = (..., slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0)))
    src = (..., slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0)))
    out[dst] = array[src]
    return out


def resample(array: NDArray[np.floating[Any]], shift: tuple[float, float]) -> NDArray[np.float32]:
    """``array`` (..., y, x) moved by ``shift`` (rows down, cols right; ``ndimage.shift``'s
    convention), bilinear from its four whole-pixel neighbours, NaN where one of them is NaN
    or outside the array. The weights depend on the shift's fractions only, so any window of
    the array gives, away from its edges, the same values as the whole array."""
    dy, dx = shift
    ky, kx = math.floor(dy), math.floor(dx)
    fy, fx = dy - ky, dx - kx
    source = np.asarray(array, np.float32)
    out = np.zeros(source.shape, np.float32)
    for my, wy in ((ky, 1.0 - fy), (ky + 1, fy)):
        for mx, wx in ((kx, 1.0 - fx), (kx + 1, fx)):
            weight = np.float32(wy * wx)
            if weight == 0.0:
                continue
            out += weight * shift_array(source, (my, mx), np.float32(np.nan))
    return out


def aligned_correlation(a: FloatArray, b: FloatArray, move: tuple[int, int]) -> float:
    """``image_correlation`` of registration images ``a`` and ``b`` after moving ``b`` by
    ``move`` whole pixels."""
    return image_correlation(a, shift_array(b, move, 0.0))


def image_correlation(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> float:
    """Pearson correlation of registration images ``a`` and ``b`` over the pixels valid in both
    (finite and non-zero: ``registration_image`` leaves 0 elsewhere, a resampled image NaN
    beyond its edge); NaN below 2 pixels or where either is constant."""
    both = np.isfinite(a) & np.isfinite(b) & (a != 0) & (b != 0)
    if both.sum() < 2:
        return float("nan")
    x, y = a[both], b[both]
    if not (x.std() > 0 and y.std() > 0):
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def pair_shift(
    reference: FloatArray,
    moving: FloatArray,
    overlap_px: int,
    params: CoregistrationParams,
    taper: FloatArray | None = None,
) -> tuple[tuple[float, float], float] | None:
    """(shift (rows, cols) that registers ``moving`` onto ``reference``, their correlation once
    aligned by it rounded to whole pixels), or None when the pair is not reliable: fewer than
    ``min_overlap_px`` pixels valid in both (``overlap_px``), a shift beyond ``max_shift_px``,
    or a correlation below ``min_correlation``. ``taper``: the Hann window (computed here when
    not given)."""
    if overlap_px < params.min_overlap_px:
        return None
    if taper is None:
        taper = window("hann", reference.shape)  # type: ignore[no-untyped-call]
    found, _, _ = phase_cross_correlation(  # type: ignore[no-untyped-call]
        reference * taper, moving * taper, upsample_factor=params.upsample_factor
    )
    dy, dx = float(found[0]), float(found[1])
    if max(abs(dy), abs(dx)) > params.max_shift_px:
        return None
    r = aligned_correlation(reference, moving, (round(dy), round(dx)))
    if not r >= params.min_correlation:
        return None
    return (dy, dx), r


def adjust_network(
    n: int, pairs: Sequence[PairShift], max_residual_px: float
) -> tuple[list[tuple[float, float] | None], list[PairShift]]:
    """Positions (rows, cols) of ``n`` images from pairwise shifts, by least squares with the
    minimum-norm (free network) solution in each connected group, which puts the group's mean
    at 0; None for an image no pair reaches. A pair whose residual exceeds ``max_residual_px``
    is dropped, the worst first, and the adjustment repeated. Returns the positions and the
    pairs kept."""
    kept = list(pairs)
    while True:
        positions: list[tuple[float, float] | None] = [None] * n
        residuals = np.zeros(len(kept))
        for group in _groups(n, kept):
            index = {k: m for m, k in enumerate(group)}
            inside = [(m, p) for m, p in enumerate(kept) if p.i in index]
            design = np.zeros((len(inside), len(group)))
            observed = np.zeros((len(inside), 2))
            for row, (_, p) in enumerate(inside):
                # p.shift moves j onto i: position_j - position_i = -shift
                design[row, index[p.j]], design[row, index[p.i]] = 1.0, -1.0
                observed[row] = (-p.shift[0], -p.shift[1])
            solved, *_ = np.linalg.lstsq(design, observed, rcond=None)
            for k, m in index.items():
                positions[k] = (float(solved[m, 0]), float(solved[m, 1]))
            misfit = np.abs(design @ solved - observed).max(axis=1)
            for row, (m, _) in enumerate(inside):
                residuals[m] = misfit[row]
        if not kept or residuals.max() <= max_residual_px:
            return positions, kept
        del kept[int(np.argmax(residuals))]


def _groups(n: int, pairs: Sequence[PairShift]) -> list[list[int]]:
    """The connected groups (of 2 or more images) the pairs link."""
    parent = list(range(n))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for p in pairs:
        parent[root(p.i)] = root(p.j)
    members: dict[int, list[int]] = {}
    for p in pairs:
        for k in (p.i, p.j):
            group = members.setdefault(root(k), [])
            if k not in group:
                group.append(k)
    return [sorted(g) for g in members.values()]


def whole_pixel_moves(positions: Sequence[float]) -> tuple[float, list[int]]:
    """(frame, moves) along one axis: the moves ``round(position - frame)`` that leave the least
    squared misregistration between the images, then move the fewest pixels in all, then keep
    the frame nearest the mean position (module docstring, step 4)."""
    p = np.asarray(positions, np.float64)
    mean = float(p.mean())
    steps = 200
    candidates = np.concatenate(
        [np.floor(p.min()) - 1.0 + np.arange((np.ceil(p.max()) - np.floor(p.min()) + 2) * steps)
         / steps, [mean]]
    )  # fmt: skip
    offsets = p[:, None] - candidates[None, :]
    moves = np.round(offsets)
    misfit = ((offsets - moves) ** 2).sum(axis=0)
    # The misfit repeats with every whole pixel the frame moves by: a frame two pixels off, its
    # misfit equal but for rounding, must not win over the one that moves nothing.
    least = misfit <= misfit.min() + MISFIT_TOLERANCE_PX2
    moved = np.where(least, np.abs(moves).sum(axis=0), np.inf)
    best = np.lexsort((np.abs(candidates - mean), moved))[0]
    return float(candidates[best]), [int(m) for m in moves[:, best]]


def network_positions(
    images: Sequence[FloatArray | None],
    valid: Sequence[BoolArray | None],
    params: CoregistrationParams,
) -> tuple[list[tuple[float, float] | None], list[PairShift], list[PairShift]]:
    """Where each registration image of a series (None: not seen) lies, from every reliable pair
    (module docstring, steps 2-3): the positions (rows, cols; None: no reliable pair placed
    it), the reliable pairs, and those kept by the adjustment (the others are blunders)."""
    n = len(images)
    present = [k for k in range(n) if images[k] is not None]
    if len(present) < 2:
        return [None] * n, [], []
    shape = next(im.shape for im in images if im is not None)
    taper = window("hann", shape)  # type: ignore[no-untyped-call]
    pairs = []
    for i, j in itertools.combinations(present, 2):
        a, b, va, vb = images[i], images[j], valid[i], valid[j]
        assert a is not None
        assert b is not None
        overlap = int((va & vb).sum()) if va is not None and vb is not None else 0
        found = pair_shift(a, b, overlap, params, taper)
        if found is not None:
            pairs.append(PairShift(i, j, found[0], found[1]))
    positions, kept = adjust_network(n, pairs, params.max_residual_px)
    return positions, pairs, kept


def place_images(
    images: Sequence[FloatArray | None],
    valid: Sequence[BoolArray | None],
    params: CoregistrationParams,
) -> list[Placement]:
    """The placement of each registration image of a series (None: not seen) against the
    series' common frame (module docstring, steps 2-5)."""
    positions, pairs, kept = network_positions(images, valid, params)
    return _placements(images, positions, pairs, kept, params)


def _placements(
    images: Sequence[FloatArray | None],
    positions: Sequence[tuple[float, float] | None],
    pairs: Sequence[PairShift],
    kept: Sequence[PairShift],
    params: CoregistrationParams,
) -> list[Placement]:
    """``place_images`` from the network's ``positions``, reliable ``pairs`` and those it
    ``kept`` (steps 4-5)."""
    n = len(images)
    placements = [Placement(None, (0, 0), 0) for _ in range(n)]
    placed = [k for k in range(n) if positions[k] is not None]
    if not placed:
        return placements
    moves: dict[int, list[int]] = {k: [0, 0] for k in placed}
    frame = [0.0, 0.0]
    for axis in (0, 1):
        along = [positions[k][axis] for k in placed]  # type: ignore[index]
        frame[axis], axis_moves = whole_pixel_moves(along)
        for k, p, m in zip(placed, along, axis_moves, strict=True):
            moves[k][axis] = m if abs(p - frame[axis]) >= params.min_shift_px else 0
    kept_moves = {k: (moves[k][0], moves[k][1]) for k in placed}
    for k in _blundered(pairs, kept):  # the false match may be either year's
        kept_moves[k] = (0, 0)
    for k in placed:
        back = {m: (-float(v[0]), -float(v[1])) for m, v in kept_moves.items()}
        if kept_moves[k] != (0, 0) and not _improves(k, images, back):
            logger.debug(
                "image %d: a move of %s px does not raise its correlation with the others; "
                "left in place", k, kept_moves[k],
            )  # fmt: skip
            kept_moves[k] = (0, 0)
    for k in placed:
        pos = positions[k]
        assert pos is not None
        placements[k] = Placement(
            (round(pos[0] - frame[0], 3), round(pos[1] - frame[1], 3)),
            kept_moves[k],
            sum(1 for p in kept if k in (p.i, p.j)),
        )
    return placements


def subpixel_shifts(
    images: Sequence[FloatArray | None],
    valid: Sequence[BoolArray | None],
    params: CoregistrationParams,
) -> list[tuple[float, float] | None]:
    """The sub-pixel shift (rows down, cols right) that brings each registration image of a
    series onto the others, or None where the image stays: each is first placed as for
    whole-pixel moves (:func:`place_images`), and an image that would be moved by whole pixels,
    or that would be left ``params.min_resample_px`` or more off the others along an axis, is
    shifted, the whole way, onto the mean of the images that would stay. "The others" are
    where most images would sit once moved (:func:`_consensus`), or the whole-pixel frame when
    no more than half of them sit together. An image in a pair dropped as a blunder stays, and
    so does one that does not correlate better with the others once moved (AROSICS's check,
    as for whole-pixel moves). A series in which every image would move (each a whole pixel
    off the ground in another direction) has none to resample onto and is left to the
    whole-pixel moves, as before."""
    n = len(images)
    out: list[tuple[float, float] | None] = [None] * n
    if params.min_resample_px is None:
        return out
    positions, pairs, kept = network_positions(images, valid, params)
    placements = _placements(images, positions, pairs, kept, params)
    left: dict[int, tuple[float, float]] = {}  # where each image sits once moved by whole pixels
    for k, placed in enumerate(placements):
        if placed.position is not None:
            left[k] = (placed.position[0] - placed.move[0], placed.position[1] - placed.move[1])
    centre = _consensus(left, params.min_resample_px)
    off = [
        k
        for k, r in left.items()
        if _apart(r, centre) >= params.min_resample_px or placements[k].move != (0, 0)
    ]
    on = [left[k] for k in left if k not in off]
    if not off or not on:
        return out
    cy, cx = (float(v) for v in np.mean(on, axis=0))
    applied = {k: (-float(placements[k].move[0]), -float(placements[k].move[1])) for k in left}
    for k in off:
        pos = placements[k].position
        assert pos is not None
        applied[k] = (round(cy - pos[0], 3) + 0.0, round(cx - pos[1], 3) + 0.0)
    blundered = _blundered(pairs, kept)
    for k in off:
        if k in blundered:
            continue
        if not _improves(k, images, applied):
            logger.debug("image %d: a shift of %s px does not raise its correlation with the "
                         "others; left in place", k, applied[k])  # fmt: skip
            continue
        out[k] = applied[k]
    return out


def _apart(a: tuple[float, float], b: tuple[float, float]) -> float:
    """How far apart two positions are along the axis where they are furthest apart."""
    return max(abs(a[0] - b[0]), abs(a[1] - b[1]))


def _consensus(left: Mapping[int, tuple[float, float]], within: float) -> tuple[float, float]:
    """Where most images sit once moved by whole pixels (``left``, against the whole-pixel
    frame): the mean of the largest set of images within ``within`` of one of them, when it
    holds more than half of them (ties: the set whose mean is nearest the frame); else the
    frame, (0, 0). After whole-pixel moves every image lies within half a pixel of the frame,
    so a series whole pixels apart (every year a whole pixel off the ground, none on it) has
    its consensus on the frame, and the frame's compromise between years that agree and one
    that does not is undone."""
    sets = []
    for k in sorted(left):
        members = [left[m] for m in sorted(left) if _apart(left[m], left[k]) < within]
        mean = (float(np.mean([p[0] for p in members])), float(np.mean([p[1] for p in members])))
        sets.append((-len(members), _apart(mean, (0.0, 0.0)), mean))
    if not sets:
        return (0.0, 0.0)
    size, _, mean = min(sets)
    return mean if -size * 2 > len(left) else (0.0, 0.0)


def _blundered(pairs: Sequence[PairShift], kept: Sequence[PairShift]) -> set[int]:
    """The images in a pair the network adjustment dropped as a blunder."""
    return {k for p in pairs if p not in kept for k in (p.i, p.j)}


def _improves(
    k: int, images: Sequence[FloatArray | None], shifts: Mapping[int, tuple[float, float]]
) -> bool:
    """Whether moving image ``k`` by ``shifts[k]`` (rows down, cols right; bilinear when not
    whole) raises its correlation with the per-pixel median of the other images, each moved
    by its own shift (none where it has none)."""
    others = []
    for m, im in enumerate(images):
        if m == k or im is None:
            continue
        moved = _moved(im, shifts.get(m, (0.0, 0.0)))
        others.append(np.where(moved != 0, moved, np.nan))
    if not others:
        return False
    with warnings.catch_warnings():  # pixels no other image saw: NaN, then 0
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        reference = np.nan_to_num(np.nanmedian(np.stack(others), axis=0), nan=0.0)
    image = images[k]
    assert image is not None
    before = image_correlation(reference, image)
    after = image_correlation(reference, _moved(image, shifts[k]))
    return bool(after > before)


def _moved(image: FloatArray, shift: tuple[float, float]) -> FloatArray:
    """A registration image moved by ``shift``: by whole pixels exactly when it is whole (NaN
    brought in), bilinear (:func:`resample`) otherwise."""
    dy, dx = shift
    if float(dy).is_integer() and float(dx).is_integer():
        return shift_array(image, (int(dy), int(dx)), np.nan)
    return np.asarray(resample(image, shift), np.float64)


def year_shifts(
    years: Sequence[SiteYear], params: CoregistrationParams
) -> list[tuple[float, float] | None]:
    """The sub-pixel shift (rows down, cols right) each of ``years`` (one site's, on one grid)
    is to be resampled by onto the others before it is classified (:func:`subpixel_shifts` of
    their composites' ``params.band``); None where a year stays."""
    images, valid = _registration_images(years, params)
    return subpixel_shifts(images, valid, params)


def coregister_years(years: Sequence[SiteYear], params: CoregistrationParams) -> list[SiteYear]:
    """``years`` (one site's, on one grid) on the site's common frame: each year with a
    composite placed by :func:`place_images` on its ``params.band``, its ``registration``
    recorded, and every per-pixel array of a year that moves moved back by whole pixels
    (:func:`moved_site_year`). A year without a composite, or that no reliable pair placed, is
    returned as it is. A year already resampled onto the frame (its ``registration``'s
    ``resampled_px``, :func:`year_shifts`) is recorded as lying where it lay before that."""
    images, valid = _registration_images(years, params)
    out = list(years)
    for k, (sy, placed) in enumerate(zip(years, place_images(images, valid, params), strict=True)):
        if placed.position is None:
            continue
        (rows, cols), (move_rows, move_cols) = placed.position, placed.move
        east, north = sy.registration.resampled_px if sy.registration is not None else (0.0, 0.0)
        registration = Registration(
            shift_px=(round(cols + east, 3) + 0.0, round(-rows + north, 3) + 0.0),
            moved_px=(move_cols, -move_rows),
            pairs=placed.pairs,
            resampled_px=(east, north),
        )
        if registration.moved_px != (0, 0):
            logger.info(
                "%s %d: imagery %.2f px east, %.2f px north of the other years; moved back by "
                "%d px east, %d px north",
                sy.site_id, sy.year, *registration.shift_px, *registration.moved_px,
            )  # fmt: skip
            out[k] = replace(
                moved_site_year(sy, (-move_rows, -move_cols)), registration=registration
            )
        else:
            out[k] = replace(sy, registration=registration)
    return out


def _registration_images(
    years: Sequence[SiteYear], params: CoregistrationParams
) -> tuple[list[FloatArray | None], list[BoolArray | None]]:
    """Each year's registration image of its composite's ``params.band`` (None: no composite,
    or no texture) and the pixels it is valid on."""
    images: list[FloatArray | None] = []
    valid: list[BoolArray | None] = []
    for sy in years:
        image = None
        if sy.composite is not None:
            image = registration_image(sy.composite.reflectance[params.band], sy.valid)
        images.append(image)
        valid.append(sy.valid if image is not None else None)
    return images, valid


def moved_site_year(sy: SiteYear, move: tuple[int, int]) -> SiteYear:
    """``sy`` with every per-pixel array moved by ``move`` whole pixels (rows down, cols right):
    masks, season evidence, composite, coal frequency and response to the sun. Pixels brought
    in from outside the grid are not valid (no footprint, no coal, NaN reflectance, no clear
    look). The composite, coal frequency and sun response are moved when read
    (:class:`MovedComposite`), so a stored year's arrays stay on disk until used."""

    def mask(a: BoolArray | None) -> BoolArray | None:
        return None if a is None else shift_array(a, move, False)

    evidence = sy.evidence
    if evidence is not None:
        evidence = SeasonEvidence(
            vegetated=shift_array(evidence.vegetated, move, False),
            field=shift_array(evidence.field, move, False),
            ambiguous=shift_array(evidence.ambiguous, move, False),
            unconfirmed=shift_array(evidence.unconfirmed, move, False),
            coal_on_green=mask(evidence.coal_on_green),
        )
    return replace(
        sy,
        composite=None if sy.composite is None else MovedComposite(sy.composite, move),
        coal=None if sy.coal is None else MovedCoalFrequency(sy.coal, move),
        footprint=shift_array(sy.footprint, move, False),
        coal_mask=shift_array(sy.coal_mask, move, False),
        valid=shift_array(sy.valid, move, False),
        evidence=evidence,
        redated=mask(sy.redated),
        unseen_fields=mask(sy.unseen_fields),
        exposed_bed=mask(sy.exposed_bed),
        terrain_shadow=mask(sy.terrain_shadow),
        terrain_flat=mask(sy.terrain_flat),
        sun=None if sy.sun is None else MovedSunResponse(sy.sun, move),
    )


class MovedComposite(Composite):
    """A ``Composite`` moved by whole pixels (:func:`shift_array`), moved on each read."""

    _base: Composite
    _move: tuple[int, int]

    def __init__(self, base: Composite, move: tuple[int, int]) -> None:
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_move", move)

    @property
    def reflectance(self) -> NDArray[np.float32]:
        return shift_array(self._base.reflectance, self._move, np.nan)

    @property
    def clear_count(self) -> NDArray[np.int16]:
        return shift_array(self._base.clear_count, self._move, 0)

    @property
    def mad(self) -> NDArray[np.float32]:
        return shift_array(self._base.mad, self._move, np.nan)

    def __repr__(self) -> str:
        return f"MovedComposite({self._base!r}, {self._move})"


class MovedSunResponse(SunResponse):
    """A ``SunResponse`` moved by whole pixels (:func:`shift_array`), moved on each read:
    ground brought in from outside the grid has no look."""

    _base: SunResponse
    _move: tuple[int, int]

    def __init__(self, base: SunResponse, move: tuple[int, int]) -> None:
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_move", move)

    @property
    def slope(self) -> NDArray[np.float32]:
        return shift_array(self._base.slope, self._move, np.nan)

    @property
    def trend(self) -> NDArray[np.float32]:
        return shift_array(self._base.trend, self._move, np.nan)

    @property
    def span(self) -> NDArray[np.float32]:
        return shift_array(self._base.span, self._move, np.nan)

    @property
    def looks(self) -> NDArray[np.int16]:
        return shift_array(self._base.looks, self._move, 0)

    @property
    def score(self) -> NDArray[np.float32]:
        return shift_array(self._base.score, self._move, np.nan)

    @property
    def variance(self) -> NDArray[np.float32]:
        return shift_array(self._base.variance, self._move, np.nan)

    def __repr__(self) -> str:
        return f"MovedSunResponse({self._base!r}, {self._move})"


class MovedCoalFrequency(CoalFrequency):
    """A ``CoalFrequency`` moved by whole pixels (:func:`shift_array`), moved on each read."""

    _base: CoalFrequency
    _move: tuple[int, int]

    def __init__(self, base: CoalFrequency, move: tuple[int, int]) -> None:
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_move", move)

    @property
    def frequency(self) -> NDArray[np.float32]:
        return shift_array(self._base.frequency, self._move, np.nan)

    @property
    def flagged(self) -> NDArray[np.int16]:
        return shift_array(self._base.flagged, self._move, 0)

    @property
    def clear(self) -> NDArray[np.int16]:
        return shift_array(self._base.clear, self._move, 0)

    @property
    def refuted(self) -> NDArray[np.int16] | None:
        base = self._base.refuted
        return None if base is None else shift_array(base, self._move, 0)

    def __repr__(self) -> str:
        return f"MovedCoalFrequency({self._base!r}, {self._move})"
