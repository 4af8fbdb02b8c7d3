"""Deterministic random streams: every draw comes from a generator keyed by (seed, site, ...).

Each scene draws from its own stream, each site-year from its own, so a subset of sites or years
gives the same pixels as the full build, with or without a process pool. The streams in use:

- ``(seed, site, date ordinal, 0)``: everything random in one scene (``render.render_scene``);
- ``(seed, site, year, 1)``: the acquisition dates of a site and calendar year (``schedule``);
- ``(seed, site, 0, 2)``: the ground texture of a site, fixed for all scenes (``render``);
- ``(seed, site, year-state, 3)``: the phenology of a site and year-state (``spectra``);
- ``(seed, site, date ordinal, 4)``: a scene's hard-case draws (early snow, a lying offset
  flag), used only when a hard case is on, so the other draws stay as without it;
- ``(seed, site, 0, 5)``: the direction of the first full-pixel shift (``shift_by_year``).

Changing a key, or the order of draws from a stream, changes the output: bump
``params.GENERATOR_VERSION``.
"""

from __future__ import annotations

import zlib

import numpy as np


def site_key(site_id: str) -> int:
    """A stable integer for ``site_id`` (CRC-32): part of every stream key, and the orbit phase."""
    return zlib.crc32(site_id.encode())


def seeded_rng(*keys: int) -> np.random.Generator:
    """The generator of the stream ``keys``."""
    return np.random.default_rng(np.random.SeedSequence(list(keys)))
