"""`sitewatch compare`: band folders and multi-band rasters, alignment, outputs, real scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from pipeline.accuracy import binary_scores
from pipeline.cli import main
from pipeline.compare import compare
from pipeline.errors import InputRasterError

CRS = "EPSG:32651"
VEG = {"B02": 0.03, "B03": 0.06, "B04": 0.04, "B08": 0.35, "B11": 0.18, "B12": 0.09}
BUILT = {"B02": 0.12, "B03": 0.13, "B04": 0.14, "B08": 0.18, "B11": 0.22, "B12": 0.20}
TEN_M = ("B02", "B03", "B04", "B08")


def scene(built: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Reflectance per band at 10 m: vegetation with a built area where ``built``."""
    rng = np.random.default_rng(seed)
    return {b: np.where(built, BUILT[b], VEG[b]) + rng.normal(0, 0.004, built.shape) for b in VEG}


def write_folder(folder: Path, bands: dict[str, np.ndarray], left: float, top: float) -> None:
    """Sentinel-2-like delivery: 10 m bands, 20 m bands (2x2 means), uint16 DN, nodata 0."""
    folder.mkdir(parents=True)
    for b, refl in bands.items():
        res = 10 if b in TEN_M else 20
        data = refl if res == 10 else refl.reshape(refl.shape[0] // 2, 2, -1, 2).mean(axis=(1, 3))
        dn = np.clip(np.round(data * 10000), 1, 65535).astype(np.uint16)
        profile = {
            "driver": "GTiff", "width": dn.shape[1], "height": dn.shape[0], "count": 1,
            "dtype": "uint16", "crs": CRS, "transform": Affine(res, 0, left, 0, -res, top), "nodata": 0,
        }  # fmt: skip
        with rasterio.open(folder / f"T51_20230915_{b}.tif", "w", **profile) as dst:
            dst.write(dn, 1)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    before_built = np.zeros((80, 80), bool)
    before_built[20:40, 20:40] = True
    after_built = before_built.copy()
    after_built[20:40, 40:56] = True  # 16 x 20 px = 3.2 ha of new footprint
    write_folder(tmp_path / "before", scene(before_built, 1), 300000, 4400000)
    # AFTER's extent is shifted by 4 px east and 2 px north: aligned by georeference.
    shifted = np.zeros((80, 80), bool)
    shifted[22:42, 16:52] = after_built[20:40, 20:56]
    write_folder(tmp_path / "after", scene(shifted, 2), 300040, 4400020)
    return tmp_path / "before", tmp_path / "after", after_built & ~before_built


def test_compare_band_folders_finds_expansion(
    pair: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    before, after, new = pair
    summary = compare(before, after, tmp_path / "out", scale=1e-4)
    with rasterio.open(tmp_path / "out" / "expansion.tif") as src:
        assert src.crs.to_string() == CRS
        assert src.res == (10, 10)
        assert src.transform.c == 300000
        assert src.shape == (80, 80)
        expansion = src.read(1)
    with rasterio.open(tmp_path / "out" / "change.tif") as src:
        change = src.read(1)
    assert set(np.unique(expansion)) <= {0, 1, 255}
    # AFTER starts 4 px east and 2 px north of BEFORE: BEFORE's west columns and south rows are
    # outside it and must be nodata; everything else is compared.
    assert (expansion[:, :4] == 255).all()
    assert (expansion[78:] == 255).all()
    assert (expansion[:78, 4:] != 255).all()
    valid = expansion != 255
    s = binary_scores(expansion == 1, new, valid)
    assert s.iou > 0.9
    assert (change[new & valid] == 1).mean() > 0.95
    assert summary["expansion_ha"] == pytest.approx(3.2, rel=0.1)
    doc = json.loads((tmp_path / "out" / "change.geojson").read_text())
    kinds = {f["properties"]["kind"] for f in doc["features"]}
    assert kinds == {"change", "expansion"}


def test_compare_identical_inputs_no_change(
    pair: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    before, _, _ = pair
    summary = compare(before, before, tmp_path / "same", scale=1e-4)
    assert summary["changed_pixels"] == 0
    assert summary["expansion_pixels"] == 0
    doc = json.loads((tmp_path / "same" / "change.geojson").read_text())
    assert doc["features"] == []


def test_compare_multiband_needs_band_order(tmp_path: Path) -> None:
    path = tmp_path / "stack.tif"
    profile = {
        "driver": "GTiff", "width": 16, "height": 16, "count": 6, "dtype": "uint16",
        "crs": CRS, "transform": Affine(10, 0, 0, 0, -10, 160),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:  # 256 px: over compare's minimum of 100
        dst.write(np.full((6, 16, 16), 1000, np.uint16))
    with pytest.raises(InputRasterError, match="needs --bands"):
        compare(path, path, tmp_path / "o")
    with pytest.raises(InputRasterError, match="lists 3 bands but the raster has 6"):
        compare(path, path, tmp_path / "o", bands=["B02", "B03", "B04"])
    with pytest.raises(InputRasterError, match="band id 'B99' unknown"):
        compare(path, path, tmp_path / "o", bands=["B02", "B03", "B04", "B08", "B11", "B99"])
    summary = compare(path, path, tmp_path / "o", bands=["B02", "B03", "B04", "B08", "B11", "B12"])
    assert summary["changed_pixels"] == 0


def test_compare_folder_missing_band(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "B02.tif").write_bytes(b"")
    with pytest.raises(InputRasterError, match=r"band files for \['green'"):
        compare(tmp_path / "f", tmp_path / "f", tmp_path / "o")
    with pytest.raises(InputRasterError, match="no such file"):
        compare(tmp_path / "nothing", tmp_path / "f", tmp_path / "o")


def test_cli_compare_prints_json_and_errors(
    pair: tuple[Path, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after, _ = pair
    assert (
        main(
            [
                "-q",
                "compare",
                str(before),
                str(after),
                "--out",
                str(tmp_path / "c"),
                "--scale",
                "0.0001",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["expansion_pixels"] > 0
    assert (
        main(["-q", "compare", str(tmp_path / "nope"), str(after), "--out", str(tmp_path / "c")])
        == 2
    )
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.realdata
def test_real_sentinel2_against_itself_no_change(real_data: Path, tmp_path: Path) -> None:
    folder = real_data / "sentinel2-l2a-29RKH-20200219"
    summary = compare(folder, folder, tmp_path / "s2", scale=1e-4)
    assert summary["valid_pixels"] > 1_000_000
    assert summary["masked_by_scl_pixels"] > 10_000  # the scene's cirrus and clouds (SCL 8-10)
    assert summary["changed_pixels"] == 0
    assert summary["expansion_pixels"] == 0
    with rasterio.open(tmp_path / "s2" / "change.tif") as src:
        assert src.res == (100, 100)  # BEFORE's finest grid (the 10 m bands, downsampled)
        assert src.crs.to_string() == "EPSG:32629"


@pytest.mark.realdata
def test_real_taizhou_pair_scores(real_data: Path, tmp_path: Path) -> None:
    folder = real_data / "taizhou-landsat-2000-2003"
    compare(
        folder / "2000TM", folder / "2003TM", tmp_path / "tz",
        bands=["blue", "green", "red", "nir", "swir16", "swir22"],
    )  # fmt: skip
    with rasterio.open(tmp_path / "tz" / "change.tif") as src:
        pred = src.read(1) == 1
    with rasterio.open(folder / "change.bmp") as src:
        changed = src.read(1) == 255
    with rasterio.open(folder / "unchanged.bmp") as src:
        unchanged = src.read(1) == 255
    s = binary_scores(pred, changed, changed | unchanged)
    assert s.f1 > 0.85, s
    assert s.kappa > 0.8, s


@pytest.mark.realdata
def test_smaller_alpha_trades_change_found_for_false_alarms_on_taizhou(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = real_data / "taizhou-landsat-2000-2003"
    bands = "blue,green,red,nir,swir16,swir22"
    with rasterio.open(folder / "change.bmp") as src:
        changed = src.read(1) == 255
    with rasterio.open(folder / "unchanged.bmp") as src:
        unchanged = src.read(1) == 255
    maps, summaries = {}, {}
    for name, extra in (("default", []), ("strict", ["--alpha", "1e-10"])):
        argv = ["compare", str(folder / "2000TM"), str(folder / "2003TM"), "--bands", bands]
        assert main([*argv, "--out", str(tmp_path / name), *extra]) == 0
        summaries[name] = json.loads(capsys.readouterr().out)
        with rasterio.open(tmp_path / name / "change.tif") as src:
            maps[name] = src.read(1) == 1
            assert src.tags()["alpha"] == ("0.001" if name == "default" else "1e-10")
    assert summaries["default"]["alpha"] == pytest.approx(1e-3)
    assert summaries["strict"]["alpha"] == pytest.approx(1e-10)
    # Stricter tests find less change, nearly all of it found by the default too (the mixed
    # edge rule can keep a pixel whose strong interior the stricter tests no longer see).
    strict, default = maps["strict"], maps["default"]
    assert strict.sum() < 0.8 * default.sum(), (strict.sum(), default.sum())
    assert (strict & default).sum() >= 0.97 * strict.sum(), (strict & ~default).sum()
    scores = {k: binary_scores(m, changed, changed | unchanged) for k, m in maps.items()}
    assert scores["strict"].recall < scores["default"].recall - 0.1, scores
    assert scores["strict"].precision >= scores["default"].precision, scores


WATER = {"B02": 0.06, "B03": 0.07, "B04": 0.045, "B08": 0.025, "B11": 0.008, "B12": 0.005}
MUD = {"B02": 0.075, "B03": 0.085, "B04": 0.095, "B08": 0.12, "B11": 0.14, "B12": 0.11}
FILL = {"B02": 0.10, "B03": 0.13, "B04": 0.165, "B08": 0.215, "B11": 0.30, "B12": 0.255}


def painted(layers: list[tuple[np.ndarray, dict[str, float]]], seed: int) -> dict[str, np.ndarray]:
    """Reflectance per band: vegetation, then each (mask, spectrum) painted over it, with
    noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for b in VEG:
        refl = np.full((80, 80), VEG[b])
        for mask, spectrum in layers:
            refl = np.where(mask, spectrum[b], refl)
        out[b] = refl + rng.normal(0, 0.004, refl.shape)
    return out


def test_compare_reservoir_drawn_down_is_not_expansion_reclaimed_land_is(
    tmp_path: Path,
) -> None:
    def box(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        m = np.zeros((80, 80), bool)
        m[r0:r1, c0:c1] = True
        return m

    built, reservoir = box(4, 24, 4, 30), box(40, 76, 10, 70)
    mud, fill, new_built = box(40, 52, 30, 70), box(40, 76, 10, 24), box(4, 24, 40, 60)
    before = painted([(built, BUILT), (reservoir, WATER)], seed=1)
    after = painted(
        [(built, BUILT), (new_built, BUILT), (reservoir, WATER), (mud, MUD), (fill, FILL)], seed=2
    )
    write_folder(tmp_path / "before", before, 300000, 4400000)
    write_folder(tmp_path / "after", after, 300000, 4400000)
    summary = compare(tmp_path / "before", tmp_path / "after", tmp_path / "out", scale=1e-4)
    with rasterio.open(tmp_path / "out" / "expansion.tif") as src:
        expansion = src.read(1) == 1
    with rasterio.open(tmp_path / "out" / "change.tif") as src:
        change = src.read(1) == 1
    # The drawn-down bed changed, and is wet: exposed bed, not expansion.
    assert change[mud].mean() > 0.9
    assert expansion[mud].mean() < 0.05, expansion[mud].mean()
    assert summary["exposed_bed_ha"]["after"] == pytest.approx(mud.sum() * 0.01, rel=0.2)
    assert summary["exposed_bed_ha"]["before"] == 0
    # Land reclaimed from the same water, dry and bright in the SWIR, and new built ground on
    # the fields both stay expansion.
    assert expansion[fill].mean() > 0.8, expansion[fill].mean()
    assert expansion[new_built].mean() > 0.8, expansion[new_built].mean()


def test_compare_geographic_crs_goes_to_utm_and_duplicate_bands_refused(tmp_path: Path) -> None:
    path = tmp_path / "wgs84.tif"
    profile = {
        "driver": "GTiff", "width": 16, "height": 16, "count": 6, "dtype": "uint16",
        "crs": "EPSG:4326", "transform": Affine(0.001, 0, 125, 0, -0.001, 39),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((6, 16, 16), 1000, np.uint16))
    # Geographic input: read onto the UTM zone of its centre at its ground resolution
    # (0.001 deg = 86.6 x 111.0 m at 38.99 N: 98 m), no longer refused.
    summary = compare(path, path, tmp_path / "o", bands=["B02", "B03", "B04", "B08", "B11", "B12"])
    assert summary["grid"]["crs"] == "EPSG:32651"
    assert summary["grid"]["resolution_m"] == 98
    assert summary["reprojected"] == {"before": True, "after": True}
    assert summary["changed_pixels"] == 0
    folder = tmp_path / "dup"
    folder.mkdir()
    for name in ("B02.tif", "T51_B02.jp2", "B10.tif"):
        (folder / name).write_bytes(b"")
    with pytest.raises(InputRasterError, match="two files for band B02"):
        compare(folder, folder, tmp_path / "o")


def test_compare_masks_scl_clouds(pair: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    before, after, _ = pair
    scl = np.full((40, 40), 4, np.uint8)  # 20 m, like Sentinel-2
    scl[30:34, 30:34] = 9  # a cloud: 80 x 80 m, dilated by 150 m
    profile = {
        "driver": "GTiff", "width": 40, "height": 40, "count": 1, "dtype": "uint8",
        "crs": CRS, "transform": Affine(20, 0, 300000, 0, -20, 4400000), "nodata": 0,
    }  # fmt: skip
    with rasterio.open(before / "T51_20230915_SCL.tif", "w", **profile) as dst:
        dst.write(scl, 1)
    summary = compare(before, after, tmp_path / "o", scale=1e-4)
    with rasterio.open(tmp_path / "o" / "change.tif") as src:
        change = src.read(1)
    assert (change[60:68, 60:68] == 255).all()  # under the cloud
    assert (change[60:68, 45] == 255).all()  # within the 150 m dilation
    assert change[10, 10] != 255
    assert summary["masked_by_scl_pixels"] > 8 * 8
