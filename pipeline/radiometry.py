"""Radiometric rules and their checks from the pixels (pure: arrays in, decisions out).

The Sentinel-2 BOA offset (DOMAIN.md "Radiometry") is the most common silent error in the field:
a wrong -1000 DN shifts every band by 0.1 reflectance and fakes a coal "decline" in 2022. The
metadata decide first (``sources.sensors``); two checks from the pixels then catch a wrong
provider flag, and every decision and check is recorded per item:

* ``verify_boa_offset`` per scene, absolute: reflectance cannot be well below zero, so many
  SWIR2 pixels under DN 800 prove that no offset is in the data (any pixel with data: cloud,
  haze and cloud edges only brighten, so a cloudy scene proves it too); clear dark reference
  pixels (SCL dark area, shadow, water) with SWIR2 at DN 950-1800 prove that one is.
* ``offset_outliers`` per site-year, relative: on pixels that are stable across the season, a
  scene whose blue and SWIR2 both sit a uniform 0.1 above or below the others carries a wrong
  offset (``series_verdict``: haze, snow, shadow and leaves move the two ends of the spectrum
  differently, an offset alike), unless taking the offset off would leave pixels below zero.
  This also works where nothing is dark (deserts, dry autumns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pipeline.bands import BAND_INDEX
from pipeline.composite import median_composite

S2_SCALE = 1e-4
S2_BOA_OFFSET_DN = -1000.0


@dataclass(frozen=True)
class Radiometry:
    """How one scene's DN become reflectance: ``reflectance = (DN + offset_dn) * scale``.

    ``reason`` says how the rule was decided (baseline, flag, ``raster:bands``); ``check`` what
    the pixels said, empty where no check applies.
    """

    scale: float
    offset_dn: float
    reason: str
    check: str = ""

    def apply(self, dn: NDArray[Any]) -> NDArray[np.float32]:
        return ((dn.astype(np.float64) + self.offset_dn) * self.scale).astype(np.float32)


_DARK_SCL = (2, 3, 6)
_MIN_PX = 30
_MIN_BELOW_ZERO_PX = 10  # a small coal pile or pond in a small window is enough evidence
_BELOW_ZERO_DN = 800.0  # reflectance below -0.02 if a +1000 offset were in the data
_DARK_WITH_OFFSET_DN = (950.0, 1800.0)


@dataclass(frozen=True)
class BoaEvidence:
    """What ``verify_boa_offset`` decides from, gathered over one scene or a part of it.

    ``data``: the SWIR2 pixels with data (finite, positive), clear or not; ``low``: how many of
    them sit below ``_BELOW_ZERO_DN``. Clouds, haze and cloud edges only brighten SWIR2, so a
    value below zero-with-offset cannot come from them: the below-zero proof takes every pixel,
    and a scene that no clear pixel can check still proves an offset absent. ``valid``: the
    clear ones among ``data``; ``dark``: the SWIR2 DN of the clear dark reference pixels (SCL
    2/3/6), in any order (a brightened shadow would pass for one carrying the offset). Parts of
    a scene that do not overlap add up (``combined``) to the evidence of their union, so a
    scene read chunk by chunk is judged exactly as when read whole."""

    valid: int
    low: int
    dark: NDArray[Any]
    data: int

    @classmethod
    def of(
        cls,
        swir22_dn: NDArray[Any],
        scl: NDArray[np.integer],
        clear: NDArray[np.bool_] | None = None,
    ) -> BoaEvidence:
        data = np.isfinite(swir22_dn) & (swir22_dn > 0)
        valid = data if clear is None else data & clear
        low = int((data & (swir22_dn < _BELOW_ZERO_DN)).sum())
        dark = swir22_dn[valid & np.isin(scl, _DARK_SCL)]
        return cls(int(valid.sum()), low, dark, int(data.sum()))

    @classmethod
    def combined(cls, parts: Sequence[BoaEvidence]) -> BoaEvidence:
        """The evidence of the union of disjoint parts (at least one)."""
        return cls(
            sum(p.valid for p in parts),
            sum(p.low for p in parts),
            np.concatenate([p.dark for p in parts]),
            sum(p.data for p in parts),
        )


def verify_boa_offset(
    swir22_dn: NDArray[Any],
    scl: NDArray[np.integer],
    decided: Radiometry,
    clear: NDArray[np.bool_] | None = None,
) -> Radiometry:
    """Check one Sentinel-2 scene's offset decision from its own pixels (the ``clear`` ones:
    cloud edges and haze brighten SWIR2); correct it where they contradict it, and record the
    evidence in ``check``."""
    return settle_boa_offset(decided, BoaEvidence.of(swir22_dn, scl, clear))


def settle_boa_offset(decided: Radiometry, evidence: BoaEvidence) -> Radiometry:
    """The verdict of ``verify_boa_offset`` on gathered ``evidence``."""
    n, low = evidence.data, evidence.low
    if n >= _MIN_PX and low >= max(_MIN_BELOW_ZERO_PX, 0.001 * n):
        in_data, evidence_text = False, f"{low} of {n} px with B12 DN < {_BELOW_ZERO_DN:.0f}"
    elif evidence.valid < _MIN_PX:
        return replace(decided, check="inconclusive: too few valid pixels")
    else:
        # Vegetation is no reference: senescent autumn crops reach 0.1-0.15 in SWIR2.
        dark, label = evidence.dark, "SCL 2/3/6"
        if dark.size < _MIN_PX:
            return replace(decided, check="inconclusive: nothing dark enough in the window")
        p5 = float(np.percentile(dark, 5))
        evidence_text = f"B12 DN p5 {p5:.0f} over {dark.size} px of {label}"
        if not _DARK_WITH_OFFSET_DN[0] <= p5 <= _DARK_WITH_OFFSET_DN[1]:
            return replace(decided, check=f"inconclusive: {evidence_text}")
        in_data = True
    return _settle(decided, in_data, evidence_text)


def _settle(decided: Radiometry, in_data: bool, evidence: str) -> Radiometry:
    applies = decided.offset_dn != 0.0
    if applies == in_data:
        return replace(decided, check=f"confirmed: {evidence}")
    corrected = S2_BOA_OFFSET_DN if in_data else 0.0
    verdict = "offset present in data" if in_data else "no offset in data"
    return Radiometry(
        decided.scale,
        corrected,
        f"{decided.reason}; overridden by the pixels",
        f"contradicted: {evidence}: {verdict}; applied DN {corrected:+.0f}",
    )


@dataclass(frozen=True)
class OffsetOutlier:
    """A scene of a series whose reflectance sits ``shift`` (reflectance) off the others."""

    index: int
    shift: float
    evidence: str


#: The bands the season's check compares (``series_verdict``), one at each end of the spectrum.
SERIES_BANDS: tuple[str, ...] = ("blue", "swir22")
#: Their places in the recipe's band order (``bands.BANDS``).
SERIES_BAND_INDEX: tuple[int, ...] = tuple(BAND_INDEX[b] for b in SERIES_BANDS)
_SERIES_LABEL = {"blue": "blue", "swir22": "SWIR2"}
_STABLE_BAND = SERIES_BANDS.index("swir22")  # haze-free: stable ground is stable there
_BELOW_ZERO = 0.02  # reflectance below -0.02 is not noise (_BELOW_ZERO_DN: 200 DN under 1000)

SeriesOutcome = Literal["offset", "consistent", "inconclusive"]


@dataclass(frozen=True)
class SeriesEvidence:
    """What the season's offset check judges one scene from, gathered over the site's grid or a
    part of it: per ``SERIES_BANDS`` band, the scene's reflectance minus the season's per-pixel
    median on the stable pixels it sees clear (``differences``, bands x pixels, in any order);
    how many pixels it sees clear (``clear``, finite in every band); and how many of those have
    a band under the offset less 0.02 (``dark``): taking the offset off would put them below
    -0.02 reflectance, which no surface has. Parts of a grid that do not overlap add up
    (``combined``) to the evidence of their union, so a site read chunk by chunk is judged
    exactly as when read whole."""

    differences: NDArray[np.float32]
    clear: int
    dark: int

    @classmethod
    def combined(cls, parts: Sequence[SeriesEvidence]) -> SeriesEvidence:
        """The evidence of the union of disjoint parts (at least one)."""
        return cls(
            np.concatenate([p.differences for p in parts], axis=1),
            sum(p.clear for p in parts),
            sum(p.dark for p in parts),
        )


@dataclass(frozen=True)
class SeriesVerdict:
    """The season's offset check on one scene (``series_verdict``): ``outcome``, the
    reflectance to add to the scene (``correction``: nonzero only for ``"offset"``) and what
    the pixels showed (``evidence``)."""

    outcome: SeriesOutcome
    correction: float
    evidence: str


def offset_outliers(
    looks: Sequence[NDArray[np.float32]],
    clear: Sequence[NDArray[np.bool_]],
    *,
    offset: float = 0.1,
    tolerance: float = 0.03,
    stable_mad: float = 0.02,
    min_scenes: int = 3,
    min_pixels: int = 100,
) -> list[OffsetOutlier]:
    """Scenes of a season whose reflectance differs from the others' by a uniform ``offset``
    in blue and SWIR2 alike: a wrong BOA offset (``series_verdict``). ``looks``: per scene its
    ``SERIES_BANDS`` reflectance (band, y, x) on one grid; ``clear``: its clear pixels.

    The per-pixel part (``series_evidence``) runs on any part of the scenes' common grid; the
    verdict (``outliers_from_evidence``) on the evidence of all parts together.
    """
    if len(looks) < min_scenes:
        return []
    evidence = series_evidence(
        looks, clear, offset=offset, stable_mad=stable_mad, min_scenes=min_scenes
    )
    return outliers_from_evidence(
        evidence, offset=offset, tolerance=tolerance, min_pixels=min_pixels
    )


def series_evidence(
    looks: Sequence[NDArray[np.float32]],
    clear: Sequence[NDArray[np.bool_]],
    *,
    offset: float = 0.1,
    stable_mad: float = 0.02,
    min_scenes: int = 3,
) -> list[SeriesEvidence]:
    """Per scene, its ``SeriesEvidence`` over the grid of ``looks`` (``offset_outliers``).

    Reference: per pixel and band, the median of the season's clear finite looks; stable
    pixels: seen clear in ``min_scenes`` looks or more, with a SWIR2 median absolute deviation
    under ``stable_mad`` (harvests and floods change; a 0.1 error in one of three or more looks
    does not move a median). Median and MAD come from the compositing kernel
    (``composite.median_composite``). Per pixel, so the evidence of disjoint parts of a grid,
    combined, is that of the whole."""
    clear_stack = np.stack(clear)
    series = median_composite(np.stack(looks), clear_stack)
    ref = series.reflectance
    with np.errstate(invalid="ignore"):
        stable = (series.clear_count >= min_scenes) & (series.mad[_STABLE_BAND] < stable_mad)
    out = []
    for look, seen in zip(looks, clear_stack, strict=True):
        valid = seen & np.isfinite(look).all(axis=0)
        use = stable & valid
        dark = valid & (look < offset - _BELOW_ZERO).any(axis=0)
        out.append(SeriesEvidence(look[:, use] - ref[:, use], int(valid.sum()), int(dark.sum())))
    return out


def outliers_from_evidence(
    evidence: Sequence[SeriesEvidence],
    *,
    offset: float = 0.1,
    tolerance: float = 0.03,
    min_pixels: int = 100,
) -> list[OffsetOutlier]:
    """The scenes whose ``series_verdict`` is ``"offset"``, with the shift that corrects
    them."""
    out = []
    for i, scene in enumerate(evidence):
        verdict = series_verdict(scene, offset=offset, tolerance=tolerance, min_pixels=min_pixels)
        if verdict.outcome == "offset":
            out.append(OffsetOutlier(i, verdict.correction, verdict.evidence))
    return out


def series_verdict(
    evidence: SeriesEvidence,
    *,
    offset: float = 0.1,
    tolerance: float = 0.03,
    min_pixels: int = 100,
) -> SeriesVerdict:
    """Whether one scene carries a wrong BOA offset, from its ``SeriesEvidence``.

    A wrong offset moves every pixel of every band by the same ``offset``, up or down; nothing
    else on the ground or in the air does. On the stable pixels the scene's difference from the
    season is told, per band, by its median, and its uniformity by its interquartile range:

    * ``"offset"``: in both bands the median sits within ``tolerance`` of the same +-``offset``
      and the difference is uniform (interquartile range under ``tolerance``), and taking the
      offset off leaves no clear pixel below zero reflectance (no more than the per-scene
      check tolerates, ``settle_boa_offset``). The scene is moved back by the offset.
    * ``"consistent"``: both medians within ``tolerance`` of zero: the decision stands.
    * ``"inconclusive"``, anything else: the surface or the air changed (or too few stable
      pixels, under ``min_pixels``); the scene's own decision (flag, baseline, its pixel
      check) stands.

    The two bands sit at the ends of the spectrum, where every natural change looks unlike an
    offset. Blue, where land is darkest (0.02-0.08 for vegetation, water and most soils), moves
    little under what leaves, soil moisture, shadow or a sensor gain do, all of which scale with
    reflectance (a cloud shadow that takes 0.07 off SWIR2 takes 0.01-0.03 off blue), while haze
    and snow add most there; SWIR2 (2.2 um) is nearly free of haze (aerosol optical depth falls
    with wavelength, Angstrom 1929) and snow is dark there. Only an offset moves both alike. NIR
    and SWIR1 are not compared: leaves move them by 0.1 and more through a season.

    ``tolerance`` (0.03) bounds what stable ground does between two clear looks of a season
    (residual haze, view and sun angles, a few per cent of gain); under half the offset, the two
    hypotheses cannot both fit. The test is a likelihood ratio under errors bounded by
    ``tolerance``, with the third outcome explicit: where neither hypothesis fits, the pixels
    say nothing about the offset and the scene's decision so far (the metadata's, or its own
    pixel check's) is kept.
    """
    diff = evidence.differences
    n = diff.shape[1]
    if n < min_pixels:
        return SeriesVerdict("inconclusive", 0.0, f"{n} stable px, under {min_pixels}")
    q1, median, q3 = np.percentile(diff, [25, 50, 75], axis=1)
    seen = ", ".join(
        f"{_SERIES_LABEL[b]} {m:+.3f}" for b, m in zip(SERIES_BANDS, median, strict=True)
    )
    text = f"{seen} from the season median on {n} stable px"
    if bool(np.all(np.abs(median) <= tolerance)):
        return SeriesVerdict("consistent", 0.0, text)
    moved = offset if float(np.mean(median)) > 0 else -offset
    if not (np.all(np.abs(median - moved) <= tolerance) and np.all(q3 - q1 < tolerance)):
        return SeriesVerdict("inconclusive", 0.0, text)
    if moved > 0 and evidence.dark >= max(_MIN_BELOW_ZERO_PX, 0.001 * evidence.clear):
        return SeriesVerdict(
            "inconclusive",
            0.0,
            f"{text}; taking {offset} off would put {evidence.dark} of {evidence.clear} clear "
            f"px below -{_BELOW_ZERO}",
        )
    return SeriesVerdict("offset", -moved, text)
