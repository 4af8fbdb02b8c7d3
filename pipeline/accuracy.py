"""Accuracy: a map against truth, and area estimates from a stratified reference sample.

Pure stage: arrays and plain parameters in, frozen dataclasses out.

- :func:`binary_scores` compares a predicted mask with a true one pixel by pixel (benchmarks,
  synthetic scenarios with known truth).
- :func:`olofsson` is the good-practice estimator of Olofsson et al. 2014 (RSE 148:42): the map is
  the stratification, a reference sample is drawn per stratum, and areas come from the sample
  weighted by mapped area, with 95% confidence intervals. It reproduces the paper's Tables 8-9
  (see DOMAIN.md). ``*_ci`` fields are 95% half-widths (the "+/-"), as everywhere in sitewatch.

Undefined ratios are NaN, never an exception or a warning, except where a value is defined by
convention below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.errors import InsufficientDataError
from pipeline.trends import Z95

__all__ = [
    "BinaryScores",
    "Olofsson",
    "area_error",
    "binary_scores",
    "olofsson",
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
