"""Tests for pipeline.accuracy: pixel scores against truth, and Olofsson et al. 2014 estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline.accuracy import (
    Olofsson,
    allocate_sample,
    area_error,
    area_estimate,
    binary_scores,
    olofsson,
    stratified_sample,
    stratum_pixel_counts,
    tabulate_sample,
)
from pipeline.errors import InsufficientDataError

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)

# --- binary_scores -----------------------------------------------------------------------------


def test_binary_scores_known_answer() -> None:
    pred = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    truth = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], dtype=bool)
    res = binary_scores(pred, truth)
    assert (res.tp, res.fp, res.fn, res.tn) == (2, 1, 1, 4)
    assert res.n == 8
    assert res.iou == pytest.approx(2 / 4)
    assert res.precision == pytest.approx(2 / 3)
    assert res.recall == pytest.approx(2 / 3)
    assert res.f1 == pytest.approx(2 / 3)
    assert res.overall == pytest.approx(6 / 8)
    # po = 0.75, pe = (3*3 + 5*5) / 64
    pe = 34 / 64
    assert res.kappa == pytest.approx((0.75 - pe) / (1 - pe))


def test_binary_scores_valid_mask_excludes_pixels() -> None:
    pred = np.array([True, True, False, False])
    truth = np.array([True, False, False, True])
    valid = np.array([True, False, True, False])
    res = binary_scores(pred, truth, valid)
    assert (res.tp, res.fp, res.fn, res.tn) == (1, 0, 0, 1)
    assert res.kappa == 1.0


def test_binary_scores_both_empty() -> None:
    empty = np.zeros((3, 3), dtype=bool)
    res = binary_scores(empty, empty)
    assert res.iou == 1.0
    assert res.f1 == 1.0
    assert res.overall == 1.0
    assert math.isnan(res.precision)
    assert math.isnan(res.recall)
    assert math.isnan(res.kappa)


def test_binary_scores_nothing_predicted() -> None:
    truth = np.zeros((3, 3), dtype=bool)
    truth[1, 1] = True
    res = binary_scores(np.zeros_like(truth), truth)
    assert res.iou == 0.0
    assert res.f1 == 0.0
    assert res.recall == 0.0
    assert math.isnan(res.precision)
    assert res.kappa == 0.0


def test_binary_scores_nothing_valid() -> None:
    ones = np.ones((2, 2), dtype=bool)
    res = binary_scores(ones, ones, np.zeros_like(ones))
    assert res.n == 0
    assert all(math.isnan(v) for v in (res.iou, res.precision, res.f1, res.kappa, res.overall))


@pytest.mark.parametrize(
    ("pred", "truth", "valid", "match"),
    [
        (np.ones((2, 2), bool), np.ones((2, 3), bool), None, "same shape"),
        (np.ones((2, 2)), np.ones((2, 2), bool), None, "pred must be a boolean"),
        (np.ones((2, 2), bool), np.ones((2, 2), bool), np.ones((3, 2), bool), "valid must"),
    ],
)
def test_binary_scores_rejects(
    pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        binary_scores(pred, truth, valid)


pairs = st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
    lambda s: st.tuples(arrays(np.bool_, s), arrays(np.bool_, s), arrays(np.bool_, s))
)


@SETTINGS
@given(pairs)
def test_binary_scores_invariants(masks: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    pred, truth, valid = masks
    res = binary_scores(pred, truth, valid)
    assert res.n == int(valid.sum())
    for name in ("iou", "precision", "recall", "f1", "overall"):
        value = getattr(res, name)
        assert math.isnan(value) or 0.0 <= value <= 1.0, name
    assert math.isnan(res.kappa) or -1.0 <= res.kappa <= 1.0 + 1e-12
    swapped = binary_scores(truth, pred, valid)
    assert (swapped.fp, swapped.fn) == (res.fn, res.fp)
    assert swapped.iou == res.iou or (math.isnan(swapped.iou) and math.isnan(res.iou))
    if res.n and not math.isnan(res.iou):
        # Dice and Jaccard are tied: F1 = 2 IoU / (1 + IoU).
        assert res.f1 == pytest.approx(2 * res.iou / (1 + res.iou))


# --- area_error --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "true", "expected"),
    [(12.0, 10.0, 0.2), (8.0, 10.0, -0.2), (0.0, 10.0, -1.0), (0.0, 0.0, 0.0)],
)
def test_area_error(pred: float, true: float, expected: float) -> None:
    assert area_error(pred, true) == pytest.approx(expected)


def test_area_error_undefined_cases() -> None:
    assert math.isnan(area_error(1.0, 0.0))
    assert math.isnan(area_error(math.nan, 1.0))
    with pytest.raises(ValueError, match="areas must be >= 0"):
        area_error(-1.0, 2.0)


# --- Olofsson et al. 2014 ----------------------------------------------------------------------

# DOMAIN.md, "Known-answer case": the paper's Tables 8-9.
CONFUSION = np.array(
    [
        [66, 0, 5, 4],
        [0, 55, 8, 12],
        [1, 0, 153, 11],
        [2, 1, 9, 313],
    ]
)
MAPPED_PX = np.array([200_000, 150_000, 3_200_000, 6_450_000])
PIXEL_HA = 0.09  # 30 m


@pytest.fixture(scope="module")
def paper() -> Olofsson:
    return olofsson(CONFUSION, MAPPED_PX, pixel_area=PIXEL_HA, z=1.959964)


def _close(actual: tuple[float, ...], expected: list[float], places: list[int]) -> None:
    for a, e, d in zip(actual, expected, places, strict=True):
        assert a == pytest.approx(e, abs=0.5 * 10.0**-d), (actual, expected)


def test_olofsson_users(paper: Olofsson) -> None:
    _close(paper.users, [0.8800, 0.7333, 0.9273, 0.9631], [4] * 4)
    _close(paper.users_ci, [0.07404, 0.10076, 0.03974, 0.02053], [5] * 4)


def test_olofsson_producers(paper: Olofsson) -> None:
    _close(paper.producers, [0.74866, 0.84716, 0.93451, 0.96161], [5] * 4)
    _close(paper.producers_ci, [0.21331, 0.25440, 0.03432, 0.01836], [5] * 4)


def test_olofsson_overall(paper: Olofsson) -> None:
    assert paper.overall == pytest.approx(0.94651, abs=5e-6)
    assert paper.overall_ci == pytest.approx(0.01848, abs=5e-6)


def test_olofsson_areas(paper: Olofsson) -> None:
    _close(paper.area, [21_157.76, 11_686.15, 285_769.9, 581_386.2], [2, 2, 1, 1])
    _close(paper.area_ci, [6_157.52, 3_755.76, 15_509.55, 16_281.36], [2] * 4)
    assert sum(paper.area) == pytest.approx(900_000.0)
    assert sum(paper.proportions) == pytest.approx(1.0)


def test_olofsson_area_scales_with_pixel_area() -> None:
    px = olofsson(CONFUSION, MAPPED_PX)
    ha = olofsson(CONFUSION, MAPPED_PX, pixel_area=PIXEL_HA)
    np.testing.assert_allclose(np.asarray(px.area) * PIXEL_HA, ha.area)
    np.testing.assert_allclose(np.asarray(px.area_ci) * PIXEL_HA, ha.area_ci)
    assert px.users == ha.users


def test_olofsson_perfect_map() -> None:
    res = olofsson(np.diag([10, 20]), [300, 700])
    assert res.users == (1.0, 1.0)
    assert res.producers == (1.0, 1.0)
    assert res.users_ci == (0.0, 0.0)
    assert res.area == (300.0, 700.0)
    assert res.area_ci == (0.0, 0.0)
    assert res.overall == 1.0


def test_olofsson_class_never_seen_in_reference() -> None:
    # Nothing is truly class 1: its producer's accuracy cannot be estimated.
    res = olofsson([[10, 0], [5, 0]], [50, 50])
    assert res.area[1] == 0.0
    assert math.isnan(res.producers[1])
    assert res.users[1] == 0.0


def test_olofsson_unmapped_stratum_without_samples() -> None:
    res = olofsson([[8, 2, 0], [1, 9, 0], [0, 0, 0]], [400, 600, 0])
    assert math.isnan(res.users[2])
    assert math.isnan(res.users_ci[2])
    assert sum(res.area) == pytest.approx(1000.0)
    assert res.area[2] == 0.0


@pytest.mark.parametrize(
    ("confusion", "mapped", "error", "match"),
    [
        ([[1, 0], [0, 5]], [10, 10], InsufficientDataError, r"strata \[0\]"),
        ([[1, 0, 0], [0, 5, 0]], [10, 10], ValueError, "square"),
        ([[3, 0], [0, 5]], [10, 10, 1], ValueError, "one entry per class"),
        ([[3, -1], [0, 5]], [10, 10], ValueError, ">= 0"),
        ([[3, 0], [0, 5]], [0, 0], ValueError, "sum to more than 0"),
    ],
)
def test_olofsson_rejects(
    confusion: list[list[int]], mapped: list[int], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        olofsson(confusion, mapped)


@SETTINGS
@given(
    st.integers(2, 4).flatmap(
        lambda k: st.tuples(
            arrays(np.int64, (k, k), elements=st.integers(0, 50)).filter(
                lambda c: bool((c.sum(axis=1) >= 2).all())
            ),
            arrays(np.int64, (k,), elements=st.integers(1, 10**6)),
        )
    )
)
def test_olofsson_invariants(data: tuple[np.ndarray, np.ndarray]) -> None:
    confusion, mapped = data
    res = olofsson(confusion, mapped, pixel_area=0.01)
    assert sum(res.area) == pytest.approx(mapped.sum() * 0.01)
    assert all(a >= 0 for a in res.area)
    assert all(c >= 0 for c in res.area_ci)
    assert all(0.0 <= u <= 1.0 for u in res.users)
    assert all(math.isnan(p) or 0.0 <= p <= 1.0 + 1e-12 for p in res.producers)
    assert 0.0 <= res.overall <= 1.0 + 1e-12
    assert res.overall_ci >= 0


# --- Sample design and area estimates ----------------------------------------------------------


def test_area_estimate_reproduces_the_worked_example() -> None:
    res = area_estimate(CONFUSION, MAPPED_PX, PIXEL_HA, z=1.959964)
    _close(res.area_ha, [21_157.76, 11_686.15, 285_769.9, 581_386.2], [2, 2, 1, 1])
    _close(res.area_ci_ha, [6_157.52, 3_755.76, 15_509.55, 16_281.36], [2] * 4)
    assert res.users is not None
    assert res.users_ci is not None
    assert res.producers is not None
    assert res.producers_ci is not None
    _close(res.users, [0.8800, 0.7333, 0.9273, 0.9631], [4] * 4)
    _close(res.users_ci, [0.07404, 0.10076, 0.03974, 0.02053], [5] * 4)
    _close(res.producers, [0.74866, 0.84716, 0.93451, 0.96161], [5] * 4)
    _close(res.producers_ci, [0.21331, 0.25440, 0.03432, 0.01836], [5] * 4)
    assert res.overall == pytest.approx(0.94651, abs=5e-6)
    assert res.overall_ci == pytest.approx(0.01848, abs=5e-6)
    assert res.n_per_stratum == (75, 75, 165, 325)
    assert res.stratum_area_ha == pytest.approx((18_000.0, 13_500.0, 288_000.0, 580_500.0))
    # Intervals clipped to [0, 1]: the gain producer's accuracy is 0.847 +/- 0.254.
    assert res.producers_high is not None
    assert res.producers_low is not None
    assert res.producers_high[1] == 1.0
    assert res.producers_low[1] == pytest.approx(0.84716 - 0.25440, abs=1e-5)


def test_area_estimate_with_a_buffer_stratum() -> None:
    # A fifth stratum (e.g. a buffer around the change) that is not a map class: areas only,
    # from the stratified estimator written out here.
    counts = np.vstack([CONFUSION, [3, 1, 10, 50]])
    mapped = np.r_[MAPPED_PX, 100_000]
    res = area_estimate(counts, mapped, PIXEL_HA)
    assert res.users is None
    assert res.overall is None
    w = mapped / mapped.sum()
    n_h = counts.sum(axis=1, keepdims=True)
    p_hk = counts / n_h
    expected = (w[:, None] * p_hk).sum(axis=0) * mapped.sum() * PIXEL_HA
    se = np.sqrt((w[:, None] ** 2 * p_hk * (1 - p_hk) / (n_h - 1)).sum(axis=0))
    np.testing.assert_allclose(res.area_ha, expected, rtol=1e-12)
    np.testing.assert_allclose(res.area_ci_ha, 1.959963984540054 * se * mapped.sum() * PIXEL_HA)
    assert sum(res.area_ha) == pytest.approx(mapped.sum() * PIXEL_HA)
    assert res.n_per_stratum[-1] == 64


def test_allocate_sample_olofsson_rule() -> None:
    assert allocate_sample(MAPPED_PX.tolist(), 640, 75) == (75, 75, 162, 328)
    # Enough sample: proportional once every stratum passes the minimum.
    assert allocate_sample([500, 500], 100, 10) == (50, 50)
    # A stratum smaller than the minimum is taken whole.
    assert allocate_sample([20, 10_000, 0], 200, 50) == (20, 180, 0)


@pytest.mark.parametrize(
    ("sizes", "n", "minimum", "match"),
    [
        ([100, 100], 50, 50, "below the minimum allocation"),
        ([10, 10], 21, 1, "n_total must be in"),
        ([10, -1], 5, 1, ">= 0"),
    ],
)
def test_allocate_sample_rejects(sizes: list[int], n: int, minimum: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        allocate_sample(sizes, n, minimum)


@SETTINGS
@given(
    st.lists(st.integers(0, 5_000), min_size=1, max_size=6).filter(lambda s: sum(s) >= 10),
    st.integers(0, 60),
    st.floats(0.0, 1.0),
)
def test_allocate_sample_invariants(sizes: list[int], minimum: int, frac: float) -> None:
    floor = sum(min(s, minimum) for s in sizes)
    n = max(floor, 1, round(frac * sum(sizes)))
    alloc = allocate_sample(sizes, n, minimum)
    assert sum(alloc) == n
    assert all(min(s, minimum) <= a <= s for a, s in zip(alloc, sizes, strict=True))


def _map(seed: int = 0) -> np.ndarray:
    """A 120 x 150 map: 0 stable, 1 a 600-pixel change block, 2 a 200-pixel rare class, and a
    no-data corner (-1)."""
    strata = np.zeros((120, 150), dtype=np.int16)
    strata[10:30, 20:50] = 1
    strata[80:90, 100:120] = 2
    strata[:5, :5] = -1
    return strata


def test_stratified_sample_draws_within_strata() -> None:
    strata = _map()
    pts = stratified_sample(strata, 300, seed=7, min_per_stratum=60)
    assert pts.stratum_pixels == (17_175, 600, 200)
    assert pts.n_per_stratum == (180, 60, 60)
    assert len(pts.rows) == 300
    assert np.all(strata[np.array(pts.rows), np.array(pts.cols)] == np.array(pts.strata))
    assert len(set(zip(pts.rows, pts.cols, strict=True))) == 300  # without replacement
    assert np.bincount(pts.strata).tolist() == [180, 60, 60]
    assert pts.strata[:10] != tuple(sorted(pts.strata[:10]))  # mixed order, blind labelling
    again = stratified_sample(strata, 300, seed=7, min_per_stratum=60)
    assert again == pts
    assert stratified_sample(strata, 300, seed=8, min_per_stratum=60) != pts


def test_stratified_sample_explicit_allocation_and_errors() -> None:
    strata = _map()
    pts = stratified_sample(strata, [10, 20, 30], seed=1)
    assert pts.n_per_stratum == (10, 20, 30)
    with pytest.raises(ValueError, match="allocation has 2 entries"):
        stratified_sample(strata, [10, 20], seed=1)
    with pytest.raises(ValueError, match=r"strata \[2\]"):
        stratified_sample(strata, [10, 20, 201], seed=1)
    with pytest.raises(ValueError, match="2-D integer"):
        stratified_sample(strata.astype(float), 100, seed=1)
    assert stratum_pixel_counts(strata, n_strata=4) == (17_175, 600, 200, 0)


def test_tabulate_sample() -> None:
    counts = tabulate_sample([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3, 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    with pytest.raises(ValueError, match="reference labels"):
        tabulate_sample([0], [3], 3, 3)


def _coverage(strata: np.ndarray, truth: np.ndarray, reps: int = 200) -> tuple[float, float]:
    """Share of seeded samples whose 95% interval holds the true class-1 area, and the mean
    estimate."""
    pixels = stratum_pixel_counts(strata)
    true_area = int(np.count_nonzero(truth == 1))
    hits = 0
    estimates = []
    for seed in range(reps):
        pts = stratified_sample(strata, 400, seed=seed, min_per_stratum=60)
        ref = truth[np.array(pts.rows), np.array(pts.cols)]
        res = area_estimate(tabulate_sample(pts.strata, ref.tolist(), len(pixels), 3), pixels, 1.0)
        estimates.append(res.area_ha[1])
        hits += abs(res.area_ha[1] - true_area) <= res.area_ci_ha[1]
    return hits / reps, float(np.mean(estimates))


def test_sample_and_estimate_cover_the_truth() -> None:
    # End to end on a map with known truth: the map misses 300 change pixels next to the mapped
    # change (omission inside the big stable stratum) and over-maps the rare class. The
    # estimate is unbiased where the mapped area is not. With the omission rare in the stable
    # stratum (~3 of its ~180 sample units), the normal interval under-covers (~87%); a buffer
    # stratum around the mapped change (Olofsson et al. 2014), which is not a map class,
    # restores ~95% and halves the spread.
    strata = _map()
    truth = np.zeros_like(strata)
    truth[10:40, 20:50] = 1
    truth[80:90, 100:110] = 2
    true_change = 900
    assert stratum_pixel_counts(strata)[1] == 600

    plain_cover, plain_mean = _coverage(strata, truth)
    assert 0.80 <= plain_cover <= 0.93
    assert plain_mean == pytest.approx(true_change, rel=0.05)

    buffered = strata.copy()
    near = np.zeros(strata.shape, dtype=bool)
    near[0:42, 8:62] = True  # 12 pixels around the mapped change block
    buffered[near & (strata == 0)] = 3
    buffer_cover, buffer_mean = _coverage(buffered, truth)
    assert 0.91 <= buffer_cover <= 0.99
    assert buffer_mean == pytest.approx(true_change, rel=0.05)
