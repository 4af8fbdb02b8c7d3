"""The season's BOA offset check (``radiometry.series_verdict``) on looks built from the physics
of what moves a look off its season: cloud shadow, leaves, snow, haze, a wrong offset.

Each trap below moves SWIR2 on the stable ground by a uniform 0.07-0.09, which a check on SWIR2
alone took for a wrong offset (``_fools_swir2_alone`` asserts it); blue tells them apart. Wrong
offsets, alone or under a light haze, are still caught in both directions."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.bands import BANDS
from pipeline.radiometry import (
    SERIES_BAND_INDEX,
    SERIES_BANDS,
    SeriesEvidence,
    offset_outliers,
    series_evidence,
    series_verdict,
)

# Reflectance per band (blue green red nir swir16 swir22) of a pasture site in autumn, the
# state most of the season's looks see: the season's median.
PASTURE = np.array([0.035, 0.06, 0.05, 0.30, 0.22, 0.12], np.float32)
SOIL = np.array([0.08, 0.11, 0.14, 0.22, 0.32, 0.26], np.float32)
WATER = np.array([0.06, 0.06, 0.04, 0.02, 0.01, 0.005], np.float32)
# The same pasture green in summer: more chlorophyll (red down), leaves and leaf water (NIR
# up, SWIR down); blue barely moves.
PASTURE_SUMMER = np.array([0.03, 0.06, 0.035, 0.42, 0.15, 0.045], np.float32)
# Fresh snow: bright in the visible, dark in SWIR (ice absorbs at 1.6 and 2.2 um).
SNOW = np.array([0.90, 0.89, 0.87, 0.78, 0.08, 0.04], np.float32)
# Central wavelengths (um) of the bands, for a haze's path reflectance.
WAVELENGTH = np.array([0.49, 0.56, 0.665, 0.842, 1.61, 2.19], np.float32)
SHAPE = (40, 50)


def _ground() -> np.ndarray:
    """(band, y, x): pasture with a strip of bare soil and a pond."""
    ground = np.broadcast_to(PASTURE[:, None, None], (6, *SHAPE)).copy()
    ground[:, :, 40:45] = SOIL[:, None, None]
    ground[:, :, 45:] = WATER[:, None, None]
    return ground


def _look(ground: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One clear look: a gain of up to 3 % per band and sensor noise of 0.004."""
    gain = 1 + rng.uniform(-0.03, 0.03, (6, 1, 1))
    return (ground * gain + rng.normal(0, 0.004, ground.shape)).astype(np.float32)


def _season(
    odd: np.ndarray, n: int = 8, seed: int = 1
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` autumn looks of the site in the season check's bands, the third replaced by
    ``odd`` (band, y, x, all six bands) seen through the same sensor; all clear."""
    rng = np.random.default_rng(seed)
    ground = _ground()
    looks = [_look(ground, rng) for _ in range(n)]
    looks[2] = _look(odd, rng)
    return [look[list(SERIES_BAND_INDEX)] for look in looks], [np.ones(SHAPE, bool)] * n


def _evidence(looks: list[np.ndarray], clear: list[np.ndarray]) -> SeriesEvidence:
    return series_evidence(looks, clear)[2]


def _fools_swir2_alone(evidence: SeriesEvidence) -> bool:
    """Whether the look passes for a wrong offset on SWIR2 alone: its median within 0.03 of
    +-0.1 and uniform (the season check before it compared blue too)."""
    swir2 = evidence.differences[SERIES_BANDS.index("swir22")]
    q1, q3 = np.percentile(swir2, [25, 75])
    return abs(abs(float(np.median(swir2))) - 0.1) <= 0.03 and q3 - q1 < 0.03


def test_series_bands_are_blue_and_swir2() -> None:
    assert [BANDS[i] for i in SERIES_BAND_INDEX] == ["blue", "swir22"]


def test_an_ordinary_look_is_consistent() -> None:
    verdict = series_verdict(_evidence(*_season(_ground())))
    assert verdict.outcome == "consistent"
    assert verdict.correction == 0.0
    assert "from the season median on" in verdict.evidence


@pytest.mark.parametrize("offset_in_look", [0.1, -0.1])
def test_a_wrong_offset_is_caught_both_ways(offset_in_look: float) -> None:
    """A look read with the wrong offset: every band of every pixel 0.1 off (up: the offset
    in the data was not taken off; down: it was taken off data without one)."""
    looks, clear = _season(_ground() + np.float32(offset_in_look))
    verdict = series_verdict(_evidence(looks, clear))
    assert verdict.outcome == "offset"
    assert verdict.correction == pytest.approx(-offset_in_look)
    found = offset_outliers(looks, clear)
    assert [(o.index, o.shift) for o in found] == [(2, pytest.approx(-offset_in_look))]
    assert found[0].evidence.startswith("blue +" if offset_in_look > 0 else "blue -")


def test_a_wrong_offset_under_a_light_haze_is_caught() -> None:
    """Haze adds path reflectance falling with wavelength (Angstrom exponent 1.3): 0.02 in
    blue, under 0.003 in SWIR2; the offset still fits both bands."""
    haze = 0.02 * (WAVELENGTH / WAVELENGTH[0]) ** -1.3
    looks, clear = _season(_ground() + haze[:, None, None] + np.float32(0.1))
    assert series_verdict(_evidence(looks, clear)).correction == pytest.approx(-0.1)


def test_a_cloud_shadowed_look_is_not_an_offset() -> None:
    """Cloud shadow over the site: only skylight lights the ground, and skylight is blue
    (Rayleigh scattering goes as wavelength^-4), so a shadow keeps 60 % of blue and 30 % of
    SWIR2. Pasture SWIR2 drops 0.084, uniformly; blue 0.014."""
    lit = np.array([0.6, 0.5, 0.45, 0.35, 0.3, 0.3], np.float32)
    evidence = _evidence(*_season(_ground() * lit[:, None, None]))
    assert _fools_swir2_alone(evidence)
    verdict = series_verdict(evidence)
    assert verdict.outcome == "inconclusive"
    assert verdict.correction == 0.0


def test_a_green_summer_look_is_not_an_offset() -> None:
    """A look from before the harvest, of the pasture still green: SWIR2 0.075 under the
    autumn season, blue 0.005."""
    summer = _ground()
    summer[:, :, :40] = PASTURE_SUMMER[:, None, None]
    evidence = _evidence(*_season(summer))
    assert _fools_swir2_alone(evidence)
    assert series_verdict(evidence).outcome == "inconclusive"


def test_a_snowy_look_is_not_an_offset() -> None:
    """Snow the mask missed over the whole site: SWIR2 falls 0.08 on the pasture (snow is dark
    at 2.2 um), blue rises 0.86."""
    snowy = np.broadcast_to(SNOW[:, None, None], (6, *SHAPE)).copy()
    evidence = _evidence(*_season(snowy))
    assert _fools_swir2_alone(evidence)
    assert series_verdict(evidence).outcome == "inconclusive"


def test_a_thick_haze_is_not_an_offset() -> None:
    """Smoke or thick haze (Angstrom exponent 1.0): 0.4 of path reflectance in blue, 0.09 in
    SWIR2."""
    haze = 0.4 * (WAVELENGTH / WAVELENGTH[0]) ** -1.0
    evidence = _evidence(*_season(_ground() + haze[:, None, None]))
    assert _fools_swir2_alone(evidence)
    assert series_verdict(evidence).outcome == "inconclusive"


def test_an_offset_is_not_taken_off_where_it_would_leave_pixels_below_zero() -> None:
    """Stable ground 0.1 brighter in both bands, but half the scene's clear pixels read under
    0.08 somewhere: without the offset they would be below -0.02, which no surface is. The
    pixels deny the offset; the decision stands."""
    uniform = np.full((2, 500), 0.1, np.float32)
    denied = series_verdict(SeriesEvidence(uniform, clear=1000, dark=500))
    assert denied.outcome == "inconclusive"
    assert "below -0.02" in denied.evidence
    assert series_verdict(SeriesEvidence(uniform, clear=1000, dark=0)).outcome == "offset"
    # Adding the offset back cannot make anything negative: no such limit.
    assert series_verdict(SeriesEvidence(-uniform, clear=1000, dark=500)).correction == 0.1


def test_too_few_stable_pixels_are_inconclusive() -> None:
    verdict = series_verdict(SeriesEvidence(np.full((2, 99), 0.1, np.float32), 99, 0))
    assert verdict.outcome == "inconclusive"
    assert "99 stable px" in verdict.evidence


def test_the_evidence_of_parts_is_that_of_the_whole() -> None:
    """Per pixel, so the parts of a grid (the chunks of ``pipeline.chunks``) add up to the
    whole: the same verdicts and the same differences, in another order."""
    looks, clear = _season(_ground() + np.float32(0.1))
    whole = series_evidence(looks, clear)
    rows = (slice(0, 13), slice(13, 40))
    parts = [series_evidence([look[:, r] for look in looks], [c[r] for c in clear]) for r in rows]
    for k, scene in enumerate(whole):
        joined = SeriesEvidence.combined([part[k] for part in parts])
        assert (joined.clear, joined.dark) == (scene.clear, scene.dark)
        assert np.array_equal(
            np.sort(joined.differences, axis=1), np.sort(scene.differences, axis=1)
        )
        assert series_verdict(joined) == series_verdict(scene)
