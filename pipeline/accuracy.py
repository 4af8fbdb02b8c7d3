"""Accuracy: a map against truth, and area estimates from a stratified reference sample.

Pure stage: arrays and plain parameters in, frozen dataclasses out.

- :func:`binary_scores` compares a predicted mask with a true one pixel by pixel (benchmarks,
  synthetic scenarios with known truth).
- :func:`olofsson` is the good-practice estimator of Olofsson et al. 2014 (RSE 148:42): the map is
  the stratification, a reference sample is drawn per stratum, and areas come from the sample
  weighted by mapped area, with 95% confidence intervals. It reproduces the paper's Tables 8-9
  (see DOMAIN.md). ``*_ci`` fields are 95% half-widths (the "+/-"), as everywhere in sitewatch.
- The sample itself: :func:`allocate_sample` (area-proportional with a minimum per stratum, the
  paper's recommendation), :func:`stratified_sample` (seeded, blind order),
  :func:`tabulate_sample` (the analyst's labels into counts) and :func:`area_estimate` (areas
  per reference class, with the accuracies and clipped intervals when strata are map classes).

Undefined ratios are NaN, never an exception or a warning, except where a value is defined by
convention below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.errors import InsufficientDataError
from pipeline.trends import Z95

__all__ = [
    "DEFAULT_MIN_PER_STRATUM",
    "AreaEstimate",
    "BinaryScores",
    "Olofsson",
    "SamplePoints",
    "allocate_sample",
    "area_error",
    "area_estimate",
    "binary_scores",
    "olofsson",
    "stratified_sample",
    "stratum_pixel_counts",
    "tabulate_sample",
]


def _ratio(num: float, den: float) -> float:
    """num / den, NaN when den is 0 (no warning)."""
    return num / den if den != 0 else math.nan


@dataclass(frozen=True)
class BinaryScores:
    """Pixel counts and scores of a predicted mask against truth, over the valid pixels.

    Conventions for empty cases (``n = tp + fp + fn + tn`` pixels compared):

    - n = 0: every score is NaN (nothing was evaluated).
    - ``iou`` and ``f1`` (= Dice, 2tp / (2tp + fp + fn)) are 1.0 when both masks are empty: the
      prediction is exactly right. F1 is computed from counts, so it is 0 (not NaN) when truth has
      positives and nothing was predicted.
    - ``precision`` is NaN with no predicted positives; ``recall`` is NaN with no true positives
      in truth. Neither is defined, and 1.0 would flatter an empty prediction.
    - ``kappa`` (Cohen) is NaN when chance agreement is 1 (both masks constant and equal): there
      is no disagreement possible to correct for.
    """

    tp: int
    fp: int
    fn: int
    tn: int
    iou: float
    precision: float
    recall: float
    f1: float
    kappa: float
    overall: float

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn


def _bool2d(arr: ArrayLike, name: str) -> NDArray[np.bool_]:
    out = np.asarray(arr)
    if out.dtype != np.bool_:
        raise ValueError(f"{name} must be a boolean array, got dtype {out.dtype}")
    return out


def binary_scores(
    pred: NDArray[np.bool_],
    truth: NDArray[np.bool_],
    valid: NDArray[np.bool_] | None = None,
) -> BinaryScores:
    """Confusion counts and IoU, precision, recall, F1, Cohen's kappa and overall accuracy.

    Only pixels where ``valid`` is True are compared (all pixels when ``valid`` is None): pass the
    clear-observation mask so that nodata is not scored as a correct negative.
    """
    p = _bool2d(pred, "pred")
    t = _bool2d(truth, "truth")
    if p.shape != t.shape:
        raise ValueError(f"pred and truth must have the same shape, got {p.shape} and {t.shape}")
    if valid is not None:
        v = _bool2d(valid, "valid")
        if v.shape != p.shape:
            raise ValueError(f"valid must have the shape of pred {p.shape}, got {v.shape}")
        p, t = p[v], t[v]
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    tn = int(np.count_nonzero(~p & ~t))
    n = tp + fp + fn + tn
    if n == 0:
        nan = math.nan
        return BinaryScores(tp, fp, fn, tn, nan, nan, nan, nan, nan, nan)

    union = tp + fp + fn
    iou = tp / union if union else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if union else 1.0
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    overall = (tp + tn) / n
    # Chance agreement from the marginals, in floats to avoid integer overflow on big rasters.
    pe = (float(tp + fp) * float(tp + fn) + float(fn + tn) * float(fp + tn)) / (float(n) ** 2)
    kappa = (overall - pe) / (1.0 - pe) if pe < 1.0 else math.nan
    return BinaryScores(tp, fp, fn, tn, iou, precision, recall, f1, kappa, overall)


def area_error(pred_area: float, true_area: float) -> float:
    """Relative area error (pred - true) / true: +0.2 means 20% over-estimated.

    With ``true_area == 0`` it is 0.0 when ``pred_area`` is 0 too (exactly right) and NaN
    otherwise (no relative scale: report the absolute error pred - true instead).
    NaN inputs give NaN; negative areas are an error.
    """
    if math.isnan(pred_area) or math.isnan(true_area):
        return math.nan
    if pred_area < 0 or true_area < 0:
        raise ValueError(f"areas must be >= 0, got pred_area={pred_area}, true_area={true_area}")
    if true_area == 0:
        return 0.0 if pred_area == 0 else math.nan
    return (pred_area - true_area) / true_area


@dataclass(frozen=True)
class Olofsson:
    """Stratified estimates per class, in the class order of the confusion matrix.

    Tuples (immutable) of floats; ``np.asarray`` them for arithmetic. ``*_ci`` are half-widths
    (z * SE, 95% by default). ``area``/``area_ci`` are in the units of ``pixel_area`` (0.09 for
    30 m pixels in ha, 0.01 for 10 m). ``proportions`` are the estimated area proportions p.j of
    each reference class (they sum to 1) and ``proportions_se`` their standard errors.
    NaN marks what the sample cannot estimate (e.g. producer's accuracy of a class estimated
    absent, user's accuracy of a stratum without samples).
    """

    users: tuple[float, ...]
    users_ci: tuple[float, ...]
    producers: tuple[float, ...]
    producers_ci: tuple[float, ...]
    overall: float
    overall_ci: float
    area: tuple[float, ...]
    area_ci: tuple[float, ...]
    proportions: tuple[float, ...]
    proportions_se: tuple[float, ...]


def _floats(arr: NDArray[np.float64]) -> tuple[float, ...]:
    return tuple(float(v) for v in arr)


def olofsson(
    confusion: ArrayLike,
    mapped_area_px: ArrayLike,
    pixel_area: float = 1.0,
    z: float = Z95,
) -> Olofsson:
    """Olofsson et al. 2014 stratified estimators of accuracy and area.

    ``confusion[i, j]`` counts sample units mapped as class i (the stratum) with reference class
    j; ``mapped_area_px[i]`` is the mapped area of class i in pixels (N_i.). With weights
    W_i = N_i. / N, row totals n_i. and p_ij = W_i n_ij / n_i.:

    - user's U_i = n_ii / n_i., Var = U_i (1 - U_i) / (n_i. - 1);
    - overall O = sum_j p_jj, Var = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1);
    - proportion p.j = sum_i p_ij, SE = sqrt(sum_i W_i^2 (n_ij/n_i.)(1 - n_ij/n_i.) / (n_i. - 1)),
      area_j = N p.j * pixel_area, CI = z N SE * pixel_area;
    - producer's P_j = p_jj / p.j, with Eq. 7 of the paper: Var = [N_j.^2 (1 - P_j)^2 U_j
      (1 - U_j) / (n_j. - 1) + P_j^2 sum_{i != j} N_i.^2 (n_ij/n_i.)(1 - n_ij/n_i.) / (n_i. - 1)]
      / N.j^2, where N.j = sum_i N_i. n_ij / n_i. is the estimated reference total of class j.

    Every stratum with mapped area needs at least 2 sample units (the variances divide by
    n_i. - 1); strata with no mapped area get weight 0 and may have no sample.
    """
    counts = np.asarray(confusion, dtype=np.float64)
    mapped = np.asarray(mapped_area_px, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"confusion must be a square, non-empty 2-D array, got {counts.shape}")
    k = counts.shape[0]
    if mapped.shape != (k,):
        raise ValueError(
            f"mapped_area_px must have one entry per class ({k}), got shape {mapped.shape}"
        )
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError("confusion counts must be finite and >= 0")
    if not np.isfinite(mapped).all() or (mapped < 0).any():
        raise ValueError(f"mapped_area_px must be finite and >= 0, got {mapped.tolist()}")
    if not (math.isfinite(pixel_area) and pixel_area > 0):
        raise ValueError(f"pixel_area must be a positive number, got {pixel_area}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a positive number, got {z}")
    total = float(mapped.sum())
    if total <= 0:
        raise ValueError("mapped_area_px must sum to more than 0")

    n_row = counts.sum(axis=1)
    short = np.flatnonzero((mapped > 0) & (n_row < 2)).tolist()
    if short:
        raise InsufficientDataError(
            f"strata {short} have mapped area but fewer than 2 reference samples "
            f"(counts {n_row[short].tolist()}); variances need n_i. >= 2"
        )

    weights = mapped / total
    sampled = n_row > 0
    varied = n_row > 1
    # Row proportions n_ij / n_i. (0 for unsampled rows, which all have weight 0).
    row_p = np.zeros_like(counts)
    row_p[sampled] = counts[sampled] / n_row[sampled, np.newaxis]
    # Per-cell Bernoulli variance term (n_ij/n_i.)(1 - n_ij/n_i.)/(n_i. - 1), 0 where weight is 0.
    cell_var = np.zeros_like(counts)
    cell_var[varied] = row_p[varied] * (1.0 - row_p[varied]) / (n_row[varied, np.newaxis] - 1.0)

    p_ij = weights[:, np.newaxis] * row_p
    diag = np.diag(row_p)
    diag_var = np.diag(cell_var)

    users = np.where(sampled, diag, np.nan)
    users_ci = np.where(varied, z * np.sqrt(diag_var), np.nan)

    overall = float(np.trace(p_ij))
    overall_ci = z * math.sqrt(float(np.sum(weights**2 * diag_var)))

    proportions = p_ij.sum(axis=0)
    proportions_se = np.sqrt(np.sum(weights[:, np.newaxis] ** 2 * cell_var, axis=0))
    area = proportions * total * pixel_area
    area_ci = z * proportions_se * total * pixel_area

    ref_total = (mapped[:, np.newaxis] * row_p).sum(axis=0)  # N.j
    producers = np.full(k, np.nan)
    producers_ci = np.full(k, np.nan)
    for j in range(k):
        if proportions[j] <= 0:
            continue
        pa = float(p_ij[j, j] / proportions[j])
        others = np.arange(k) != j
        term1 = mapped[j] ** 2 * (1.0 - pa) ** 2 * diag_var[j]
        term2 = pa**2 * float(np.sum(mapped[others] ** 2 * cell_var[others, j]))
        producers[j] = pa
        producers_ci[j] = z * math.sqrt((term1 + term2) / ref_total[j] ** 2)

    return Olofsson(
        users=_floats(users),
        users_ci=_floats(users_ci),
        producers=_floats(producers),
        producers_ci=_floats(producers_ci),
        overall=overall,
        overall_ci=overall_ci,
        area=_floats(area),
        area_ci=_floats(area_ci),
        proportions=_floats(proportions),
        proportions_se=_floats(proportions_se),
    )


# --- Designing the reference sample and estimating areas from it (Olofsson et al. 2014) --------

DEFAULT_MIN_PER_STRATUM = 50
"""Olofsson et al. 2014 (section 5.1.2) recommend 50-100 sample units for each rare (change)
class, the rest of the sample allocated in proportion to area."""


def stratum_pixel_counts(strata: ArrayLike, n_strata: int | None = None) -> tuple[int, ...]:
    """Pixels per stratum label 0..n_strata-1 (default: up to the largest label); negative
    labels are outside the sampling frame and not counted."""
    arr = _strata_2d(strata)
    labels = arr[arr >= 0]
    size = int(labels.max()) + 1 if labels.size else 0
    if n_strata is not None:
        if n_strata < size:
            raise ValueError(f"strata has label {size - 1} but n_strata is {n_strata}")
        size = n_strata
    return tuple(int(c) for c in np.bincount(labels, minlength=size))


def _strata_2d(strata: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(strata)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"strata must be a 2-D integer array, got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64, copy=False)


def allocate_sample(
    stratum_pixels: Sequence[int], n_total: int, min_per_stratum: int = DEFAULT_MIN_PER_STRATUM
) -> tuple[int, ...]:
    """Sample units per stratum: proportional to area, but at least ``min_per_stratum`` in every
    stratum that has pixels (all of them when it has fewer) and never more than its pixels.

    Strata raised to the minimum (or capped at their size) are fixed and the rest of
    ``n_total`` is shared in proportion to the area of the others, until no share falls below
    the minimum; shares are rounded by largest remainder (ties to the earlier stratum), so the
    allocation sums to ``n_total`` exactly. For the Olofsson et al. example (strata of 200,000,
    150,000, 3,200,000 and 6,450,000 pixels, n = 640, minimum 75) this gives 75, 75, 162, 328
    (the paper used 75, 75, 165, 325).
    """
    sizes = np.asarray(stratum_pixels, dtype=np.int64)
    if sizes.ndim != 1 or (sizes < 0).any():
        raise ValueError(f"stratum_pixels must be counts >= 0, got {list(stratum_pixels)}")
    if min_per_stratum < 0:
        raise ValueError(f"min_per_stratum must be >= 0, got {min_per_stratum}")
    total_px = int(sizes.sum())
    if not 0 < n_total <= total_px:
        raise ValueError(f"n_total must be in 1..{total_px} (pixels in the frame), got {n_total}")
    floor = np.minimum(sizes, min_per_stratum)
    if int(floor.sum()) > n_total:
        raise ValueError(
            f"n_total {n_total} is below the minimum allocation {int(floor.sum())} "
            f"({min_per_stratum} per stratum): raise n_total or lower min_per_stratum"
        )
    fixed = np.zeros(sizes.size, dtype=np.int64)
    is_fixed = sizes == 0
    while True:
        free = ~is_fixed
        remaining = n_total - int(fixed[is_fixed].sum())
        share = np.zeros(sizes.size)
        if free.any():
            share[free] = remaining * sizes[free] / float(sizes[free].sum())
        low = free & (share < floor)
        high = free & (share > sizes)
        if not (low.any() or high.any()):
            break
        fixed[low] = floor[low]
        fixed[high] = sizes[high]
        is_fixed |= low | high
    out = fixed.copy()
    base = np.floor(share[free]).astype(np.int64)
    out[free] = base
    left = n_total - int(out.sum())
    if left:
        frac = share[free] - base
        free_idx = np.flatnonzero(free)
        order = free_idx[np.argsort(-frac, kind="stable")]
        out[order[:left]] += 1
    return tuple(int(v) for v in out)


@dataclass(frozen=True)
class SamplePoints:
    """A stratified random sample of pixels: ``rows``/``cols`` (array indices) and the
    ``strata`` label of each point, in a seeded random order mixing the strata (hand them to
    the reference interpreter in this order and without the stratum: labelling must be blind to
    the map). ``stratum_pixels`` and ``n_per_stratum`` are per label 0..H-1."""

    rows: tuple[int, ...]
    cols: tuple[int, ...]
    strata: tuple[int, ...]
    stratum_pixels: tuple[int, ...]
    n_per_stratum: tuple[int, ...]
    seed: int


def stratified_sample(
    strata: ArrayLike,
    allocation: int | Sequence[int],
    seed: int,
    min_per_stratum: int = DEFAULT_MIN_PER_STRATUM,
) -> SamplePoints:
    """Draw a stratified random sample of pixels without replacement.

    ``strata``: 2-D integer labels 0..H-1 (the map classes, e.g. 0 stable, 1 gain, 2 loss);
    negative labels are outside the frame (no data, outside the site). ``allocation``: the
    total sample size, allocated by :func:`allocate_sample` (area-proportional with at least
    ``min_per_stratum`` per stratum), or the sample size of each stratum. Within a stratum
    every pixel has the same chance; ``default_rng(seed)`` makes the draw reproducible.

    Change the map missed (omission) sits in the large stable stratum, where a few sample units
    carry it and the normal interval of :func:`area_estimate` under-covers (about 87% instead of
    95% in the tests). A buffer stratum of stable pixels around the mapped change (Olofsson et
    al. 2014) fixes that: give it its own label; :func:`area_estimate` accepts strata that are
    not map classes.
    """
    arr = _strata_2d(strata)
    pixels = stratum_pixel_counts(arr)
    if isinstance(allocation, int | np.integer):
        n_h = allocate_sample(pixels, int(allocation), min_per_stratum)
    else:
        n_h = tuple(int(v) for v in allocation)
        if len(n_h) != len(pixels):
            raise ValueError(
                f"allocation has {len(n_h)} entries but strata has {len(pixels)} labels"
            )
        too_many = [
            h for h, (n, size) in enumerate(zip(n_h, pixels, strict=True)) if not 0 <= n <= size
        ]
        if too_many:
            raise ValueError(
                f"strata {too_many}: allocation must be in 0..pixels of the stratum "
                f"(pixels {pixels}, asked {n_h})"
            )
    rng = np.random.default_rng(seed)
    flat = arr.ravel()
    picks: list[NDArray[np.int64]] = []
    labels: list[NDArray[np.int64]] = []
    for h, n in enumerate(n_h):
        if n == 0:
            continue
        members = np.flatnonzero(flat == h)
        picks.append(np.sort(rng.choice(members, size=n, replace=False)))
        labels.append(np.full(n, h, dtype=np.int64))
    index = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    label = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    shuffle = rng.permutation(index.size)
    rows, cols = np.unravel_index(index[shuffle], arr.shape)
    return SamplePoints(
        rows=tuple(int(r) for r in rows),
        cols=tuple(int(c) for c in cols),
        strata=tuple(int(s) for s in label[shuffle]),
        stratum_pixels=pixels,
        n_per_stratum=n_h,
        seed=seed,
    )


def tabulate_sample(
    strata: Sequence[int], reference: Sequence[int], n_strata: int, n_classes: int
) -> NDArray[np.int64]:
    """Counts[h, k] of sample units in stratum h with reference label k (labels 0-based)."""
    s = np.asarray(strata, dtype=np.int64)
    r = np.asarray(reference, dtype=np.int64)
    if s.shape != r.shape or s.ndim != 1:
        raise ValueError(
            f"strata and reference must be 1-D of equal length, got {s.shape}, {r.shape}"
        )
    if s.size and (s.min() < 0 or s.max() >= n_strata):
        raise ValueError(
            f"stratum labels must be in 0..{n_strata - 1}, got {sorted(set(s.tolist()))}"
        )
    if r.size and (r.min() < 0 or r.max() >= n_classes):
        raise ValueError(
            f"reference labels must be in 0..{n_classes - 1}, got {sorted(set(r.tolist()))}"
        )
    counts = np.zeros((n_strata, n_classes), dtype=np.int64)
    np.add.at(counts, (s, r), 1)
    return counts


@dataclass(frozen=True)
class AreaEstimate:
    """Stratified area estimates per reference class, in ha, with 95% half-widths.

    ``area_ha``/``area_ci_ha``, ``proportions``/``proportions_se`` per reference class;
    ``stratum_area_ha`` and ``n_per_stratum`` per stratum. When the strata are the map classes
    (square counts), the accuracies of :func:`olofsson` too, with their intervals clipped to
    [0, 1] in ``*_low``/``*_high``; otherwise (e.g. an extra buffer stratum) they are None:
    per-class map accuracy then needs the map label of every sample unit, not just its stratum.
    """

    area_ha: tuple[float, ...]
    area_ci_ha: tuple[float, ...]
    proportions: tuple[float, ...]
    proportions_se: tuple[float, ...]
    stratum_area_ha: tuple[float, ...]
    n_per_stratum: tuple[int, ...]
    users: tuple[float, ...] | None = None
    users_ci: tuple[float, ...] | None = None
    users_low: tuple[float, ...] | None = None
    users_high: tuple[float, ...] | None = None
    producers: tuple[float, ...] | None = None
    producers_ci: tuple[float, ...] | None = None
    producers_low: tuple[float, ...] | None = None
    producers_high: tuple[float, ...] | None = None
    overall: float | None = None
    overall_ci: float | None = None


def _clipped(values: tuple[float, ...], half: tuple[float, ...], sign: float) -> tuple[float, ...]:
    return tuple(
        math.nan if math.isnan(v) or math.isnan(h) else min(1.0, max(0.0, v + sign * h))
        for v, h in zip(values, half, strict=True)
    )


def area_estimate(
    counts: ArrayLike,
    stratum_pixels: ArrayLike,
    pixel_area_ha: float,
    z: float = Z95,
) -> AreaEstimate:
    """Areas of each reference class from a stratified sample (Olofsson et al. 2014, Eqs. 9-11),
    as :func:`olofsson` computes them, for H strata x K reference classes.

    ``counts[h, k]``: sample units of stratum h labelled k by the reference interpreter
    (:func:`tabulate_sample`); ``stratum_pixels[h]``: pixels of stratum h; ``pixel_area_ha``:
    0.01 for 10 m pixels, 0.09 for 30 m. Every stratum with pixels needs at least 2 sample
    units. With H = K (strata = map classes) this is :func:`olofsson` plus clipped intervals,
    and reproduces the paper's Tables 8-9 (DOMAIN.md).
    """
    c = np.asarray(counts, dtype=np.float64)
    mapped = np.asarray(stratum_pixels, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise ValueError(f"counts must be a non-empty 2-D array (strata x classes), got {c.shape}")
    if mapped.shape != (c.shape[0],):
        raise ValueError(
            f"stratum_pixels must have one entry per stratum ({c.shape[0]}), got {mapped.shape}"
        )
    n_h = tuple(int(v) for v in c.sum(axis=1))
    stratum_area = _floats(mapped * pixel_area_ha)
    if c.shape[0] == c.shape[1]:
        res = olofsson(c, mapped, pixel_area=pixel_area_ha, z=z)
        return AreaEstimate(
            area_ha=res.area,
            area_ci_ha=res.area_ci,
            proportions=res.proportions,
            proportions_se=res.proportions_se,
            stratum_area_ha=stratum_area,
            n_per_stratum=n_h,
            users=res.users,
            users_ci=res.users_ci,
            users_low=_clipped(res.users, res.users_ci, -1.0),
            users_high=_clipped(res.users, res.users_ci, 1.0),
            producers=res.producers,
            producers_ci=res.producers_ci,
            producers_low=_clipped(res.producers, res.producers_ci, -1.0),
            producers_high=_clipped(res.producers, res.producers_ci, 1.0),
            overall=res.overall,
            overall_ci=res.overall_ci,
        )
    # Strata are not the classes: the same estimator, padded square so that olofsson checks the
    # inputs and computes the proportions (accuracies of the padding are meaningless and dropped).
    h, k = c.shape
    size = max(h, k)
    square = np.zeros((size, size))
    square[:h, :k] = c
    padded = np.zeros(size)
    padded[:h] = mapped
    res = olofsson(square, padded, pixel_area=pixel_area_ha, z=z)
    return AreaEstimate(
        area_ha=res.area[:k],
        area_ci_ha=res.area_ci[:k],
        proportions=res.proportions[:k],
        proportions_se=res.proportions_se[:k],
        stratum_area_ha=stratum_area,
        n_per_stratum=n_h,
    )
