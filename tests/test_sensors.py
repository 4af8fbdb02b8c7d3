"""Sensor profiles, radiometry rules and their pixel checks, mask decoders, lattice, harmonisation,
chip cache: the pure parts of the read edge, with known answers."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from pipeline import harmonize
from pipeline.grid import Grid
from pipeline.masking import (
    MaskReason,
    clear_from_scl,
    reason_shares,
    reasons_from_qa_pixel,
    reasons_from_scl,
)
from pipeline.radiometry import (
    Radiometry,
    offset_outliers,
    series_evidence,
    verify_boa_offset,
)
from pipeline.sources.base import Asset, Scene, SearchFilter
from pipeline.sources.chips import ChipCache
from pipeline.sources.sensors import PROFILES, detect_profile, lattice_origin, snap_for

ES, PC, C1, LS = (
    "earth-search/sentinel-2-l2a",
    "planetary-computer/sentinel-2-l2a",
    "earth-search/sentinel-2-c1-l2a",
    "landsat-c2-l2",
)


@pytest.mark.parametrize(
    ("collection", "keys", "platform", "profile"),
    [
        ("sentinel-2-l2a", ["blue", "scl"], "", ES),
        ("sentinel-2-l2a", ["B02", "SCL"], "", PC),
        ("sentinel-2-c1-l2a", ["blue", "scl"], "", C1),
        ("landsat-c2-l2", ["blue", "qa_pixel"], "landsat-5", LS),
        ("landsat-c2l2-sr", ["SR_B2.TIF", "QA_PIXEL.TIF"], "LANDSAT_8", "usgs/landsat-c2l2-sr-oli"),
        ("landsat-c2l2-sr", ["SR_B1.TIF", "QA_PIXEL.TIF"], "LANDSAT_7", "usgs/landsat-c2l2-sr-tm"),
    ],
)
def test_profile_from_collection_and_asset_keys(
    collection: str, keys: list[str], platform: str, profile: str
) -> None:
    assert detect_profile(collection, keys, platform).name == profile


def test_unknown_collection_names_what_is_supported() -> None:
    with pytest.raises(ValueError, match=r"'modis-09a1'.*Sentinel-2 L2A.*Landsat"):
        detect_profile("modis-09a1", ["sur_refl_b01"])


def test_asset_maps_cover_every_band_and_mask() -> None:
    assert PROFILES[PC].asset_keys()[:7] == ("B02", "B03", "B04", "B08", "B11", "B12", "SCL")
    assert PROFILES[LS].assets["nir"] == "nir08"
    assert PROFILES[LS].asset_keys()[-2:] == ("qa_pixel", "qa_radsat")
    tm = PROFILES["usgs/landsat-c2l2-sr-tm"].assets
    assert (tm["blue"], tm["swir22"]) == ("SR_B1.TIF", "SR_B7.TIF")  # TM/ETM+ band numbers


@pytest.mark.parametrize(
    ("profile", "props", "bands", "offset_dn"),
    [
        (ES, {"s2:processing_baseline": "02.14"}, (), 0.0),
        (ES, {"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": False}, (), -1000.0),
        (ES, {"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True}, (), 0.0),
        # raster:bands offset -0.1 on an applied item (earth-search#9) must not be trusted
        (ES, {"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": True},
         ({"scale": 1e-4, "offset": -0.1},), 0.0),
        # Planetary Computer never harmonises: a stray flag does not count
        (PC, {"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True}, (), -1000.0),
        (PC, {"s2:processing_baseline": "03.01"}, (), 0.0),
        (C1, {"s2:processing_baseline": "05.10"}, ({"scale": 1e-4, "offset": -0.1},), -1000.0),
        (LS, {}, ({"scale": 2.75e-5, "offset": -0.2},), -0.2 / 2.75e-5),
        (LS, {}, (), -0.2 / 2.75e-5),
    ],
)  # fmt: skip
def test_radiometry_rules(
    profile: str, props: dict[str, object], bands: tuple[dict[str, float], ...], offset_dn: float
) -> None:
    rule = PROFILES[profile].radiometry(props, bands)
    assert rule.offset_dn == pytest.approx(offset_dn)
    assert rule.reason


def _dark_scene(offset_in_data: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """B12 DN and SCL of a window with water (SCL 6) beside bare ground."""
    refl = np.full((60, 60), 0.25)
    scl = np.full((60, 60), 5, np.uint8)
    refl[:, :20], scl[:, :20] = 0.01, 6
    dn = np.round(refl * 1e4 + rng.normal(0, 20, refl.shape)) + offset_in_data
    return dn, scl


@pytest.mark.parametrize("in_data", [0, 1000])
@pytest.mark.parametrize("decided", [0.0, -1000.0])
def test_pixel_check_settles_the_offset(in_data: int, decided: float) -> None:
    dn, scl = _dark_scene(in_data, np.random.default_rng(in_data))
    checked = verify_boa_offset(dn, scl, Radiometry(1e-4, decided, "metadata"))
    assert checked.offset_dn == -in_data
    right = decided == -in_data
    assert checked.check.startswith("confirmed" if right else "contradicted")
    water = checked.apply(dn)[:, :20]
    assert abs(float(np.median(water)) - 0.01) < 0.005


@pytest.mark.parametrize("in_data", [0, 1000])
def test_pixel_check_of_a_scene_with_no_clear_pixel(in_data: int) -> None:
    # Thin cloud over the whole window: nothing is clear, and the cloud brightens every pixel
    # (water 0.01 -> 0.04). Without an offset in the data the water still sits below DN 800,
    # which no cloud can make of a scene carrying the offset; with one, nothing can tell.
    dn, _ = _dark_scene(in_data, np.random.default_rng(7 + in_data))
    dn += 300.0
    cloudy = np.zeros(dn.shape, bool)
    decided = Radiometry(1e-4, -1000.0, "metadata says the offset is in the data")
    checked = verify_boa_offset(dn, np.full(dn.shape, 8, np.uint8), decided, cloudy)
    if in_data:
        assert checked.offset_dn == -1000.0
        assert checked.check == "inconclusive: too few valid pixels"
    else:
        assert checked.offset_dn == 0.0
        assert checked.check.startswith("contradicted")


def test_pixel_check_is_inconclusive_without_dark_reference() -> None:
    dn = np.full((40, 40), 2500.0)  # a bright desert: nothing says whether an offset is there
    checked = verify_boa_offset(dn, np.full((40, 40), 5), Radiometry(1e-4, -1000.0, "meta"))
    assert checked.offset_dn == -1000.0
    assert checked.check.startswith("inconclusive")


def _season(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Blue and SWIR2 (``radiometry.SERIES_BANDS``) of ``n`` looks at a site: stable ground,
    fields harvested late, noise, clouds."""
    blue, swir2 = rng.uniform(0.03, 0.12, (50, 50)), rng.uniform(0.1, 0.35, (50, 50))
    base = np.stack([blue, swir2]).astype(np.float32)
    looks, clear = [], []
    for i in range(n):
        look = base + rng.normal(0, 0.004, base.shape).astype(np.float32)
        if i >= n - 3:
            look[:, :, :10] += 0.1  # harvest: the fields (a fifth) brighten for the last three
        c = np.ones(base.shape[1:], bool)
        c[rng.integers(0, 50) :, :5] = False  # some cloud
        looks.append(look.astype(np.float32))
        clear.append(c)
    return looks, clear


def test_series_check_finds_the_scene_with_a_wrong_offset() -> None:
    looks, clear = _season(7, np.random.default_rng(3))
    looks[2] = looks[2] + np.float32(0.1)  # offset in the data, not applied
    looks[5] = looks[5] - np.float32(0.1)  # applied although the data had none
    found = {o.index: o.shift for o in offset_outliers(looks, clear)}
    assert found == {2: pytest.approx(-0.1), 5: pytest.approx(0.1)}


def test_series_check_leaves_real_change_alone() -> None:
    looks, clear = _season(7, np.random.default_rng(4))  # harvest is change, not an offset
    assert offset_outliers(looks, clear) == []
    assert offset_outliers(looks[:2], clear[:2]) == []  # too few looks to judge
    three = [looks[0], looks[1] + np.float32(0.1), looks[2]]
    assert [o.index for o in offset_outliers(three, clear[:3])] == [1]  # one of three is enough


def test_scl_reasons_and_clear_mask_agree() -> None:
    scl = np.full((11, 11), 5, np.uint8)
    scl[0, :4] = (0, 1, 2, 3)
    scl[5, 5], scl[10, 10] = 9, 11
    reasons = reasons_from_scl(scl, dilation_px=2)
    assert reasons[0, 0] == MaskReason.NODATA
    assert reasons[0, 1] == MaskReason.SATURATED
    assert reasons[0, 2] == reasons[0, 3] == MaskReason.CLEAR  # dark area, shadow: kept
    assert reasons[5, 5] == MaskReason.CLOUD
    assert reasons[5, 7] == MaskReason.CLOUD_BUFFER
    assert reasons[10, 10] == MaskReason.SNOW
    np.testing.assert_array_equal(
        reasons == MaskReason.CLEAR, clear_from_scl(scl, (0, 1, 8, 9, 10, 11), (8, 9, 10), 2)
    )
    shares = reason_shares(reasons)
    assert shares["clear"] > 0.8
    assert set(shares) == {"clear", "nodata", "saturated", "cloud", "cloud_buffer", "snow"}


def test_qa_pixel_bits_follow_the_usgs_definitions() -> None:
    bits = {"fill": 1, "dilated": 1 << 1, "cirrus": 1 << 2, "cloud": (1 << 3) | (1 << 1),
            "shadow": 1 << 4, "snow": 1 << 5, "clear": 1 << 6, "water": (1 << 7) | (1 << 6)}  # fmt: skip
    qa = np.array([list(bits.values())], np.uint16)
    radsat = np.zeros_like(qa)
    radsat[0, 6] = 1 << 3  # band 4 saturated on a clear pixel
    reasons = reasons_from_qa_pixel(qa, radsat=radsat)[0]
    assert list(reasons) == [
        MaskReason.NODATA, MaskReason.CLOUD_BUFFER, MaskReason.CIRRUS, MaskReason.CLOUD,
        MaskReason.CLEAR, MaskReason.SNOW, MaskReason.SATURATED, MaskReason.CLEAR,
    ]  # fmt: skip
    masked_shadow = reasons_from_qa_pixel(qa, masked_bits=(0, 1, 2, 3, 4, 5))[0]
    assert masked_shadow[4] == MaskReason.SHADOW


def _scene(profile: str, crs: str, transform: tuple[float, ...]) -> Scene:
    keys = PROFILES[profile].asset_keys()
    assets = {k: Asset(f"/x/{k}.tif", transform, (100, 100)) for k in keys}
    return Scene("s", "c", datetime(2020, 9, 1, tzinfo=UTC), assets, {}, profile, crs)


def test_grid_keeps_the_landsat_lattice() -> None:
    # Landsat C2 pixel corners sit 15 m past a multiple of 30 m.
    scene = _scene(LS, "EPSG:32652", (30.0, 0.0, 271185.0, 0.0, -30.0, 4432815.0))
    snap = snap_for([scene])
    origin = lattice_origin([scene], "EPSG:32652", snap)
    assert (snap, origin) == (30.0, (15.0, 15.0))
    grid = Grid.from_bounds(
        "EPSG:32652", (300001.0, 4400002.0, 303007.0, 4403009.0), 30, 30, origin
    )
    assert (grid.transform.c - 271185.0) % 30 == 0
    assert (grid.transform.f - 4432815.0) % 30 == 0
    # A scene in another UTM zone does not set the lattice.
    assert lattice_origin([scene], "EPSG:32651", 30.0) == (0.0, 0.0)


def test_harmonisation_onto_oli() -> None:
    refl = np.full((6, 1, 1), 0.2, np.float32)
    msi = harmonize.to_oli(refl, "sentinel-2a")
    assert msi[0, 0, 0] == pytest.approx(0.9778 * 0.2 - 0.004)
    etm = harmonize.to_oli(refl, "landsat-7")
    assert etm[5, 0, 0] == pytest.approx(0.9949 * 0.2 + 0.0029)
    assert harmonize.to_oli(refl, "landsat-8") is refl


def test_chip_cache_round_trip_ignores_signatures_and_damage(tmp_path: Path) -> None:
    cache = ChipCache(tmp_path)
    grid = Grid("EPSG:32652", Affine(10, 0, 0, 0, -10, 0), 4, 3)
    signed = _scene(ES, "EPSG:32652", (10, 0, 0, 0, -10, 0))
    signed = Scene(signed.id, "sentinel-2-l2a", signed.datetime,
                   {"blue": Asset("/vsicurl/https://h/b.tif?sig=1")}, {}, ES)  # fmt: skip
    resigned = Scene(signed.id, "sentinel-2-l2a", signed.datetime,
                     {"blue": Asset("/vsicurl/https://h/b.tif?sig=2")}, {}, ES)  # fmt: skip
    key = cache.key(signed, "blue", grid, "1")
    assert key == cache.key(resigned, "blue", grid, "1")
    assert key != cache.key(signed, "blue", grid, "2")
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    data[0, 0] = np.nan
    cache.put(key, data)
    np.testing.assert_array_equal(cache.get(key), data)
    next(tmp_path.rglob("*.npy")).write_bytes(b"half a chip")
    assert cache.get(key) is None


def test_search_filter() -> None:
    keep = SearchFilter(max_cloud_cover=30, platforms=("sentinel-2a",))
    assert keep.accepts({"eo:cloud_cover": 29.9, "platform": "Sentinel-2A"})
    assert not keep.accepts({"eo:cloud_cover": 31, "platform": "sentinel-2a"})
    assert not keep.accepts({"eo:cloud_cover": 1, "platform": "sentinel-2b"})
    assert SearchFilter().accepts({})


@pytest.mark.parametrize("seed", [5, 6])
def test_series_evidence_by_the_kernel_matches_numpy(seed: int) -> None:
    """The series check's per-pixel median and MAD come from the compositing kernel; they equal
    numpy's nanmedian ones, so the differences are numpy's to the bit (NaN pixels, clouds; a
    look counts where it is clear and finite in every band, as in a composite)."""
    rng = np.random.default_rng(seed)
    looks, clear = _season(8, rng)
    looks[3][1][rng.random(looks[3].shape[1:]) < 0.05] = np.nan  # no SWIR2 in some clear px
    counted = [c & np.isfinite(s).all(axis=0) for s, c in zip(looks, clear, strict=True)]
    stack = np.stack([np.where(c, s, np.nan) for s, c in zip(looks, counted, strict=True)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmedian(stack, axis=0)
        mad = np.nanmedian(np.abs(stack[:, 1] - ref[1]), axis=0)  # stable in SWIR2
    stable = (np.isfinite(stack[:, 1]).sum(axis=0) >= 3) & (mad < 0.02)
    found = series_evidence(looks, clear)
    assert len(found) == len(stack)
    for got, look in zip(found, stack, strict=True):
        use = stable & np.isfinite(look).all(axis=0)
        want = look[:, use] - ref[:, use]
        assert got.differences.dtype == want.dtype
        assert np.array_equal(got.differences, want)
        assert got.clear == int(np.isfinite(look).all(axis=0).sum())
