"""The read edge: windowed reads onto a site grid, radiometry, failures as SceneReadError."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from pipeline.errors import SceneReadError
from pipeline.grid import Grid
from pipeline.masking import MaskReason, MaskRules
from pipeline.sources.base import Asset, Scene
from pipeline.sources.read import ReadSettings, read_scene, read_scenes
from pipeline.sources.sensors import BANDS, s2_radiometry

CRS = "EPSG:32651"


def write_cog(path: Path, data: np.ndarray, res: float, left: float, top: float) -> str:
    profile = {
        "driver": "COG", "width": data.shape[1], "height": data.shape[0], "count": 1,
        "dtype": data.dtype.name, "crs": CRS, "transform": Affine(res, 0, left, 0, -res, top),
        "nodata": 0,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return str(path)


def _asset(path: Path, data: np.ndarray, res: float, left: float, top: float) -> Asset:
    return Asset(write_cog(path, data, res, left, top), (res, 0, left, 0, -res, top), data.shape)


def make_scene(tmp_path: Path, baseline: str, dn10: int = 1500) -> Scene:
    """A 100 x 100 px (10 m) scene; the 20 m bands hold a left/right step."""
    assets: dict[str, Asset] = {}
    for b in ("blue", "green", "red", "nir"):
        assets[b] = _asset(
            tmp_path / f"{b}.tif", np.full((100, 100), dn10, np.uint16), 10, 500000, 4400000
        )
    step = np.full((50, 50), 2000, np.uint16)
    step[:, 25:] = 3000
    for b in ("swir16", "swir22"):
        assets[b] = _asset(tmp_path / f"{b}.tif", step, 20, 500000, 4400000)
    scl = np.full((50, 50), 4, np.uint8)
    scl[:10] = 9
    assets["scl"] = _asset(tmp_path / "scl.tif", scl, 20, 500000, 4400000)
    props = {"s2:processing_baseline": baseline, "earthsearch:boa_offset_applied": False}
    return Scene("S2X_TEST", "sentinel-2-l2a", datetime(2023, 9, 15, tzinfo=UTC), assets, props)


def test_reads_window_with_offset(tmp_path: Path) -> None:
    scene = make_scene(tmp_path, "05.09")
    grid = Grid(CRS, Affine(10, 0, 500200, 0, -10, 4399800), 40, 30)  # a window inside
    obs = read_scene(scene, grid)
    assert obs.reflectance.shape == (len(BANDS), 30, 40)
    assert obs.radiometry.offset_dn == -1000
    np.testing.assert_allclose(obs.reflectance[0], 0.05, atol=1e-6)  # (1500 - 1000) / 1e4
    swir = obs.reflectance[BANDS.index("swir16")]
    assert swir[0, 0] == pytest.approx(0.1)
    assert swir[0, -1] == pytest.approx(0.2)
    assert (obs.reasons == MaskReason.CLEAR).all()  # cloud rows are outside the window


def test_pre_2022_baseline_has_no_offset(tmp_path: Path) -> None:
    obs = read_scene(
        make_scene(tmp_path, "03.01"), Grid(CRS, Affine(10, 0, 500000, 0, -10, 4400000), 10, 10)
    )
    np.testing.assert_allclose(obs.reflectance[0], 0.15, atol=1e-6)


def test_grid_partly_outside_is_nan(tmp_path: Path) -> None:
    grid = Grid(CRS, Affine(10, 0, 499900, 0, -10, 4400000), 20, 5)  # 10 px west of the scene
    obs = read_scene(make_scene(tmp_path, "03.01"), grid)
    assert np.isnan(obs.reflectance[:, :, :10]).all()
    assert np.isfinite(obs.reflectance[:, :, 10:]).all()


def test_failures_are_scene_read_errors(tmp_path: Path) -> None:
    scene = make_scene(tmp_path, "03.01")
    far = Grid(CRS, Affine(10, 0, 600000, 0, -10, 4400000), 10, 10)
    with pytest.raises(SceneReadError, match="no data over the site grid"):
        read_scene(scene, far)
    broken = Scene(
        scene.id,
        scene.collection,
        scene.datetime,
        {**scene.assets, "red": Asset(str(tmp_path / "gone.tif"))},
        scene.properties,
    )
    with pytest.raises(SceneReadError, match=r"S2X_TEST: asset red \(.*gone\.tif\): read failed"):
        read_scene(broken, far)
    partial = Scene(scene.id, scene.collection, scene.datetime, {"blue": scene.assets["blue"]}, {})
    with pytest.raises(SceneReadError, match=r"assets .* missing"):
        read_scene(partial, far)


@pytest.mark.parametrize(
    ("props", "offset"),
    [
        ({}, 0.0),
        ({"s2:processing_baseline": "02.14"}, 0.0),
        ({"s2:processing_baseline": "04.00"}, -1000.0),
        ({"s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": True}, 0.0),
    ],
)
def test_s2_offset_rule(props: dict[str, object], offset: float) -> None:
    assert s2_radiometry(props).offset_dn == offset


@pytest.mark.realdata
def test_real_sentinel2_l2a_scene_reads_with_its_scl(real_data: Path) -> None:
    """The real 29RKH L2A scene (COGs downsampled to 100 m, SCL at 200 m) through the Earth Search
    profile: reflectance in the physical range, masks exactly as the SCL classes say."""
    import json

    from pipeline.sources.base import item_crs, stac_asset

    folder = real_data / "sentinel2-l2a-29RKH-20200219"
    item = json.loads((folder / "S2A_29RKH_20200219_0_L2A.json").read_text(encoding="latin-1"))
    files = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11",
             "swir22": "B12", "scl": "SCL"}  # fmt: skip
    assets = {}
    for key, name in files.items():
        with rasterio.open(folder / f"{name}.tif") as src:  # the files' own lattice, not the JSON's
            transform = tuple(src.transform)[:6]
        asset = stac_asset(str(folder / f"{name}.tif"), item["assets"][key], item["properties"])
        assets[key] = Asset(asset.href, transform, None, asset.raster_bands)
    scene = Scene(item["id"], item["collection"], datetime(2020, 2, 19, tzinfo=UTC), assets,
                  item["properties"], "earth-search/sentinel-2-l2a", item_crs(item["properties"]))  # fmt: skip
    with rasterio.open(folder / "B02.tif") as src:
        grid = Grid(src.crs.to_string(), src.transform, src.width, src.height)  # its own lattice
        blue_dn = src.read(1).astype(float)
    obs = read_scene(scene, grid)
    assert obs.radiometry.offset_dn == 0  # baseline 02.14
    np.testing.assert_allclose(obs.reflectance[0], blue_dn * 1e-4, atol=1e-6)  # no shift
    ok = np.isfinite(obs.reflectance).all(axis=0)
    assert ok.mean() > 0.99
    assert np.percentile(obs.reflectance[:, ok], [0.1, 99.9]).tolist()[0] >= 0
    assert np.percentile(obs.reflectance[:, ok], 99.9) < 1.5
    with rasterio.open(folder / "SCL.tif") as src:
        scl = src.read(1)
    scl10 = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)  # 200 m onto 100 m
    reasons = obs.reasons
    assert np.isin(scl10, (8, 9)).sum() > 1000
    assert (scl10 == 10).sum() > 1000
    assert (reasons[np.isin(scl10, (8, 9))] == MaskReason.CLOUD).all()
    assert (reasons[scl10 == 10] == MaskReason.CIRRUS).all()
    assert (reasons[np.isin(scl10, (2, 3, 5, 6))] != MaskReason.CLEAR).sum() == (
        (reasons == MaskReason.CLOUD_BUFFER) & np.isin(scl10, (2, 3, 5, 6))
    ).sum()  # kept classes are clear unless near a cloud


@pytest.mark.realdata
def test_real_landsat_scene_through_its_usgs_stac_item(real_data: Path, tmp_path: Path) -> None:
    """The real LC08 C2 L2 scene through the USGS STAC item that came with it (asset hrefs
    pointed at the local files, as in a mirrored static catalog): the profile is chosen from the
    item, the grid keeps the scene's lattice, reflectance is DN x 0.0000275 - 0.2 on the same
    pixels, and QA_PIXEL bits decide the mask."""
    import json

    from pipeline.sources.catalog import StaticCatalogSource

    folder = real_data / "landsat-c2-l2-LC08-001062-20201031"
    name = "LC08_L2SP_001062_20201031_20201106_02_T2"
    item = json.loads((folder / f"{name}_SR_stac.json").read_text())
    for key, asset in item["assets"].items():
        local = folder / f"{name}_{key}"
        asset["href"] = str(local) if local.exists() else asset["href"]
    item["links"] = []
    (tmp_path / "item.json").write_text(json.dumps(item))
    catalog = {"type": "Catalog", "id": "mirror", "description": "d", "stac_version": "1.0.0",
               "links": [{"rel": "item", "href": "item.json"}]}  # fmt: skip
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    from shapely.geometry import box

    from pipeline.sites import Site

    site = Site("s", "s", "other", box(-65.3, -3.0, -65.0, -2.7), "test")
    (scene,) = StaticCatalogSource(tmp_path / "catalog.json").search(
        site, datetime(2020, 10, 31).date(), datetime(2020, 10, 31).date()
    )
    assert scene.profile == "usgs/landsat-c2l2-sr-oli"
    assert scene.platform == "landsat-8"
    with rasterio.open(folder / f"{name}_SR_B2.TIF") as src:
        window = ((30, 180), (180, 379))
        t = src.transform  # the window's transform on the scene's own (non-square) lattice
        transform = Affine(t.a, 0, t.c + 180 * t.a, 0, t.e, t.f + 30 * t.e)
        grid = Grid(src.crs.to_string(), transform, 199, 150)
        blue_dn = src.read(1, window=window).astype(float)
    with rasterio.open(folder / f"{name}_QA_PIXEL.TIF") as src:
        qa = src.read(1, window=window)
    obs = read_scene(scene, grid)
    assert obs.radiometry.offset_dn == pytest.approx(-0.2 / 2.75e-5)
    data = blue_dn > 0
    np.testing.assert_allclose(obs.reflectance[0][data], blue_dn[data] * 2.75e-5 - 0.2, atol=1e-6)
    assert np.isnan(obs.reflectance[0][~data]).all()
    assert (obs.reasons[(qa & 1) == 1] == MaskReason.NODATA).all()
    cloud = ((qa >> 3) & 1 == 1) & ((qa & 1) == 0) & data
    assert cloud.sum() > 1000
    assert (obs.reasons[cloud] == MaskReason.CLOUD).all()
    finite = obs.reflectance[:, data]
    assert np.nanpercentile(finite, 0.5) > -0.2
    assert np.nanpercentile(finite, 99.5) < 1.0


def test_remote_asset_that_would_be_fetched_whole_is_refused(
    tmp_path: Path, range_server: Any
) -> None:
    """One compressed 8 MB strip (an untiled file): a small window would fetch all of it."""
    from rasterio.enums import Resampling

    from pipeline.errors import LimitError
    from pipeline.sources.read import ReadSettings, read_chip

    data = np.full((2000, 2000), 1500, np.uint16)
    profile = {"driver": "GTiff", "width": 2000, "height": 2000, "count": 1, "dtype": "uint16",
               "crs": CRS, "transform": Affine(10, 0, 500000, 0, -10, 4400000), "nodata": 0,
               "tiled": False, "blockysize": 2000, "compress": "deflate"}  # fmt: skip
    with rasterio.open(tmp_path / "strip.tif", "w", **profile) as dst:
        dst.write(data, 1)
    server = range_server(tmp_path)
    href = f"/vsicurl/{server.url}/strip.tif"
    grid = Grid(CRS, Affine(10, 0, 500000, 0, -10, 4400000), 50, 50)
    with pytest.raises(LimitError, match=r"strip\.tif: reading the site would fetch 8 MB"):
        read_chip(href, grid, Resampling.bilinear, ReadSettings(max_fetch_mb=1))
    sent = server.stats()["total_bytes"]
    assert sent < 1_000_000  # refused from the header, before the strip was fetched
    ok = read_chip(href, grid, Resampling.bilinear, ReadSettings(max_fetch_mb=10))
    assert (ok == 1500).all()


def test_hrefs_are_restricted_and_secrets_redacted() -> None:
    from pipeline.errors import SourceError
    from pipeline.sources.base import gdal_href, redact

    assert gdal_href("s3://bucket/k.tif") == "/vsis3/bucket/k.tif"
    for bad in ("ftp://h/x.tif", "gs://b/x.tif", "/vsizip//tmp/a.zip/x.tif", "javascript:x"):
        with pytest.raises(SourceError, match="not allowed"):
            gdal_href(bad)
    text = redact("/vsicurl/https://me:hunter2@h.net/x.tif?se=2030&sig=SECRET failed")
    assert "SECRET" not in text
    assert "hunter2" not in text
    assert text.startswith("/vsicurl/https://h.net/x.tif?")


def test_scenes_read_at_once_give_what_one_at_a_time_gives(tmp_path: Path) -> None:
    """``read.threads``: the observations, their order and the skipped scenes (with reasons) do
    not depend on how many scenes are read at once."""
    scenes = []
    for k, (baseline, dn) in enumerate([("05.09", 1500), ("03.01", 900), ("04.00", 2100)] * 3):
        folder = tmp_path / f"s{k}"
        folder.mkdir()
        scene = make_scene(folder, baseline, dn)
        scenes.append(dataclasses.replace(scene, id=f"S2X_{k}"))
    broken = scenes[4]
    scenes[4] = dataclasses.replace(
        broken, assets={**broken.assets, "red": Asset(str(tmp_path / "gone.tif"))}
    )
    grid = Grid(CRS, Affine(10, 0, 500200, 0, -10, 4399800), 40, 30)
    results = [
        read_scenes(scenes, grid, MaskRules(), ReadSettings(threads=n, retries=1), None)
        for n in (1, 4)
    ]
    (one, skipped_one), (many, skipped_many) = results
    assert (
        [o.scene_id for o in one]
        == [o.scene_id for o in many]
        == [s.id for s in scenes if s is not scenes[4]]
    )
    for a, b in zip(one, many, strict=True):
        assert np.array_equal(a.reflectance, b.reflectance, equal_nan=True)
        assert np.array_equal(a.reasons, b.reasons)
        assert a.radiometry == b.radiometry
    assert [(s.id, r) for s, r in skipped_one] == [(s.id, r) for s, r in skipped_many]
    assert skipped_one[0][0].id == "S2X_4"


def test_gdal_warnings_that_quote_a_signed_url_are_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """GDAL's warnings reach the log through rasterio from any thread (``read.threads``) and
    quote the URL they failed on: the query string never reaches a handler."""
    import logging

    with caplog.at_level(logging.WARNING):
        logging.getLogger("rasterio._env").warning(
            "CPLE_AppDefined in HTTP response code on %s: 0",
            "http://127.0.0.1:9/blue.tif?sig=planted-SECRET&se=2030",
        )
    assert "planted-SECRET" not in caplog.text
    assert "http://127.0.0.1:9/blue.tif?<redacted>" in caplog.text
