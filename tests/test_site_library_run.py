"""`sitewatch run configs/dprk-sentinel2.yaml --sites ...` accepts every shipped site id, adjacent
zones included, against a real STAC API (pgstac + stac-fastapi on 127.0.0.1).

The API holds a Sentinel-2 collection with no scene over North Korea (the project has no real
imagery of it), so each site-year is searched, found empty and reported as "no-data": what is
tested is that every id resolves, grids, searches and reaches the outputs, and that the whole
camps too large for a 10 m grid are refused with the resolution that fits, and then run at it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.pgstac import PgstacServer

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.run import resolve_sites
from pipeline.sites import load_sites

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "dprk-sentinel2.yaml"
SITE_FILE = ROOT / "aoi" / "dprk_sites.geojson"
COLLECTION = "sentinel-2-l2a-site-library"  # its own id: the API is shared by test modules
YEAR = 2020


def empty_collection(cid: str) -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": cid,
        "description": "Sentinel-2 L2A, no scene over the site library",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["2015-06-23T00:00:00Z", None]]},
        },
        "links": [],
    }


@pytest.fixture(scope="module")
def local_config(
    pgstac_api: PgstacServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """configs/dprk-sentinel2.yaml pointed at the local API, with the grid limit of a
    whole-grid read (4 Mpx), so that the refusal of the largest camps and their rerun at a
    coarser grid are exercised (read by chunks, the default 12 Mpx lets them run at 10 m)."""
    pgstac_api.load([empty_collection(COLLECTION)], [])
    folder = tmp_path_factory.mktemp("library")
    raw = yaml.safe_load(CONFIG.read_text())
    raw["sites"] = str(SITE_FILE)
    raw["source"]["url"] = pgstac_api.url
    raw["source"]["collections"] = [COLLECTION]
    raw["output_dir"] = str(folder / "runs")
    raw["cache_dir"] = str(folder / "cache")
    raw["limits"] = {**raw.get("limits", {}), "max_grid_pixels": 4_000_000}
    path = folder / "dprk-sentinel2.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path, raw


def all_ids(config: Path) -> list[str]:
    return [s.id for s in resolve_sites(load_config(config))]


def test_the_config_tracks_adjacent_zones_of_every_whole_camp(
    local_config: tuple[Path, dict[str, Any]],
) -> None:
    path, _raw = local_config
    shipped = load_sites(SITE_FILE)
    ids = all_ids(path)
    camps = [s.id for s in shipped if s.kind in ("kwanliso", "kyohwaso") and s.parent is None]
    assert len(camps) >= 9
    assert {f"{c}-adjacent" for c in camps} <= set(ids)
    assert {s.id for s in shipped} <= set(ids)


def test_every_shipped_site_id_runs(
    local_config: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, raw = local_config
    config = load_config(path)
    ids = all_ids(path)
    limit = config.limits.max_grid_pixels
    sites = resolve_sites(config)
    too_big = [
        s.id
        for s in sites
        if (g := s.grid(config.grid.resolution_m, config.grid.buffer_m)).width * g.height > limit
    ]
    assert {"kwanliso-15", "kwanliso-16"} <= set(too_big)  # 5.0 and 10.7 Mpx at 10 m
    fitting = [i for i in ids if i not in too_big]

    out = tmp_path / "fitting"
    args = ["-q", "run", str(path), "--years", str(YEAR), "--out", str(out), "--sites"]
    assert main([*args, *fitting]) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["id"] for s in manifest["sites"]] == fitting
    with (out / "trends.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["site_id"] for r in rows] == fitting
    # no scene in the season, nor in the widened window
    assert {(r["flags"], r["footprint_ha"]) for r in rows} == {("no-data;widened-window", "")}
    text = capsys.readouterr().out
    assert all(i in text for i in fitting)

    # Each whole camp too large for 10 m is refused, naming it and the resolution that fits...
    for site_id in too_big:
        assert main([*args, site_id]) == 2
        err = capsys.readouterr().err
        assert f"site {site_id}: its grid is" in err
        assert "grid.resolution_m: 20 or more fits" in err.replace("\n", " ")
    # ...and runs at that resolution.
    coarse = {**raw, "grid": {"resolution_m": 20}}
    coarse_path = tmp_path / "coarse.yaml"
    coarse_path.write_text(yaml.safe_dump(coarse, sort_keys=False))
    out20 = tmp_path / "coarse"
    assert (
        main(["-q", "run", str(coarse_path), "--years", str(YEAR), "--out", str(out20),
              "--sites", *too_big])
        == 0
    )  # fmt: skip
    manifest = json.loads((out20 / "manifest.json").read_text())
    assert [s["id"] for s in manifest["sites"]] == too_big
    assert all(s["grid"]["width"] * s["grid"]["height"] <= limit for s in manifest["sites"])


def test_an_unknown_id_lists_what_is_available(
    local_config: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _raw = local_config
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "x"), "--sites", "camp-14"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "site id(s) ['camp-14'] not found; available (46):" in err
    assert "kwanliso-14-adjacent" in err
