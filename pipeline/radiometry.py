"""Radiometric rules and their checks from the pixels (pure: arrays in, decisions out).

The Sentinel-2 BOA offset (DOMAIN.md "Radiometry") is the most common silent error in the field:
a wrong -1000 DN shifts every band by 0.1 reflectance and fakes a coal "decline" in 2022. The
metadata decide first (``sources.sensors``); two checks from the pixels then catch a wrong
provider flag, and every decision and check is recorded per item:

* ``verify_boa_offset`` per scene, absolute: reflectance cannot be well below zero, so many
  SWIR2 pixels under DN 800 prove that no offset is in the data; clear dark reference pixels
  (SCL dark area, shadow, water) with SWIR2 at DN 950-1800 prove that one is.
* ``offset_outliers`` per site-year, relative: on pixels that are stable across the season, a
  scene whose SWIR2 sits a uniform 0.1 above or below the others carries a wrong offset. This
  also works where nothing is dark (deserts, dry autumns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
    """What ``verify_boa_offset`` decides from, gathered over one scene or a part of it: the
    valid (clear, finite, positive) SWIR2 pixels, how many of them sit below
    ``_BELOW_ZERO_DN``, and the SWIR2 DN of the valid dark reference pixels (SCL 2/3/6), in any
    order. Parts of a scene that do not overlap add up (``combined``) to the evidence of their
    union, so a scene read chunk by chunk is judged exactly as when read whole."""

    valid: int
    low: int
    dark: NDArray[Any]

    @classmethod
    def of(
        cls,
        swir22_dn: NDArray[Any],
        scl: NDArray[np.integer],
        clear: NDArray[np.bool_] | None = None,
    ) -> BoaEvidence:
        valid = np.isfinite(swir22_dn) & (swir22_dn > 0)
        if clear is not None:
            valid &= clear
        low = int((valid & (swir22_dn < _BELOW_ZERO_DN)).sum())
        return cls(int(valid.sum()), low, swir22_dn[valid & np.isin(scl, _DARK_SCL)])

    @classmethod
    def combined(cls, parts: Sequence[BoaEvidence]) -> BoaEvidence:
        """The evidence of the union of disjoint parts (at least one)."""
        return cls(
            sum(p.valid for p in parts),
            sum(p.low for p in parts),
            np.concatenate([p.dark for p in parts]),
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
    n = evidence.valid
    if n < _MIN_PX:
        return replace(decided, check="inconclusive: too few valid pixels")
    low = evidence.low
    if low >= max(_MIN_BELOW_ZERO_PX, 0.001 * n):
        in_data, evidence_text = False, f"{low} of {n} px with B12 DN < {_BELOW_ZERO_DN:.0f}"
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


def offset_outliers(
    swir22: Sequence[NDArray[np.float32]],
    clear: Sequence[NDArray[np.bool_]],
    *,
    offset: float = 0.1,
    tolerance: float = 0.03,
    stable_mad: float = 0.02,
    min_scenes: int = 3,
    min_pixels: int = 100,
) -> list[OffsetOutlier]:
    """Scenes whose SWIR2 reflectance differs from the series by a uniform ``offset``.

    Reference: per pixel, the median over the scenes; only pixels whose median absolute
    deviation is below ``stable_mad`` count (harvests and floods change, a +-0.1 error in one of
    three or more scenes does not move a median). A scene is an outlier when the median difference on
    those pixels is within ``tolerance`` of +-``offset`` and the difference is uniform
    (interquartile range below ``tolerance``), as an offset is and a surface change is not.

    The per-pixel part (``stable_differences``) runs on any part of the scenes' common grid;
    the verdict (``outliers_from_differences``) on the differences of all parts together.
    """
    if len(swir22) < min_scenes:
        return []
    differences = stable_differences(swir22, clear, stable_mad=stable_mad, min_scenes=min_scenes)
    return outliers_from_differences(
        differences, offset=offset, tolerance=tolerance, min_pixels=min_pixels
    )


def stable_differences(
    swir22: Sequence[NDArray[np.float32]],
    clear: Sequence[NDArray[np.bool_]],
    *,
    stable_mad: float = 0.02,
    min_scenes: int = 3,
) -> list[NDArray[np.float32]]:
    """Per scene, its SWIR2 minus the per-pixel median of the series on the stable pixels it
    sees clear (``offset_outliers``), in any order: per pixel, so the differences of disjoint
    parts of a grid, concatenated, are those of the whole. The median and its MAD over the
    clear finite looks come from the compositing kernel (``composite.median_composite``)."""
    clear_stack = np.stack(clear)
    series = median_composite(np.stack(swir22)[:, None], clear_stack)
    ref, mad = series.reflectance[0], series.mad[0]
    with np.errstate(invalid="ignore"):
        stable = (series.clear_count >= min_scenes) & (mad < stable_mad)
    out = []
    for layer, seen in zip(swir22, clear_stack, strict=True):
        use = stable & seen & np.isfinite(layer)
        out.append(layer[use] - ref[use])
    return out


def outliers_from_differences(
    differences: Sequence[NDArray[np.float32]],
    *,
    offset: float = 0.1,
    tolerance: float = 0.03,
    min_pixels: int = 100,
) -> list[OffsetOutlier]:
    """The verdict of ``offset_outliers`` on each scene's ``stable_differences``."""
    out = []
    for i, diff in enumerate(differences):
        if diff.size < min_pixels:
            continue
        med = float(np.median(diff))
        q1, q3 = np.percentile(diff, [25, 75])
        if abs(abs(med) - offset) <= tolerance and float(q3 - q1) < tolerance:
            shift = -offset if med > 0 else offset
            out.append(
                OffsetOutlier(
                    i, shift, f"SWIR2 {med:+.3f} from the season median on {diff.size} stable px"
                )
            )
    return out
