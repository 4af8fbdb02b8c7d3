"""The coal counting rule: how many of a pixel's clear looks must flag coal
(``classify.flags_needed``, ``CoalFrequency.mask``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipeline.classify import CoalFrequency, coal_frequency, flags_needed
from pipeline.recipe import RecipeParams, classify

COAL = [0.040, 0.042, 0.045, 0.050, 0.055, 0.052]
YARD = [0.12, 0.13, 0.14, 0.18, 0.22, 0.20]
# A thin cloud edge the QA band left clear: coal brightened by ~0.04 in every band (mean above
# the coal rule's 0.075), as seen on the landsat-to-sentinel2 case's piles.
COAL_UNDER_CLOUD_EDGE = [0.080, 0.085, 0.085, 0.090, 0.092, 0.090]


def test_flags_needed_known_counts() -> None:
    # Defaults: one look never, 2 of 2, 2 of 3, 3 of 4 (2 of 4 happens by chance 5.2% of the
    # time at one false flag in ten looks), then the majority.
    assert flags_needed(np.arange(10)).tolist() == [2, 2, 2, 2, 3, 3, 3, 4, 4, 5]
    # A fixed minimum of 3 flags still holds where a pixel has 3 looks or more.
    assert flags_needed(np.arange(6), min_observations=3).tolist() == [2, 2, 2, 3, 3, 3]
    # One image: no chance bound, the majority of its one look.
    assert flags_needed(np.arange(3), min_observations=1, false_alarm_max=1.0).tolist() == [
        1,
        1,
        1,
    ]


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.2])
@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_flags_needed_bounds_chance_flags(rate: float, alpha: float) -> None:
    n = np.arange(1, 40)
    k = flags_needed(n, min_frequency=0.0, min_observations=1, false_flag_rate=rate,
                     false_alarm_max=alpha)  # fmt: skip
    # The count bounds the chance of a pixel that is not coal reaching it ...
    assert (stats.binom.sf(k - 1, n, rate) <= alpha).all()
    # ... and is the smallest that does (one flag fewer would exceed it), where it is not
    # more than the looks.
    fewer = (k >= 1) & (k <= n)
    assert (stats.binom.sf(k[fewer] - 2, n[fewer], rate) > alpha).all()


def test_flags_needed_keeps_majority_and_floor() -> None:
    n = np.arange(1, 60)
    k = flags_needed(n)
    assert (k >= np.ceil(0.5 * n)).all()
    assert (k >= 2).all()
    assert (np.diff(k) >= 0).all()  # more looks never need fewer flags


def test_two_of_three_looks_count_when_one_is_contaminated() -> None:
    """Landsat's 16-day revisit leaves a pile 3 clear looks in a cloudy autumn; one of them
    brightened by an unflagged cloud edge must not drop the pile."""
    size = 5
    pile = np.broadcast_to(np.array(COAL, np.float32)[:, None, None], (6, size, size))
    edge = np.broadcast_to(
        np.array(COAL_UNDER_CLOUD_EDGE, np.float32)[:, None, None], (6, size, size)
    )
    stack = np.stack([pile, pile, edge]).copy()
    clear = np.ones((3, size, size), bool)
    freq = coal_frequency(stack, clear)
    assert (freq.clear == 3).all()
    assert (freq.flagged == 2).all()  # the cloud-edge look fails the rule
    assert freq.mask().all()
    # The rule before (3 flags whenever 3 looks) lost the whole pile.
    assert not freq.mask(min_observations=3).any()
    # A fourth clear look that also fails is not outvoted: 2 of 4 is not coal.
    stack4 = np.concatenate([stack, edge[None]])
    assert not coal_frequency(stack4, np.ones((4, size, size), bool)).mask().any()


def test_one_look_alone_counts_only_next_to_confirmed_coal() -> None:
    flagged = np.array([[1, 2, 0, 1]], np.int16)
    clear = np.array([[1, 3, 0, 1]], np.int16)
    freq = CoalFrequency((flagged / np.maximum(clear, 1)).astype(np.float32), flagged, clear)
    # Pixel 1: 2 of 3 (confirmed); pixel 0 seen once, flagged, touches it; pixel 3 alone: no.
    assert freq.mask()[0].tolist() == [True, True, False, False]


def test_single_image_counts_its_one_look() -> None:
    reflectance = np.empty((6, 9, 10), np.float32)  # coal on the left half, yard on the right
    reflectance[:, :, :5] = np.array(COAL, np.float32)[:, None, None]
    reflectance[:, :, 5:] = np.array(YARD, np.float32)[:, None, None]
    valid = np.ones(reflectance.shape[1:], bool)
    out = classify(
        reflectance, valid=valid, pixel_area_ha=0.01, params=RecipeParams(min_mapping_unit_ha=0.0)
    )
    assert out.coal_mask[:, :5].all()
    assert not out.coal_mask[:, 5:].any()
