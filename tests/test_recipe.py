"""The shared classification recipe (``recipe.classify``): one answer for ``run`` and
``compare``, its defaults equal to a default run's, and what a resumed run restores."""

from __future__ import annotations

import inspect
import json
from dataclasses import fields, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline import classify as classify_module
from pipeline import terrain as terrain_module
from pipeline.composite import median_composite
from pipeline.demo import demo_config
from pipeline.recipe import (
    Look,
    RecipeParams,
    classify,
    classify_single_image,
    look_record,
    site_year,
)
from pipeline.results import site_year_arrays, site_year_from_stored, site_year_record
from pipeline.run import recipe_params

# (blue, green, red, nir, swir16, swir22)
FOREST = [0.025, 0.050, 0.028, 0.340, 0.170, 0.080]
CROP = [0.030, 0.070, 0.040, 0.420, 0.220, 0.100]
SOIL = [0.070, 0.095, 0.120, 0.180, 0.260, 0.205]
YARD = [0.100, 0.130, 0.165, 0.215, 0.300, 0.255]
COAL = [0.040, 0.042, 0.044, 0.050, 0.056, 0.058]
PIXEL_HA = 0.01  # 10 m pixels: the 0.25 ha minimum mapping unit is 25 pixels


def scene(shape: tuple[int, int] = (60, 60), field: list[float] = SOIL) -> np.ndarray:
    """Forest with a yard (20 x 20), a coal pile on it (8 x 8), a field (15 x 15), a road
    (2 pixels wide) and a 4 x 4 bare speck under the mapping unit."""
    img = np.empty((6, *shape), np.float32)
    img[:] = np.array(FOREST, np.float32)[:, None, None]

    def paint(rows: slice, cols: slice, spectrum: list[float]) -> None:
        img[:, rows, cols] = np.array(spectrum, np.float32)[:, None, None]

    paint(slice(5, 25), slice(5, 25), YARD)
    paint(slice(10, 18), slice(10, 18), COAL)
    paint(slice(35, 50), slice(35, 50), field)
    paint(slice(55, 57), slice(0, 60), YARD)
    paint(slice(35, 39), slice(5, 9), SOIL)
    return img


def test_recipe_defaults_are_a_default_runs(tmp_path: Path) -> None:
    """``RecipeParams()`` (what ``compare`` and notebooks get) decides as a default run does."""
    run = recipe_params(demo_config(tmp_path / "cfg"))
    default = RecipeParams()
    for f in fields(RecipeParams):
        if f.name not in ("footprint_rule", "coal_rule", "terrain_rule"):
            assert getattr(default, f.name) == getattr(run, f.name), f.name
    # The run spells its thresholds out; the stages' own defaults are the same values.
    stages = {
        "footprint_rule": (
            classify_module.footprint_mask,
            classify_module.crop_signs,
            classify_module.is_green,
        ),
        "coal_rule": (classify_module.coal_like, classify_module.coal_observation),
        "terrain_rule": (terrain_module.shadowed,),
    }
    for rule, functions in stages.items():
        assert getattr(default, rule) == {}
        for name, value in getattr(run, rule).items():
            for function in functions:
                param = inspect.signature(function).parameters.get(name)
                if param is not None and param.default is not inspect.Parameter.empty:
                    assert param.default == value, (function.__name__, name)


def test_single_image_recipe() -> None:
    img = scene()
    valid = np.ones(img.shape[1:], bool)
    footprint, coal = classify_single_image(img, valid, PIXEL_HA)
    # The coal rule counts the single look (frequency 1 of 1); coal is footprint.
    assert coal[10:18, 10:18].all()
    assert coal.sum() == 64
    assert footprint[5:25, 5:25].all()
    assert footprint[35:50, 35:50].all()  # one date cannot tell a harvested field from bare ground
    assert not footprint[35:39, 5:9].any()  # under the minimum mapping unit
    assert not footprint[55:57].any()  # thinner than the opening
    assert not footprint[:, 27:33].any()  # forest
    # Nothing is mapped where the image is not valid, nor where it has no data.
    valid[:, :15] = False
    img[:, 20:22, :] = np.nan
    footprint, coal = classify_single_image(img, valid, PIXEL_HA)
    assert not footprint[:, :15].any()
    assert not footprint[20:22].any()
    assert footprint[5:20, 15:25].all()


def test_single_image_is_the_recipe_without_greenness() -> None:
    img = scene()
    valid = np.ones(img.shape[1:], bool)
    params = replace(RecipeParams(), min_mapping_unit_ha=0.1)
    footprint, coal = classify_single_image(img, valid, PIXEL_HA, params)
    full = classify(img, valid=valid, pixel_area_ha=PIXEL_HA, params=params)
    np.testing.assert_array_equal(footprint, full.footprint)
    np.testing.assert_array_equal(coal, full.coal_mask)
    assert full.green_excluded is None
    assert footprint[35:39, 5:9].all()  # 16 pixels: over a 0.1 ha unit


def looks(year: int) -> list[Look]:
    """A look every 10 days from 1 June to 15 November: the field is a crop harvested on 1
    October, so green until then."""
    out = []
    day = date(year, 6, 1)
    while day <= date(year, 11, 15):
        img = scene(field=CROP if day < date(year, 10, 1) else SOIL)
        record = look_record(f"S{day:%Y%m%d}", f"{day.isoformat()}T02:00:00+00:00")
        out.append(Look(day, img, np.ones(img.shape[1:], bool), record))
        day += timedelta(days=10)
    return out


def test_run_and_compare_share_the_recipe() -> None:
    """A site-year is ``classify`` on its season composite with greenness and coal frequency;
    a single late-season image of the same ground maps the same, but for the harvested field
    that only the greenness can keep out."""
    year_looks = looks(2020)
    area = np.ones((60, 60), bool)
    sy = site_year("s", 2020, year_looks, [], area, PIXEL_HA, RecipeParams())
    assert sy.composite is not None
    assert not sy.footprint[35:50, 35:50].any()  # green in summer: a field
    assert sy.evidence is not None
    assert sy.evidence.field[35:50, 35:50].all()
    assert sy.evidence.vegetated[35:50, 35:50].all()
    assert not sy.evidence.ambiguous.any()  # harvested on time: not ambiguous
    last = year_looks[-1].reflectance
    footprint, coal = classify_single_image(last, area, PIXEL_HA)
    np.testing.assert_array_equal(coal, sy.coal_mask)
    field = np.zeros_like(area)
    field[35:50, 35:50] = True
    np.testing.assert_array_equal(footprint & ~field, sy.footprint)
    # The composite is the median of the season's looks: the same image here.
    stack = np.stack([o.reflectance for o in year_looks if o.day >= date(2020, 9, 1)])
    np.testing.assert_allclose(
        median_composite(stack, np.ones((len(stack), 60, 60), bool)).reflectance,
        sy.composite.reflectance,
    )


def stored(record: dict[str, Any]) -> dict[str, Any]:
    """The record as a resume file holds it (through JSON)."""
    out: dict[str, Any] = json.loads(json.dumps(record))
    return out


def test_resume_restores_the_season_evidence() -> None:
    sy = site_year("s", 2020, looks(2020), [], np.ones((60, 60), bool), PIXEL_HA, RecipeParams())
    assert sy.evidence is not None
    ambiguous = np.zeros((60, 60), bool)
    ambiguous[40:45, 40:45] = True
    redated = np.zeros((60, 60), bool)
    redated[0, 0] = True
    sy = replace(sy, evidence=replace(sy.evidence, ambiguous=ambiguous), redated=redated)
    arrays = site_year_arrays(sy)
    back = site_year_from_stored(stored(site_year_record(sy)), arrays)
    assert back.evidence is not None
    for name in ("vegetated", "field", "ambiguous", "unconfirmed"):
        np.testing.assert_array_equal(getattr(back.evidence, name), getattr(sy.evidence, name))
    np.testing.assert_array_equal(back.evidence.ambiguous, ambiguous)
    assert back.redated is not None
    np.testing.assert_array_equal(back.redated, redated)
    assert back.unseen_fields is None
    np.testing.assert_array_equal(back.footprint, sy.footprint)
    assert sy.sun is not None
    assert back.sun is not None
    for mine, theirs in zip(back.sun.arrays(), sy.sun.arrays(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_record_stored_before_the_season_evidence_still_loads() -> None:
    sy = site_year("s", 2020, looks(2020), [], np.ones((60, 60), bool), PIXEL_HA, RecipeParams())
    arrays = {k: v for k, v in site_year_arrays(sy).items() if not k.startswith("evidence_")}
    record = site_year_record(sy)
    for key in ("has_evidence", "has_redated", "has_unseen_fields", "has_sun"):
        del record[key]
    back = site_year_from_stored(stored(record), arrays)
    assert back.evidence is None  # unknown: analysis leaves the year as it is and flags it
    assert back.sun is None  # unknown: the years pool none
    np.testing.assert_array_equal(back.footprint, sy.footprint)


@pytest.mark.parametrize("n_flags", [0, 2])
def test_crop_signs_need_one_harvest_flag_per_look(n_flags: int) -> None:
    stack = np.stack([scene(), scene(), scene()])
    green = np.zeros((60, 60), np.float32)
    with pytest.raises(ValueError, match="do not describe the same looks"):
        classify_module.crop_signs(stack, np.ones((3, 60, 60), bool), green, [True] * n_flags)
