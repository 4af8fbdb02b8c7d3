"""Orchestration on a small synthetic scenario: resume after a kill, a bad scene skipped and
recorded, the CLI's run and config commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import box
from test_export import assert_parquet_matches_csv

from pipeline import run as run_module
from pipeline import tasks as tasks_module
from pipeline.cli import main
from pipeline.config import RunConfig, load_config
from pipeline.export import sha256_file
from pipeline.sites import load_sites
from pipeline.sources.synthetic import DEMO_SITES_GEOJSON
from pipeline.tasks import SiteYearTask

ROOT = Path(__file__).resolve().parents[1]
TABLES = (
    "footprints.geojson",
    "expansion.geojson",
    "stockpiles.geojson",
    "trends.csv",
    "trends.parquet",
    "trend_summary.csv",
)


def small_config(tmp: Path, cache: Path) -> Path:
    sites = tmp / "sites.geojson"
    sites.write_text(json.dumps(DEMO_SITES_GEOJSON))
    config = {
        "name": "small",
        "sites": "sites.geojson",
        "site_ids": ["demo-control"],
        "years": {"start": 2021, "end": 2022},
        "source": {
            "kind": "synthetic",
            "scenario": {
                "seed": 7,
                "start_year": 2021,
                "end_year": 2022,
                "sites": ["demo-control"],
                "acquisitions_per_year": [12, 14],
                "autumn_min_acquisitions": 6,
            },
        },
        "cache_dir": str(cache),
        "write_rasters": False,
    }
    path = tmp / "small.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> tuple[RunConfig, Path]:
    tmp = tmp_path_factory.mktemp("first")
    config = load_config(small_config(tmp, cache))
    out = tmp / "out"
    run_module.run(config, out)
    return config, out


class Killed(Exception):
    """Stands for a kill once every site-year is done (what the work folder then holds)."""


def interrupted_run(config: RunConfig, out: Path, **kwargs: Any) -> None:
    """A run stopped during export: its site-years stay in the work folder, ``out`` untouched."""

    def killed(*_args: Any, **_kwargs: Any) -> None:
        raise Killed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "export_run", killed)
        with pytest.raises(Killed):
            run_module.run(config, out, **kwargs)


def test_killed_run_resumes_without_recomputing(
    first: tuple[RunConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, out = first
    assert not run_module.work_dir(out).exists()  # pruned after success
    resumed = tmp_path / "out"
    interrupted_run(config, resumed)
    assert not resumed.exists()
    assert list(run_module.work_dir(resumed).glob("*.json"))

    def must_not_run(*_args: Any) -> None:
        raise AssertionError("a finished site-year was computed again")

    monkeypatch.setattr(tasks_module, "observe", must_not_run)
    run_module.run(config, resumed)
    for name in TABLES:
        assert (resumed / name).read_bytes() == (out / name).read_bytes(), name
    assert not run_module.work_dir(resumed).exists()


def test_changed_config_does_not_reuse_work(first: tuple[RunConfig, Path], tmp_path: Path) -> None:
    config, _out = first
    interrupted_run(config, tmp_path / "out")
    changed = config.model_copy(
        update={"boundaries": config.boundaries.model_copy(update={"min_mapping_unit_ha": 1.0})}
    )
    calls: list[int] = []
    original = tasks_module.observe

    def counting(task: SiteYearTask) -> Any:
        # The first pass; a year found off its site's frame is made again resampled onto it.
        if task.params.year_shift is None:
            calls.append(1)
        return original(task)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks_module, "observe", counting)
        run_module.run(changed, tmp_path / "out")
    assert len(calls) == 2


def test_trend_only_change_reuses_every_site_year(
    first: tuple[RunConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resume key holds what a site-year is made of, not the whole config: a change to the
    trend statistics or the change-detection opening reads and composites nothing again."""
    config, _out = first
    interrupted_run(config, tmp_path / "out")
    changed = config.model_copy(
        update={
            "trends": config.trends.model_copy(update={"min_years": 3, "alpha": 0.1}),
            "change": config.change.model_copy(update={"opening_px": 0}),
        }
    )

    def must_not_run(*_args: Any) -> None:
        raise AssertionError("a site-year was recomputed for a trend-only change")

    monkeypatch.setattr(tasks_module, "observe", must_not_run)
    run_module.run(changed, tmp_path / "out")
    assert (tmp_path / "out" / "trend_summary.csv").is_file()


def test_trends_parquet_is_listed_and_matches_the_csv(first: tuple[RunConfig, Path]) -> None:
    _config, out = first
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    assert listed["trends.parquet"] == sha256_file(out / "trends.parquet")
    assert_parquet_matches_csv(out / "trends.parquet", out / "trends.csv")
    frame = pd.read_parquet(out / "trends.parquet")
    assert frame["year"].tolist() == [2021, 2022]
    assert frame["interval_basis"].tolist() == ["edge", "edge"]
    last = frame.iloc[1]  # 2022 against 2021: the kind agrees with the net change's test
    net, pm = last["net_change_ha"], last["net_change_pm_ha"]
    assert last["net_change_significant"] == (abs(net) > pm)
    if abs(net) > pm:
        assert last["change_kind"] == ("expansion" if net > 0 else "contraction")
    else:
        assert last["change_kind"] in {"relocation", "gross change only", "no significant change"}


def test_reference_samples_put_sample_intervals_in_the_trend_table(
    first: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    """``trends.reference_samples``: a sample drawn from the run and labelled as the map says
    (a perfect map) gives sample-based areas equal to the mapped ones, flagged ``sample``, and
    the file's hash in the manifest."""
    config, _out = first
    out = tmp_path / "out"
    run_module.run(config.model_copy(update={"write_rasters": True}), out)  # sample needs them
    samples = tmp_path / "samples.gpkg"
    assert main(["-q", "sample", str(out), "--out", str(samples), "--seed", "3"]) == 0
    frame = gpd.read_file(samples, layer="samples")
    frame["label"] = frame["stratum"]
    frame.to_file(samples, layer="samples", driver="GPKG")
    cfg = config.model_copy(
        update={
            "write_rasters": True,
            "trends": config.trends.model_copy(update={"reference_samples": samples}),
        }
    )
    run_module.run(cfg, out)
    trends = pd.read_csv(out / "trends.csv")
    assert trends["interval_basis"].tolist() == ["sample", "sample"]
    assert trends["footprint_sample_ha"].tolist() == pytest.approx(
        trends["footprint_ha"].tolist(), abs=1e-3
    )
    assert trends["coal_sample_ha"].tolist() == pytest.approx(trends["coal_ha"].tolist(), abs=1e-3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reference_samples"]["sha256"] == sha256_file(samples)


def test_bad_scene_is_skipped_and_recorded(tmp_path: Path, cache: Path) -> None:
    own_cache = tmp_path / "cache"
    shutil.copytree(cache, own_cache)
    config = load_config(small_config(tmp_path, own_cache))
    source, _ = run_module.make_source(config)
    (site,) = load_sites(config.sites, ["demo-control"])
    start, end = config.season.window(2021)
    victim = source.search(site, start, end)[0]
    Path(victim.assets["red"].href).write_bytes(b"not a tiff")  # a corrupt download
    result = run_module.run(config, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    scenes = manifest["sites"][0]["years"][0]["scenes"]
    bad = [s for s in scenes if s["scene_id"] == victim.id]
    assert len(bad) == 1
    assert "read failed" in bad[0]["skipped"]
    assert result.sites[0].years[0].composite is not None  # the year still has its composite
    trends = (tmp_path / "out" / "trends.csv").read_text().splitlines()
    assert "scenes-skipped" in trends[1]


def test_cli_config_show_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["config", "show", str(ROOT / "configs" / "demo.yaml")]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["classify"]["coal"]["min_frequency"] == 0.5
    assert shown["season"]["start"] == "09-01"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsites: s.geojson\nyears: {start: 2020, end: 2021}\nwokers: 2\n")
    assert main(["config", "show", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err
    assert "wokers: unknown key" in err


def test_cli_run_prints_report(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = small_config(tmp_path, cache)
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "o"), "--years", "2022"]) == 0
    text = capsys.readouterr().out
    assert "demo-control" in text
    assert "2022" in text
    assert "2021" not in text.split("demo-control", 1)[1]
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "o"), "--years", "1999"]) == 2
    assert "outside the config's years" in capsys.readouterr().err


def test_large_grid_reads_composites_on_demand_with_the_same_outputs(
    first: tuple[RunConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``ON_DEMAND_PIXELS`` the driver keeps a site-year's composite and coal frequency
    on disk and reads them when used: the same bytes out, and the arrays stay readable from the
    result after the run has pruned its work folder."""
    config, out = first
    monkeypatch.setattr(run_module, "ON_DEMAND_PIXELS", 0)
    result = run_module.run(config, tmp_path / "out")
    assert not run_module.work_dir(tmp_path / "out").exists()
    for name in (*TABLES, "manifest.json"):
        assert (tmp_path / "out" / name).read_bytes() == (out / name).read_bytes(), name
    seen = [sy for sy in result.sites[0].years if sy.composite is not None]
    assert seen
    for sy in seen:
        # A co-registered year reads its stored composite through the move.
        stored = getattr(sy.composite, "_base", sy.composite)
        assert type(stored).__name__ == "StoredComposite"
        assert sy.composite.reflectance.shape[1:] == sy.footprint.shape
        assert sy.coal is not None
        assert sy.coal.frequency.shape == sy.footprint.shape
        assert sy.sun is not None
        assert type(getattr(sy.sun, "_base", sy.sun)).__name__ == "StoredSunResponse"
        assert sy.sun.trend.shape == sy.footprint.shape


def test_supervised_mode_trains_on_polygons_and_records_the_model(
    first: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    """``classify.mode: supervised``: a model trained on polygons drawn on a season composite
    maps the site; the manifest records the training file, its hash and the classes."""
    config, out = first
    mapped = gpd.read_file(out / "footprints.geojson")
    utm = mapped.estimate_utm_crs()
    footprint = mapped[mapped["year"] == 2021].to_crs(utm).geometry.iloc[0]
    site = next(s for s in load_sites(config.sites) if s.id == "demo-control").geometry
    site_utm = gpd.GeoSeries([site], crs="EPSG:4326").to_crs(utm).iloc[0]
    # An analyst's polygons: inside the mapped footprint, and squares of other ground.
    inside = footprint.buffer(-20.0)
    assert inside.area > 5_000
    x0, y0, x1, y1 = site_utm.bounds
    squares = [
        box(x, y, x + 60.0, y + 60.0)
        for x in np.linspace(x0 + 50, x1 - 110, 4)
        for y in np.linspace(y0 + 50, y1 - 110, 4)
    ]
    others = [sq for sq in squares if not sq.intersects(footprint.buffer(60.0))]
    assert len(others) >= 4
    polygons = gpd.GeoDataFrame(
        {"class": ["footprint"] + ["other"] * len(others), "year": [2021] * (1 + len(others))},
        geometry=[inside, *others],
        crs=utm,
    )
    training = tmp_path / "training.gpkg"
    polygons.to_file(training, layer="training", driver="GPKG")
    classify = {**config.classify.model_dump(), "mode": "supervised", "training": training}
    supervised = config.updated(classify=classify)
    run_module.run(supervised, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    recorded = manifest["classification"]
    assert recorded["mode"] == "supervised"
    assert recorded["training_sha256"] == sha256_file(training)
    assert recorded["classes"]
    assert json.loads((out / "manifest.json").read_text())["classification"] == {"mode": "rules"}
    found = gpd.read_file(tmp_path / "out" / "footprints.geojson").to_crs(utm)
    found_2021 = found[found["year"] == 2021].geometry.iloc[0]
    # The model finds the ground it was shown (not the polygons themselves: trained on a sample).
    assert found_2021.intersection(inside).area > 0.8 * inside.area
    assert manifest["config_hash"] != json.loads((out / "manifest.json").read_text())["config_hash"]


def test_chunked_run_gives_the_same_outputs_and_shows_progress_within_tasks(
    first: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    """The site read by 64 px chunks: every output byte-identical to the whole-grid run; the
    progress display hears of chunks and scenes while a site-year is still running."""
    config, out = first
    chunked = config.updated(grid={**config.grid.model_dump(), "chunk_px": 64})
    heard: list[tuple[str, int, int]] = []
    run_module.run(chunked, tmp_path / "out", progress=lambda *a: heard.append(a))
    for name in (*TABLES, "manifest.json"):
        if name != "manifest.json":
            assert (tmp_path / "out" / name).read_bytes() == (out / name).read_bytes(), name
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    reference = json.loads((out / "manifest.json").read_text())
    assert manifest["config_hash"] == reference["config_hash"]  # chunking is not a result
    assert manifest["outputs"] == reference["outputs"]
    first_done = next(i for i, (what, done, _) in enumerate(heard) if what == "site-years" and done)
    during = {what for what, done, _ in heard[:first_done] if done}
    assert "chunks" in during
    chunk_totals = {total for what, _, total in heard if what == "chunks"}
    assert len(chunk_totals) == 1
    assert max(done for what, done, _ in heard if what == "chunks") == chunk_totals.pop() > 2
