"""Tests for pipeline.accuracy: pixel scores against truth, and Olofsson et al. 2014 estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline.accuracy import Olofsson, area_error, binary_scores, olofsson
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
