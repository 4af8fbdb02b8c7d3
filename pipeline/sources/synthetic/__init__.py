"""The built-in synthetic scenario: Sentinel-2 L2A-like imagery of three fictional sites, with truth.

Why it exists: no multi-year imagery of the watched places ships with the project, and accuracy can
only be measured where the answer is known. The scenario is written to disk exactly as a real
source would deliver it (COGs in uint16 DN with the baseline-04.00 offset, 20 m SCL, a static STAC
catalog with Earth Search v1 asset keys), so the readers, masks and offset rules are exercised on
the same path as real data, and the truth (footprint and coal polygons per site and year) is
written beside it.

Everything is deterministic from ``ScenarioParams.seed`` (see ``seeds``): a subset of sites or
years gives the same pixels as the full build, with or without a process pool.

``ScenarioParams`` also carries the hard cases of the accuracy suite (``HARD_CASE_FIELDS``,
``pipeline.accuracy_suite``): heavy haze, early snow, shifted harvests, a shadowed slope, a
shrinking reservoir, a new road, a burn scar, missing years, lying offset metadata, a full-pixel
shift per year, mid-season construction and Landsat years. All are off by default and left out of
every dump while off: the demo's pixels, truth, cache key and config hash are unchanged.

The modules, from the parameters to the file-writing edge:

- ``params``: ``ScenarioParams`` and ``GENERATOR_VERSION`` (pydantic only: cheap to import);
- ``sites``: the demo sites (GeoJSON and ``Site`` objects);
- ``layout``: which surface lies where per site and year-state, the truth geometries (shapely);
- ``seeds``: the deterministic random streams;
- ``schedule``: acquisition dates, platform, processing baseline, sun (pure);
- ``spectra``: surface and atmospheric spectra, phenology;
- ``arrays``: block means and smooth random fields;
- ``atmosphere``: clouds, shadows, haze, snow, swath edges and the SCL;
- ``render``: one scene as DN arrays (pure);
- ``stac``: item JSON and the static catalog;
- ``truth``: truth files, written and read back;
- ``build``: ``build_scenario``, the file-writing edge (COGs, catalog, truth);
- ``source``: ``SyntheticSource``, which caches a build and searches it with
  ``StaticCatalogSource``.

The names below are imported on first use, so ``from pipeline.sources.synthetic import
ScenarioParams`` loads neither numpy nor rasterio. To monkeypatch, patch the module that uses a
name (e.g. ``pipeline.sources.synthetic.source.build_scenario``), not this package.

Spectra, phenology and cloud climatology are judgement informed by DOMAIN.md, not measurements.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.sources.synthetic.arrays import block_fractions, block_mean
    from pipeline.sources.synthetic.build import Progress, build_scenario
    from pipeline.sources.synthetic.layout import (
        Feature,
        Surface,
        dated_change,
        layout_key,
        site_features,
        site_layout,
        state_year,
        truth_geometries,
    )
    from pipeline.sources.synthetic.params import (
        DEMO_SITE_IDS,
        GENERATOR_VERSION,
        HARD_CASE_FIELDS,
        ScenarioParams,
    )
    from pipeline.sources.synthetic.render import SceneMeta, render_scene, scene_grid
    from pipeline.sources.synthetic.schedule import (
        AUTUMN_WINDOW,
        acquisition_dates,
        baseline_of,
        boa_offset_dn,
        platform_of,
        scene_platform,
        sun_position,
    )
    from pipeline.sources.synthetic.sites import DEMO_SITES_GEOJSON, demo_sites
    from pipeline.sources.synthetic.source import SyntheticSource
    from pipeline.sources.synthetic.spectra import SPECTRAL_BANDS, surface_spectra
    from pipeline.sources.synthetic.stac import COLLECTION_ID, item_id
    from pipeline.sources.synthetic.truth import (
        SiteTruth,
        read_truth,
        truth_collection,
        truth_text,
    )

_EXPORTS: dict[str, str] = {
    "block_fractions": "arrays",
    "block_mean": "arrays",
    "Progress": "build",
    "build_scenario": "build",
    "Feature": "layout",
    "Surface": "layout",
    "dated_change": "layout",
    "layout_key": "layout",
    "site_features": "layout",
    "site_layout": "layout",
    "state_year": "layout",
    "truth_geometries": "layout",
    "DEMO_SITE_IDS": "params",
    "GENERATOR_VERSION": "params",
    "HARD_CASE_FIELDS": "params",
    "ScenarioParams": "params",
    "SceneMeta": "render",
    "render_scene": "render",
    "scene_grid": "render",
    "AUTUMN_WINDOW": "schedule",
    "acquisition_dates": "schedule",
    "baseline_of": "schedule",
    "boa_offset_dn": "schedule",
    "platform_of": "schedule",
    "scene_platform": "schedule",
    "sun_position": "schedule",
    "DEMO_SITES_GEOJSON": "sites",
    "demo_sites": "sites",
    "SyntheticSource": "source",
    "SPECTRAL_BANDS": "spectra",
    "surface_spectra": "spectra",
    "COLLECTION_ID": "stac",
    "item_id": "stac",
    "SiteTruth": "truth",
    "read_truth": "truth",
    "truth_collection": "truth",
    "truth_text": "truth",
}

__all__ = [
    "AUTUMN_WINDOW",
    "COLLECTION_ID",
    "DEMO_SITES_GEOJSON",
    "DEMO_SITE_IDS",
    "GENERATOR_VERSION",
    "HARD_CASE_FIELDS",
    "SPECTRAL_BANDS",
    "Feature",
    "Progress",
    "ScenarioParams",
    "SceneMeta",
    "SiteTruth",
    "Surface",
    "SyntheticSource",
    "acquisition_dates",
    "baseline_of",
    "block_fractions",
    "block_mean",
    "boa_offset_dn",
    "build_scenario",
    "dated_change",
    "demo_sites",
    "item_id",
    "layout_key",
    "platform_of",
    "read_truth",
    "render_scene",
    "scene_grid",
    "scene_platform",
    "site_features",
    "site_layout",
    "state_year",
    "sun_position",
    "surface_spectra",
    "truth_collection",
    "truth_geometries",
    "truth_text",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
