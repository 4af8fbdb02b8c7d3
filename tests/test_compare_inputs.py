"""`sitewatch compare` on meaningless or awkward input: bad scale and offset, unreadable files,
no overlap, no data, geographic CRSs (issue 6, items 5 and 8); SAFE-style names and folders,
per-date radiometry on synthetic ground (issue 8; on real scenes: test_compare_radiometry)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from pipeline.cli import main
from pipeline.compare import MIN_VALID_PIXELS, compare
from pipeline.errors import InputRasterError, LimitError, OutputError

UTM = "EPSG:32651"
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
VEG = np.array([0.03, 0.06, 0.04, 0.35, 0.18, 0.09])
BUILT = np.array([0.12, 0.13, 0.14, 0.18, 0.22, 0.20])
# The ground: UTM 51N, around 124.3 E 39.0 N; built blocks with soft (sensor-blurred) edges.
X0, Y0 = 350_000.0, 4_320_000.0
BLOCKS = [(200.0, 300.0, 420.0, 500.0), (600.0, 150.0, 780.0, 260.0), (300.0, 650.0, 380.0, 900.0)]
TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
TO_LONLAT = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def built_fraction(x: np.ndarray, y: np.ndarray, blocks: list[Any]) -> np.ndarray:
    """0..1 built cover at UTM points: blocks (offsets from X0, Y0) with 8 m soft edges."""
    frac = np.zeros(x.shape)
    for left, bottom, right, top in blocks:
        dx = np.maximum(np.maximum(X0 + left - x, x - X0 - right), 0)
        dy = np.maximum(np.maximum(Y0 + bottom - y, y - Y0 - top), 0)
        inside = np.minimum(
            np.minimum(x - X0 - left, X0 + right - x), np.minimum(y - Y0 - bottom, Y0 + top - y)
        )
        d = np.where((dx > 0) | (dy > 0), np.hypot(dx, dy), -np.maximum(inside, 0))
        frac = np.maximum(frac, 1 / (1 + np.exp(d / 8.0)))
    return frac


def write_stack(
    path: Path, crs: str | None, transform: Affine, refl: np.ndarray, nodata: float | None = 0
) -> Path:
    """A 6-band uint16 DN raster (reflectance x 10000)."""
    dn = np.clip(np.round(refl * 10000), 0, 65535).astype(np.uint16)
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": dn.shape[2], "height": dn.shape[1], "count": dn.shape[0],
        "dtype": "uint16", "transform": transform, "nodata": nodata,
    }  # fmt: skip
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
    return path


def ground_image(
    path: Path,
    crs: str,
    transform: Affine,
    shape: tuple[int, int],
    seed: int,
    blocks: list[Any] = BLOCKS,
) -> Path:
    """The ground sampled at the pixel centres of a grid in ``crs``, plus 0.004 of noise."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    xs = transform.c + transform.a * (cols + 0.5)
    ys = transform.f + transform.e * (rows + 0.5)
    if crs != UTM:
        xs, ys = TO_UTM.transform(xs, ys)
    frac = built_fraction(np.asarray(xs), np.asarray(ys), blocks)
    rng = np.random.default_rng(seed)
    refl = VEG[:, None, None] + (BUILT - VEG)[:, None, None] * frac
    return write_stack(path, crs, transform, refl + rng.normal(0, 0.004, refl.shape))


def utm_image(path: Path, seed: int, blocks: list[Any] = BLOCKS) -> Path:
    """1 x 1 km at 10 m in UTM 51N."""
    return ground_image(path, UTM, Affine(10, 0, X0, 0, -10, Y0 + 1000), (100, 100), seed, blocks)


def geo_transform(shift_px: tuple[float, float] = (0.0, 0.0)) -> tuple[Affine, tuple[int, int]]:
    """A 0.0001-degree EPSG:4326 grid (8.6 x 11.1 m here) over the same square kilometre."""
    lon0, lat1 = TO_LONLAT.transform(X0, Y0 + 1000)
    lon1, lat0 = TO_LONLAT.transform(X0 + 1000, Y0)
    res = 0.0001
    left, top = lon0 + shift_px[0] * res, lat1 - shift_px[1] * res
    shape = (math.ceil((top - lat0) / res), math.ceil((lon1 - left) / res))
    return Affine(res, 0, left, 0, -res, top), shape


def geo_image(
    path: Path, seed: int, shift_px: tuple[float, float] = (0.0, 0.0), blocks: list[Any] = BLOCKS
) -> Path:
    transform, shape = geo_transform(shift_px)
    return ground_image(path, "EPSG:4326", transform, shape, seed, blocks)


def flat_image(path: Path, left: float, top: float, size: int = 40, **kw: Any) -> Path:
    """A uniform vegetated UTM raster with noise, ``size`` px of 10 m."""
    rng = np.random.default_rng(size)
    refl = VEG[:, None, None] + rng.normal(0, 0.004, (6, size, size))
    return write_stack(path, UTM, Affine(10, 0, left, 0, -10, top), refl, **kw)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["-q", "compare", *argv])
    err = capsys.readouterr().err
    return code, err


def assert_cli_error(
    argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str, code: int = 2
) -> None:
    got, err = run_cli(argv, capsys)
    assert got == code, err
    assert "error:" in err
    assert "Traceback" not in err
    flat = " ".join(err.split())  # rich may wrap long lines
    for needle in needles:
        assert needle in flat, (needle, err)


# --- scale and offset ------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf])
def test_bad_scale_refused(
    tmp_path: Path, scale: float, capsys: pytest.CaptureFixture[str]
) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    with pytest.raises(InputRasterError, match=r"--scale .* finite number > 0"):
        compare(a, a, tmp_path / "o", bands=BANDS, scale=scale)
    argv = [str(a), str(a), "--out", str(tmp_path / "o"), "--bands", ",".join(BANDS)]
    assert_cli_error([*argv, f"--scale={scale}"], capsys, "--scale", str(scale), "> 0")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("offset", [math.inf, -math.inf, math.nan])
def test_non_finite_offset_refused(
    tmp_path: Path, offset: float, capsys: pytest.CaptureFixture[str]
) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    with pytest.raises(InputRasterError, match=r"--offset .* must be a finite number"):
        compare(a, a, tmp_path / "o", bands=BANDS, scale=1.0, offset=offset)
    argv = [str(a), str(a), "--out", str(tmp_path / "o"), "--bands", ",".join(BANDS)]
    assert_cli_error([*argv, f"--offset={offset}"], capsys, "--offset", "finite number")


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.01, 2.0, math.nan, math.inf])
def test_bad_alpha_refused(
    tmp_path: Path, alpha: float, capsys: pytest.CaptureFixture[str]
) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    with pytest.raises(InputRasterError, match=r"--alpha .* strictly between 0 and 1"):
        compare(a, a, tmp_path / "o", bands=BANDS, scale=1.0, alpha=alpha)
    argv = [str(a), str(a), "--out", str(tmp_path / "o"), "--bands", ",".join(BANDS)]
    assert_cli_error([*argv, f"--alpha={alpha}"], capsys, "--alpha", str(alpha), "between 0 and 1")
    assert not (tmp_path / "o").exists()


def test_scale_overflowing_to_inf_is_no_data(tmp_path: Path) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    with pytest.raises(InputRasterError, match="no valid pixel"):
        compare(a, a, tmp_path / "o", bands=BANDS, scale=1e308)


# --- overlap and validity --------------------------------------------------------------------


def test_non_overlapping_pair_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    b = flat_image(tmp_path / "b.tif", X0 + 5000, Y0)  # 5 km east
    with pytest.raises(InputRasterError, match="do not overlap") as info:
        compare(a, b, tmp_path / "o", bands=BANDS)
    msg = str(info.value)
    assert "BEFORE covers (350000, 4.3196e+06, 350400, 4.32e+06)" in msg
    assert "AFTER covers (355000, 4.3196e+06, 355400, 4.32e+06)" in msg
    argv = [str(a), str(b), "--out", str(tmp_path / "o"), "--bands", ",".join(BANDS)]
    assert_cli_error(argv, capsys, "do not overlap", "BEFORE covers", "AFTER covers")
    assert not (tmp_path / "o").exists()


def test_overlapping_extents_with_disjoint_data_refused(tmp_path: Path) -> None:
    west = VEG[:, None, None] * np.ones((6, 40, 40))
    east = west.copy()
    west[:, :, 20:] = 0  # no data (DN 0)
    east[:, :, :20] = 0
    a = write_stack(tmp_path / "a.tif", UTM, Affine(10, 0, X0, 0, -10, Y0), west)
    b = write_stack(tmp_path / "b.tif", UTM, Affine(10, 0, X0, 0, -10, Y0), east)
    with pytest.raises(InputRasterError, match="do not overlap") as info:
        compare(a, b, tmp_path / "o", bands=BANDS)
    assert "their extents meet but their data do not" in str(info.value)
    assert "BEFORE's data span (350000, 4.3196e+06, 350200, 4.32e+06)" in str(info.value)


def test_all_nodata_before_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_stack(tmp_path / "a.tif", UTM, Affine(10, 0, X0, 0, -10, Y0), np.zeros((6, 40, 40)))
    b = flat_image(tmp_path / "b.tif", X0, Y0)
    with pytest.raises(InputRasterError, match=r"BEFORE .*a\.tif: no valid pixel"):
        compare(a, b, tmp_path / "o", bands=BANDS)
    argv = [str(a), str(b), "--out", str(tmp_path / "o"), "--bands", ",".join(BANDS)]
    assert_cli_error(argv, capsys, "no valid pixel", "nodata value")


def test_all_nodata_after_refused(tmp_path: Path) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    b = write_stack(tmp_path / "b.tif", UTM, Affine(10, 0, X0, 0, -10, Y0), np.zeros((6, 40, 40)))
    with pytest.raises(InputRasterError, match="do not overlap") as info:
        compare(a, b, tmp_path / "o", bands=BANDS)
    assert "every AFTER pixel over BEFORE's extent is at the nodata value" in str(info.value)


def test_fewer_than_minimum_valid_pixels_refused(tmp_path: Path) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    b = flat_image(tmp_path / "b.tif", X0 + 320, Y0 - 320)  # overlaps 8 x 8 = 64 px
    with pytest.raises(InputRasterError, match=f"only 64 pixels .* at least {MIN_VALID_PIXELS}"):
        compare(a, b, tmp_path / "o", bands=BANDS)


def test_small_overlap_fraction_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0, size=200)  # 40,000 px
    b = flat_image(tmp_path / "b.tif", X0 + 1850, Y0 - 1850, size=30)  # 15 x 15 = 225 px overlap
    summary = compare(a, b, tmp_path / "o", bands=BANDS)
    assert summary["valid_pixels"] == 225
    assert summary["valid_fraction"] == pytest.approx(225 / 40_000, abs=1e-4)
    assert len(summary["warnings"]) == 1
    assert "only 0.56 % of the grid" in summary["warnings"][0]
    assert "only 0.56 % of the grid" in caplog.text


def test_all_masked_by_scl_refused(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    refl = VEG[:, None, None] * np.ones((6, 40, 40))
    for i, b in enumerate(BANDS):
        write_stack(folder / f"{b}.tif", UTM, Affine(10, 0, X0, 0, -10, Y0), refl[i : i + 1])
    write_stack(folder / "SCL.tif", UTM, Affine(20, 0, X0, 0, -20, Y0), np.full((1, 20, 20), 9e-4))
    with pytest.raises(InputRasterError, match=r"only 0 pixels .* 1600 masked by SCL"):
        compare(folder, folder, tmp_path / "o")


# --- unreadable files ------------------------------------------------------------------------


def band_folder(folder: Path, left: float = X0, top: float = Y0) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    refl = VEG[:, None, None] + rng.normal(0, 0.004, (6, 40, 40))
    for i, b in enumerate(BANDS):
        write_stack(folder / f"T51_{b}.tif", UTM, Affine(10, 0, left, 0, -10, top), refl[i : i + 1])
    return folder


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("T51_B02.tif", lambda p: p.write_text("not a raster\n")),
        ("T51_B03.tif", lambda p: p.write_bytes(b"")),
        ("T51_B04.tif", lambda p: p.mkdir()),
        ("T51_B11.tif", lambda p: p.write_bytes(b"II*\x00" + b"\x00" * 60)),  # a broken TIFF
        ("SCL.tif", lambda p: p.write_text("junk")),
        ("T51_SCL.jp2", lambda p: p.write_bytes(b"")),
    ],
)
def test_unreadable_file_in_band_folder_refused(
    tmp_path: Path, name: str, make: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = band_folder(tmp_path / "f")
    bad = folder / name
    if bad.exists():
        bad.unlink()
    make(bad)
    with pytest.raises(InputRasterError, match="not a readable raster") as info:
        compare(folder, folder, tmp_path / "o")
    assert str(bad) in str(info.value)
    assert_cli_error(
        [str(folder), str(folder), "--out", str(tmp_path / "o")], capsys, name,
        "not a readable raster",
    )  # fmt: skip
    # the same folder as AFTER
    good = band_folder(tmp_path / "g")
    with pytest.raises(InputRasterError, match="not a readable raster"):
        compare(good, folder, tmp_path / "o")


def test_junk_multiband_file_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "x.tif"
    junk.write_text("junk")
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    argv = [str(a), str(junk), "--out", str(tmp_path / "o"), "--bands", ",".join(BANDS)]
    assert_cli_error(argv, capsys, "x.tif", "not a readable raster")


def test_scl_without_crs_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = band_folder(tmp_path / "f")
    write_stack(folder / "SCL.tif", None, Affine(20, 0, X0, 0, -20, Y0), np.full((1, 20, 20), 4e-4))
    with pytest.raises(InputRasterError, match=r"SCL\.tif \(scene classification\): no georef"):
        compare(folder, folder, tmp_path / "o")
    assert_cli_error(
        [str(folder), str(folder), "--out", str(tmp_path / "o")], capsys, "no georeference"
    )


def test_scl_with_other_extent_read_by_georeference(tmp_path: Path) -> None:
    before = band_folder(tmp_path / "b")
    after = band_folder(tmp_path / "a")
    scl = np.full((1, 20, 20), 4e-4)  # SCL 4 (vegetation): clear
    scl[0, 6:9, 6:9] = 9e-4  # SCL 9, a cloud: 60 x 60 m
    # 20 m pixels, from 100 m west and north of the bands' corner to 300 m east and south of it
    write_stack(before / "SCL.tif", UTM, Affine(20, 0, X0 - 100, 0, -20, Y0 + 100), scl)
    summary = compare(before, after, tmp_path / "o")
    with rasterio.open(tmp_path / "o" / "change.tif") as src:
        change = src.read(1)
    assert (change[2:8, 2:8] == 255).all()  # the cloud, on the bands' rows and columns 2..7
    assert (change[2:8, 20] == 255).all()  # within its 150 m dilation
    assert (change[25:30, 25:30] != 255).all()  # clear
    assert (change[:, 30:] == 255).all()  # outside the SCL: not known to be clear
    assert (change[30:, :] == 255).all()
    assert summary["masked_by_scl_pixels"] > 30 * 10 + 10 * 40


def test_band_without_crs_or_rotated_refused(tmp_path: Path) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    rng = np.random.default_rng(0)
    refl = VEG[:, None, None] + rng.normal(0, 0.004, (6, 40, 40))
    nocrs = write_stack(tmp_path / "n.tif", None, Affine(10, 0, X0, 0, -10, Y0), refl)
    with pytest.raises(InputRasterError, match=r"n\.tif: no georeference"):
        compare(a, nocrs, tmp_path / "o", bands=BANDS)
    with pytest.raises(InputRasterError, match=r"n\.tif: no georeference"):
        compare(nocrs, a, tmp_path / "o", bands=BANDS)
    rotated = write_stack(tmp_path / "r.tif", UTM, Affine(10, 1, X0, 1, -10, Y0), refl)
    for pair in ((rotated, a), (a, rotated)):
        with pytest.raises(InputRasterError, match="rotated rasters are not supported"):
            compare(*pair, tmp_path / "o", bands=BANDS)


def test_out_is_a_file_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    (tmp_path / "o").write_text("")
    with pytest.raises(OutputError, match="is a file"):
        compare(a, a, tmp_path / "o", bands=BANDS)
    argv = [str(a), str(a), "--out", str(tmp_path / "o"), "--bands", ",".join(BANDS)]
    assert_cli_error(argv, capsys, "is a file", code=3)  # an output fault, not bad input


# --- any CRS, both dates alike ---------------------------------------------------------------


def changed_fraction(summary: dict[str, Any]) -> float:
    return float(summary["changed_pixels"]) / float(summary["valid_pixels"])


def test_both_geographic_subpixel_shift_and_noise_no_change(tmp_path: Path) -> None:
    before = geo_image(tmp_path / "b.tif", seed=1)
    after = geo_image(tmp_path / "a.tif", seed=2, shift_px=(0.37, 0.61))
    summary = compare(before, after, tmp_path / "o", bands=BANDS, scale=1e-4)
    assert summary["grid"]["crs"] == UTM
    assert summary["grid"]["resolution_m"] == 10  # 8.6 x 11.1 m pixels, geometric mean 9.8
    assert "UTM zone of BEFORE's centre" in summary["grid"]["chosen"]
    assert summary["reprojected"] == {"before": True, "after": True}
    assert summary["input_crs"] == {"before": "EPSG:4326", "after": "EPSG:4326"}
    assert summary["valid_pixels"] > 9000
    assert changed_fraction(summary) < 0.002, summary
    assert summary["expansion_pixels"] == 0
    with rasterio.open(tmp_path / "o" / "change.tif") as src:
        assert src.crs.to_string() == UTM
        assert src.res == (10, 10)


@pytest.mark.parametrize("order", ["geo-utm", "utm-geo"])
def test_geographic_and_utm_same_ground_no_change(tmp_path: Path, order: str) -> None:
    geo = geo_image(tmp_path / "geo.tif", seed=1)
    utm = utm_image(tmp_path / "utm.tif", seed=2)
    before, after = (geo, utm) if order == "geo-utm" else (utm, geo)
    summary = compare(before, after, tmp_path / "o", bands=BANDS, scale=1e-4)
    assert summary["grid"]["crs"] == UTM
    assert summary["grid"]["resolution_m"] == 10
    assert summary["valid_pixels"] > 9000
    assert changed_fraction(summary) < 0.002, summary
    assert summary["expansion_pixels"] == 0
    moved, kept = ("before", "after") if order == "geo-utm" else ("after", "before")
    assert summary["reprojected"] == {moved: True, kept: False}
    assert summary["alignment"][moved] == "reprojected from EPSG:4326 (bilinear)"
    assert "resampled through" in summary["alignment"][kept]


@pytest.mark.parametrize("order", ["geo-utm", "utm-geo"])
def test_geographic_and_utm_real_change_found(tmp_path: Path, order: str) -> None:
    new = (560.0, 500.0, 760.0, 650.0)  # 200 x 150 m = 3 ha of new buildings
    if order == "geo-utm":
        before = geo_image(tmp_path / "b.tif", seed=1)
        after = utm_image(tmp_path / "a.tif", seed=2, blocks=[*BLOCKS, new])
    else:
        before = utm_image(tmp_path / "b.tif", seed=1)
        after = geo_image(tmp_path / "a.tif", seed=2, blocks=[*BLOCKS, new])
    summary = compare(before, after, tmp_path / "o", bands=BANDS, scale=1e-4)
    # the same ground and change, both dates in UTM: the reference
    ref_before = utm_image(tmp_path / "rb.tif", seed=1)
    ref_after = utm_image(tmp_path / "ra.tif", seed=2, blocks=[*BLOCKS, new])
    ref = compare(ref_before, ref_after, tmp_path / "r", bands=BANDS, scale=1e-4)
    assert summary["changed_ha"] == pytest.approx(3.0, rel=0.05)
    assert ref["changed_ha"] == pytest.approx(3.0, rel=0.05)
    # the footprint rule keeps the block's core (its edges are soft): same area either way
    assert summary["expansion_ha"] == pytest.approx(ref["expansion_ha"], abs=0.15)
    assert summary["expansion_ha"] > 2.0


def test_cli_states_reprojection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    geo = geo_image(tmp_path / "geo.tif", seed=1)
    utm = utm_image(tmp_path / "utm.tif", seed=2)
    argv = [str(utm), str(geo), "--out", str(tmp_path / "o"), "--bands", ",".join(BANDS)]
    assert main(["-q", "compare", *argv, "--scale", "0.0001"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["reprojected"] == {"before": False, "after": True}
    assert summary["grid"]["chosen"] == "BEFORE's finest band grid"
    assert summary["warnings"] == []


def test_geographic_outside_utm_range_refused(tmp_path: Path) -> None:
    refl = VEG[:, None, None] * np.ones((6, 20, 20))
    polar = write_stack(tmp_path / "p.tif", "EPSG:4326", Affine(0.01, 0, 10, 0, -0.01, 86), refl)
    with pytest.raises(InputRasterError, match=r"p\.tif: its centre .* outside the UTM range"):
        compare(polar, polar, tmp_path / "o", bands=BANDS)


def test_grid_over_pixel_limit_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.sources.local as local

    monkeypatch.setattr(local, "MAX_GRID_PIXELS", 1000)
    a = flat_image(tmp_path / "a.tif", X0, Y0)  # 1,600 px
    with pytest.raises(
        LimitError, match=r"40 x 40 = 1,600 pixels .* limit of 1,000 .* crop BEFORE"
    ):
        compare(a, a, tmp_path / "o", bands=BANDS)


# --- products: file names, SAFE folders, per-date radiometry (issue 8) ------------------------


def s2_band_folder(
    folder: Path,
    crs: str,
    transform: Affine,
    shape: tuple[int, int],
    seed: int,
    *,
    add_dn: int = 0,
    prefix: str = "",
    suffix: str = "",
) -> Path:
    """The ground of ``ground_image`` as Sentinel-2 band files ``{prefix}B02{suffix}.tif``,
    uint16 DN (+ ``add_dn``, the offset of baseline 04.00), nodata 0."""
    folder.mkdir(parents=True)
    stack = ground_image(folder / "stack.tif", crs, transform, shape, seed)
    with rasterio.open(stack) as src:
        dn = src.read().astype(np.int64) + add_dn
    stack.unlink()
    for i, band in enumerate(BANDS):
        write_stack(folder / f"{prefix}{band}{suffix}.tif", crs, transform, dn[i : i + 1] / 1e4)
    return folder


def utm_folder(folder: Path, seed: int, **kw: Any) -> Path:
    return s2_band_folder(folder, UTM, Affine(10, 0, X0, 0, -10, Y0 + 1000), (100, 100), seed, **kw)


def test_safe_style_names_take_the_finest_of_each_band(tmp_path: Path) -> None:
    from pipeline.sources.local import locate_input

    name = "T51SUH_20230915T022549_"
    folder = utm_folder(tmp_path / "f", seed=1, prefix=name, suffix="_10m")
    # the same bands at 20 m (as R20m holds them) and the SCL at 20 m and 60 m
    coarse = VEG[:, None, None] * np.ones((6, 50, 50))
    for i, band in enumerate(BANDS):
        t20 = Affine(20, 0, X0, 0, -20, Y0 + 1000)
        write_stack(folder / f"{name}{band}_20m.tif", UTM, t20, coarse[i : i + 1])
    for res in (20, 60):
        n = 1000 // res
        t = Affine(res, 0, X0, 0, -res, Y0 + 1000)
        write_stack(folder / f"{name}SCL_{res}m.tif", UTM, t, np.full((1, n, n), 4e-4))
    located = locate_input(folder)
    assert all(b.path.name.endswith("_10m.tif") for b in located.bands.values())
    assert located.scl is not None
    assert located.scl.name == f"{name}SCL_20m.tif"
    assert located.product.product == "L2A"
    assert "resolution-suffixed" in located.product.product_from
    # two acquisitions in one folder are refused
    other = folder / "T51SUH_20240915T022549_B8A_20m.tif"
    write_stack(other, UTM, Affine(20, 0, X0, 0, -20, Y0 + 1000), coarse[:1])
    with pytest.raises(InputRasterError, match="files of several acquisitions"):
        locate_input(folder)


def safe_folder(root: Path, seed: int, baseline: str, add_dn: int) -> Path:
    """An L2A .SAFE as ESA delivers it: MTD_MSIL2A.xml at the top, the bands in
    GRANULE/<granule>/IMG_DATA/R10m."""
    from test_compare_radiometry import write_mtd

    n = baseline.replace(".", "")
    safe = root / f"S2B_MSIL2A_20230915T022549_N{n}_R046_T51SUH_20230915T045012.SAFE"
    img = safe / "GRANULE" / "L2A_T51SUH_A034000_20230915T022549" / "IMG_DATA" / "R10m"
    img.parent.mkdir(parents=True)
    utm_folder(img, seed, add_dn=add_dn, prefix="T51SUH_20230915T022549_", suffix="_10m")
    write_mtd(safe, "L2A", baseline, -1000 if baseline >= "04.00" else None, name=safe.name)
    return safe


def test_safe_folder_with_boa_offset_reads_like_unshifted_data(tmp_path: Path) -> None:
    before = safe_folder(tmp_path / "b", seed=1, baseline="02.14", add_dn=0)
    after = safe_folder(tmp_path / "a", seed=2, baseline="05.09", add_dn=1000)
    summary = compare(before, after, tmp_path / "o")
    rad = summary["radiometry"]
    assert rad["before"]["baseline"] == "02.14"
    assert rad["before"]["offset"] == 0.0
    assert rad["after"]["product"] == "L2A"
    assert rad["after"]["baseline"] == "05.09"
    assert rad["after"]["baseline_from"].endswith("MTD_MSIL2A.xml (PROCESSING_BASELINE)")
    assert rad["after"]["offset"] == pytest.approx(-0.1)
    assert "BOA_ADD_OFFSET -1000" in rad["after"]["why"]
    assert summary["warnings"] == []
    # the reference: the same two grounds, no offset anywhere, --scale for both
    ref = compare(
        utm_folder(tmp_path / "rb", seed=1), utm_folder(tmp_path / "ra", seed=2), tmp_path / "r",
        scale=1e-4,
    )  # fmt: skip
    for key in ("valid_pixels", "changed_pixels", "expansion_pixels"):
        assert summary[key] == ref[key], key
    assert summary["expansion_pixels"] == 0


def test_geographic_folders_of_other_extents_with_per_date_offset(tmp_path: Path) -> None:
    """EPSG:4326 band folders whose extents differ by a fraction of a pixel, AFTER with the
    offset of baseline 04.00 and its MTD_MSIL2A.xml: areas in metres, no change."""
    from test_compare_radiometry import write_mtd

    t1, s1 = geo_transform()
    t2, s2 = geo_transform((0.37, 0.61))
    before = s2_band_folder(tmp_path / "b", "EPSG:4326", t1, s1, seed=1)
    after = s2_band_folder(tmp_path / "a", "EPSG:4326", t2, s2, seed=2, add_dn=1000)
    write_mtd(before, "L2A", "02.14", None)
    write_mtd(after, "L2A", "04.00", -1000)
    summary = compare(before, after, tmp_path / "o")
    assert summary["grid"]["crs"] == UTM
    assert summary["grid"]["resolution_m"] == 10
    assert summary["reprojected"] == {"before": True, "after": True}
    assert summary["radiometry"]["after"]["offset"] == pytest.approx(-0.1)
    assert summary["radiometry"]["before"]["offset"] == 0.0
    assert changed_fraction(summary) < 0.002, summary
    assert summary["expansion_pixels"] == 0


def test_unknown_product_is_read_as_given_and_says_so(tmp_path: Path) -> None:
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    summary = compare(a, a, tmp_path / "o", bands=BANDS)
    for key in ("before", "after"):
        rad = summary["radiometry"][key]
        assert rad["product"] == "unknown"
        assert rad["decided_by"] == "as-given"
        assert (rad["scale"], rad["offset"]) == (1.0, 0.0)
        assert "product unknown" in rad["why"]
    assert summary["reflectance_scaled"] is False
    summary = compare(a, a, tmp_path / "o", bands=BANDS, offset=-0.5)  # --offset alone: scale 1
    assert summary["radiometry"]["after"]["decided_by"] == "--scale/--offset"
    assert (summary["radiometry"]["after"]["scale"], summary["radiometry"]["after"]["offset"]) == (
        1.0,
        -0.5,
    )


def test_sentinel2_folder_without_metadata_gets_its_scale(tmp_path: Path) -> None:
    """A plain B02.tif folder is Sentinel-2 DN: scaled by 1/10000 with no --scale. Its
    vegetation's SWIR2 (0.09) dips under DN 800 in places, which no +1000 offset allows: no
    offset, from the pixels. The same with the offset in the data has nothing that dark, no SCL
    and no other date to tell: read with no offset, and the summary warns for each date."""
    folder = utm_folder(tmp_path / "f", seed=1)
    summary = compare(folder, folder, tmp_path / "o")
    rad = summary["radiometry"]["before"]
    assert rad["sensor"] == "sentinel-2"
    assert rad["product"] == "unknown"  # no B10, no SCL, no metadata: the level is not told
    assert rad["scale"] == pytest.approx(1e-4)
    assert rad["offset"] == 0.0
    assert rad["decided_by"] == "pixels"
    assert rad["pixel_check"].startswith("confirmed")
    assert summary["reflectance_scaled"] is True
    assert summary["warnings"] == []
    shifted = utm_folder(tmp_path / "s", seed=1, add_dn=1000)
    summary = compare(shifted, shifted, tmp_path / "o")
    assert summary["radiometry"]["before"]["decided_by"] == "assumed"
    assert summary["radiometry"]["before"]["pixel_check"].startswith("inconclusive")
    assert [w.split(" ", 1)[0] for w in summary["warnings"]] == ["BEFORE", "AFTER"]
    assert all("read with NO offset" in w for w in summary["warnings"])
    assert summary["changed_pixels"] == 0


def test_baseline_option_makes_a_plain_raster_sentinel2_dn(tmp_path: Path) -> None:
    """--baseline says the DN are Sentinel-2's: 1/10000, and the offset of that baseline. Here
    the pixels (vegetation SWIR2 under DN 800) contradict 04.00: the option is kept, with a
    warning."""
    a = flat_image(tmp_path / "a.tif", X0, Y0)
    summary = compare(a, a, tmp_path / "o", bands=BANDS, baseline="02.14")
    rad = summary["radiometry"]["after"]
    assert (rad["scale"], rad["offset"], rad["decided_by"]) == (1e-4, 0.0, "--baseline")
    assert summary["warnings"] == []
    summary = compare(a, a, tmp_path / "o", bands=BANDS, baseline="04.00")
    rad = summary["radiometry"]["after"]
    assert rad["offset"] == pytest.approx(-0.1)
    assert rad["pixel_check"].startswith("contradicted")
    assert summary["warnings"] == [
        f"{d}: the pixels contradict --baseline 04.00 ({rad['pixel_check']}); the explicit "
        "option is kept"
        for d in ("BEFORE", "AFTER")
    ]
