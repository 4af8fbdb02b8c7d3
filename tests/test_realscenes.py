"""Tests of tests/support/realscenes.py: the STAC archives built from the real scenes must hold
exactly the truth they document."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import shape
from support import realscenes as rs

pytestmark = pytest.mark.realdata

NOISE = rs.S2_NOISE_SIGMA
#: tolerance of a single pixel against the source: 6 sigma of the noise plus DN rounding
TOL = 6 * NOISE + 1e-4


@pytest.fixture(scope="module")
def s2(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> rs.S2Archive:
    root = tmp_path_factory.mktemp("s2")
    return rs.build_sentinel2_archive(real_data, root, str(root))


@pytest.fixture(scope="module")
def landsat(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> rs.LandsatArchive:
    root = tmp_path_factory.mktemp("landsat")
    return rs.build_landsat_archive(real_data, root, "http://127.0.0.1:8765")


@pytest.fixture(scope="module")
def source_s2(real_data: Path) -> dict[str, np.ndarray]:
    """The real reflectance (SCL: class) of the crop, each band at its resolution."""
    out = {}
    for band, (stem, res) in rs.S2_BANDS.items():
        f = res // 100
        w = rs.S2_CROP
        win = Window(w.col_off // f, w.row_off // f, w.width // f, w.height // f)
        with rasterio.open(real_data / rs.S2_DIR / f"{stem}.tif") as src:
            a = src.read(1, window=win)
        out[band] = a if band == "scl" else a / 10000.0
    return out


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def _decode_by_metadata(item: dict[str, Any], key: str, dn: np.ndarray) -> np.ndarray:
    """What a reader that trusts the Earth Search flag (and the baseline) would compute."""
    props = item["properties"]
    shifted = props["s2:processing_baseline"] >= "04.00" and not props.get(
        "earthsearch:boa_offset_applied", False
    )
    return (dn.astype(float) - (1000 if shifted else 0)) / 10000.0


def _change_mask(shape: tuple[int, int], f: int, shift_cols: int = 0) -> np.ndarray:
    w = rs.S2_CHANGE
    m = np.zeros(shape, bool)
    r0, c0 = w.row_off // f, w.col_off // f
    m[r0 : r0 + w.height // f, c0 + shift_cols : c0 + shift_cols + w.width // f] = True
    return m


def test_s2_assets_open_on_the_source_lattice(s2: rs.S2Archive) -> None:
    src = s2.source_grid.transform
    n = 0
    for flavour, items in s2.items.items():
        assert len(items) == 15
        assert len({i["id"] for i in items}) == 15
        for item in items:
            for band, key in s2.asset_keys[flavour].items():
                asset = item["assets"][key]
                with rasterio.open(s2.asset_path(item, key)) as ds:
                    t = ds.transform
                    assert ds.crs.to_epsg() == 32629
                    assert ds.nodata == 0
                    assert ds.dtypes[0] == ("uint8" if band == "scl" else "uint16")
                    assert list(ds.shape) == asset["proj:shape"]
                    assert list(t)[:6] == pytest.approx(asset["proj:transform"])
                    assert ds.block_shapes[0] == (256, 256)
                    assert ds.overviews(1)
                res = rs.S2_BANDS[band][1]
                assert t.a == res
                assert t.e == -res
                # on the scene's own lattice: whole (own-resolution) pixels from the source origin
                for off in ((t.c - src.c) / res, (t.f - src.f) / res):
                    assert off == pytest.approx(round(off), abs=1e-9)
                n += 1
    assert n == 3 * 15 * 8


def test_s2_items_are_shaped_like_the_providers(s2: rs.S2Archive) -> None:
    for flavour, items in s2.items.items():
        coll = s2.collections[flavour]
        assert coll["type"] == "Collection"
        assert coll["id"] == rs.S2_COLLECTION_IDS[flavour]
        assert {"description", "license", "extent", "links"} <= coll.keys()
        for item in items:
            assert item["type"] == "Feature"
            assert item["stac_version"] == "1.0.0"
            assert item["collection"] == coll["id"]
            assert all(isinstance(e, str) for e in item["stac_extensions"])
            props = item["properties"]
            epsg = props.get("proj:epsg") or int(props["proj:code"].split(":")[1])
            assert epsg == 32629
            assert props["platform"] in ("sentinel-2a", "sentinel-2b")
            assert set(item["assets"]) == set(rs.S2_ASSET_KEYS[flavour].values())
            assert ("earthsearch:boa_offset_applied" in props) == (flavour == "earthsearch")
            json.dumps(item)  # plain JSON
        baselines = [i["properties"]["s2:processing_baseline"] for i in items]
        if flavour == "earthsearch-c1":
            assert set(baselines) == {"05.10"}
            offs = {i["assets"]["red"]["raster:bands"][0]["offset"] for i in items}
            assert offs == {-0.1}
        else:
            assert baselines == ["02.14"] * 9 + ["04.00"] * 3 + ["05.09"] * 3
    # bbox/geometry: the crop footprint holds the site, which holds the change
    item = s2.items["earthsearch"][0]
    footprint = shape(item["geometry"])
    assert footprint.contains(s2.site_polygon_wgs84)
    assert s2.site_polygon_wgs84.contains(s2.change_polygon_wgs84)
    minx, miny, maxx, maxy = s2.site_polygon_utm.bounds
    assert maxx - minx == pytest.approx(6000)
    assert maxy - miny == pytest.approx(6000)
    assert s2.change_polygon_utm.area == pytest.approx(600 * 600)
    assert s2.change_years == (2021, 2022, 2023)


def test_s2_flag_correct_items_decode_to_the_source(
    s2: rs.S2Archive, source_s2: dict[str, np.ndarray]
) -> None:
    checked = 0
    for item, truth in zip(s2.items["earthsearch"], s2.truth["earthsearch"], strict=True):
        if not truth.flag_correct or truth.cloudy or truth.shifted or truth.hazy:
            continue
        for band in rs.S2_REFLECTANCE:
            f = rs.S2_BANDS[band][1] // 100
            refl = _decode_by_metadata(item, band, _read(s2.asset_path(item, band)))
            keep = ~_change_mask(refl.shape, f) if truth.changed else np.ones(refl.shape, bool)
            diff = refl[keep] - source_s2[band][keep]
            assert np.abs(diff).max() < TOL, (truth.item_id, band)
            assert abs(diff.mean()) < 3e-4
            assert 0.8 * NOISE < diff.std() < 1.2 * NOISE
        checked += 1
    assert checked >= 9


def test_s2_wrong_flags_carry_the_opposite_data(
    s2: rs.S2Archive, source_s2: dict[str, np.ndarray]
) -> None:
    wrong = [
        (i, t)
        for i, t in zip(s2.items["earthsearch"], s2.truth["earthsearch"], strict=True)
        if not t.flag_correct
    ]
    assert [(t.date.year, t.boa_flag, t.offset_in_data) for _, t in wrong] == [
        (2022, True, 1000),
        (2023, False, 0),
    ]
    for item, truth in wrong:
        dn = _read(s2.asset_path(item, "swir22"))
        by_flag = _decode_by_metadata(item, "swir22", dn)
        by_truth = (dn.astype(float) - truth.offset_in_data) / 10000.0
        keep = ~_change_mask(dn.shape, 2)
        src = source_s2["swir22"][keep]
        assert np.abs(by_truth[keep] - src).max() < TOL
        expected = 0.1 if truth.offset_in_data else -0.1  # trusting the flag is off by 1000 DN
        assert np.median(by_flag[keep] - src) == pytest.approx(expected, abs=2e-3)


def test_s2_offsets_per_flavour(s2: rs.S2Archive, source_s2: dict[str, np.ndarray]) -> None:
    for flavour in rs.S2_FLAVOURS:
        for item, truth in zip(s2.items[flavour], s2.truth[flavour], strict=True):
            if truth.shifted or truth.cloudy:
                continue
            key = s2.asset_keys[flavour]["red"]
            dn = _read(s2.asset_path(item, key)).astype(float)
            if flavour == "planetary":
                expect = 1000 if item["properties"]["s2:processing_baseline"] >= "04.00" else 0
                assert truth.offset_in_data == expect
            elif flavour == "earthsearch-c1":
                assert truth.offset_in_data == 1000
            keep = ~_change_mask(dn.shape, 1)
            # the truth offset reproduces the source (haze does not touch red)
            assert np.abs(
                (dn - truth.offset_in_data)[keep] / 1e4 - source_s2["red"][keep]
            ).max() < (TOL)
            rb = item["assets"][key].get("raster:bands")
            if rb is not None:
                decoded = dn * rb[0]["scale"] + rb[0]["offset"]
                off_by = np.median(decoded[keep] - source_s2["red"][keep])
                assert (abs(off_by) < 2e-3) == truth.raster_offset_correct, truth.item_id
    # the Earth Search issue #9 item: offset -0.1 written, data without offset, flag right
    t = s2.truth["earthsearch"][9]
    assert (t.boa_flag, t.raster_offset, t.offset_in_data, t.flag_correct) == (True, -0.1, 0, True)


def test_s2_change_is_dark_only_from_its_first_year(s2: rs.S2Archive) -> None:
    for flavour in rs.S2_FLAVOURS:
        for item, truth in zip(s2.items[flavour], s2.truth[flavour], strict=True):
            if truth.cloudy:
                continue
            shift = truth.shift_px[1]
            for band in ("blue", "red", "nir", "swir22"):
                key = s2.asset_keys[flavour][band]
                f = rs.S2_BANDS[band][1] // 100
                refl = (_read(s2.asset_path(item, key)).astype(float) - truth.offset_in_data) / 1e4
                m = _change_mask(refl.shape, f, shift if f == 1 else 0)
                if f == 2 and shift:
                    m = _change_mask(refl.shape, f)[:, :]
                    m[:, rs.S2_CHANGE.col_off // f] = False  # half-covered western column
                mean = refl[m].mean()
                if truth.date.year >= rs.S2_CHANGE_FIRST_YEAR:
                    assert truth.changed
                    expect = rs.S2_COAL_REFLECTANCE[band]
                    if truth.hazy:
                        expect += rs.S2_HAZE_ADD.get(band, 0.0)
                    assert mean == pytest.approx(expect, abs=0.004), (truth.item_id, band)
                else:
                    assert not truth.changed
                    assert mean > 0.08, (truth.item_id, band)
            scl = _read(s2.asset_path(item, s2.asset_keys[flavour]["scl"]))
            assert (scl[_change_mask(scl.shape, 2)] == 5).all()


def test_s2_series_effects(s2: rs.S2Archive, source_s2: dict[str, np.ndarray]) -> None:
    truths = s2.truth["earthsearch"]
    assert sum(t.cloudy for t in truths) == sum(t.shifted for t in truths) == 1
    assert sum(t.hazy for t in truths) == 1
    items = dict(zip([t.item_id for t in truths], s2.items["earthsearch"], strict=True))
    keep = ~_change_mask((200, 200), 1) & ~_change_mask((200, 200), 1, 1)
    for t in truths:
        item = items[t.item_id]
        blue = (_read(s2.asset_path(item, "blue")).astype(float) - t.offset_in_data) / 1e4
        if t.hazy:
            assert np.median(blue - source_s2["blue"]) == pytest.approx(0.015, abs=1e-3)
        if t.cloudy:
            w = s2.cloud_window
            scl = _read(s2.asset_path(item, "scl"))
            blk = scl[w.row_off // 2 : (w.row_off + w.height) // 2, w.col_off // 2 :][
                :, : w.width // 2
            ]
            assert (blk == 9).all()
            assert (scl == 9).sum() == blk.size
            assert (
                blue[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width].min() > 0.5
            )
            assert item["properties"]["eo:cloud_cover"] > 0
        if t.shifted:
            red = (_read(s2.asset_path(item, "red")).astype(float) - t.offset_in_data) / 1e4
            src = source_s2["red"]
            moved = red[:, 1:] - src[:, :-1]  # content of column c-1 sits at column c
            assert np.abs(moved[keep[:, 1:]]).max() < TOL
            assert np.abs(red - src)[keep].std() > 3 * NOISE  # not registered


def test_s2_cogs_validate(s2: rs.S2Archive) -> None:
    for flavour in rs.S2_FLAVOURS:
        item = s2.items[flavour][10]
        for key in s2.asset_keys[flavour].values():
            valid, errors, _warnings = cog_validate(str(s2.asset_path(item, key)), quiet=True)
            assert valid, (key, errors)
            assert not errors, key
            assert item["assets"][key]["type"] == rs.COG_TYPE


def test_landsat_lattice_metadata_and_decoding(landsat: rs.LandsatArchive, real_data: Path) -> None:
    src_dir = real_data / rs.LS_DIR
    with rasterio.open(src_dir / f"{rs.LS_PRODUCT}_SR_B4.TIF") as src:
        src_t, src_red = src.transform, src.read(1)
    src_qa = _read(src_dir / f"{rs.LS_PRODUCT}_QA_PIXEL.TIF")
    assert [i["properties"]["datetime"][:10] for i in landsat.items][5] == "2020-10-31"
    assert len(landsat.items) == 8
    for item, truth in zip(landsat.items, landsat.truth, strict=True):
        props = item["properties"]
        assert props["platform"] == "landsat-8"
        assert props["instruments"] == ["oli", "tirs"]
        assert props["proj:epsg"] == 32620
        assert (props["landsat:wrs_path"], props["landsat:wrs_row"]) == ("001", "062")
        assert item["collection"] == "landsat-c2-l2"
        assert set(item["assets"]) == {*rs.LS_SR_BANDS, "qa_pixel", "qa_radsat"}
        assert item["assets"]["red"]["href"].startswith("http://127.0.0.1:8765/")
        for key in item["assets"]:
            with rasterio.open(landsat.asset_path(item, key)) as ds:
                assert ds.transform == src_t  # the real lattice, not snapped
                assert list(ds.shape) == item["assets"][key]["proj:shape"]
        rb = item["assets"]["red"]["raster:bands"][0]
        assert (rb["scale"], rb["offset"], rb["nodata"]) == (2.75e-05, -0.2, 0)
        assert "scale" not in item["assets"]["qa_pixel"]["raster:bands"][0]
        red = _read(landsat.asset_path(item, "red"))
        # the real fill collar: SR 0 or QA_PIXEL fill (284 px are fill in QA only)
        assert ((red == 0) == ((src_red == 0) | (src_qa == 1))).all()
        decoded = red * rb["scale"] + rb["offset"]
        real = src_red * 2.75e-5 - 0.2
        keep = (src_red > 0) & (src_qa != 1)
        keep[landsat.change_window.toslices()] = False
        if truth.cloudy:
            keep[landsat.cloud_window.toslices()] = False
        assert np.abs(decoded - real)[keep].max() < TOL
        # forest is as dark as coal in red: the change shows in the NIR (forest ~0.3)
        nir = _read(landsat.asset_path(item, "nir08")) * rb["scale"] + rb["offset"]
        coal = nir[landsat.change_window.toslices()]
        if truth.cloudy:
            assert coal.min() > 0.5
        elif truth.date.year >= rs.LS_CHANGE_FIRST_YEAR:
            assert truth.changed
            assert coal.mean() == pytest.approx(rs.LS_COAL_REFLECTANCE["nir08"], abs=0.004)
        else:
            assert coal.mean() > 0.2
            assert not truth.changed
    assert landsat.site_polygon_wgs84.contains(landsat.change_polygon_wgs84)
    assert shape(landsat.items[0]["geometry"]).contains(landsat.site_polygon_wgs84)


def test_landsat_qa_cloud_bits(landsat: rs.LandsatArchive) -> None:
    w = landsat.cloud_window
    cloudy = [i for i, t in zip(landsat.items, landsat.truth, strict=True) if t.cloudy]
    clear = [i for i, t in zip(landsat.items, landsat.truth, strict=True) if not t.cloudy]
    assert len(cloudy) == 1
    qa = _read(landsat.asset_path(cloudy[0], "qa_pixel"))
    blk = qa[w.toslices()]
    assert ((blk >> 3) & 1).all()
    assert ((blk >> 1) & 1).all()
    assert (((blk >> 8) & 3) == 3).all()
    assert not ((blk >> 6) & 1).any()
    ring = qa[w.row_off - 1, w.col_off : w.col_off + w.width]
    assert ((ring >> 1) & 1).all()
    assert not ((ring >> 3) & 1).any()
    qa0 = _read(landsat.asset_path(clear[0], "qa_pixel"))
    assert (qa0[landsat.change_window.toslices()] == rs.QA_CLEAR).all()
    assert ((qa0 == 1) == (_read(landsat.asset_path(clear[0], "red")) == 0)).all()
    sr = _read(landsat.asset_path(cloudy[0], "blue")) * 2.75e-5 - 0.2
    assert sr[w.toslices()].min() > 0.5
    for item in (cloudy[0], clear[0]):
        for key in ("red", "qa_pixel"):
            valid, errors, _ = cog_validate(str(landsat.asset_path(item, key)), quiet=True)
            assert valid
            assert not errors


def test_builders_are_deterministic_and_served_over_http(
    real_data: Path, landsat: rs.LandsatArchive, tmp_path: Path, range_server: Any
) -> None:
    """Built again, with hrefs on a live range server: the same bytes, the same items but for
    the href prefix, and GDAL reads an asset through the href by byte ranges."""
    srv = range_server(tmp_path)
    again = rs.build_landsat_archive(real_data, tmp_path, srv.url)
    text = json.dumps(again.items).replace(srv.url + "/", landsat.base_href + "/")
    assert json.loads(text) == landsat.items
    for ia, ib in zip(landsat.items, again.items, strict=True):
        for key in ia["assets"]:
            a = landsat.asset_path(ia, key).read_bytes()
            assert a == again.asset_path(ib, key).read_bytes(), key
    item = again.items[6]
    href = item["assets"]["nir08"]["href"]
    assert href.startswith(srv.url + "/")
    env = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "0"}
    with rasterio.Env(**env), rasterio.open(f"/vsicurl/{href}") as ds:
        remote = ds.read(1, window=again.change_window)
    local = _read(again.asset_path(item, "nir08"))[again.change_window.toslices()]
    np.testing.assert_array_equal(remote, local)
    assert srv.stats()["total_bytes"] > 0


def test_static_catalog(s2: rs.S2Archive, landsat: rs.LandsatArchive, tmp_path: Path) -> None:
    pystac = pytest.importorskip("pystac")
    for flavour in rs.S2_FLAVOURS:
        path = rs.write_static_catalog(
            tmp_path / flavour, [s2.collections[flavour]], s2.items[flavour]
        )
        cat = pystac.Catalog.from_file(str(path))
        items = list(cat.get_items(recursive=True))
        assert sorted(i.id for i in items) == sorted(i["id"] for i in s2.items[flavour])
        red = s2.asset_keys[flavour]["red"]
        by_id = {i["id"]: i for i in s2.items[flavour]}
        for it in items:
            assert it.assets[red].href == by_id[it.id]["assets"][red]["href"]
        for f in (tmp_path / flavour).rglob("*.json"):
            for link in json.loads(f.read_text())["links"]:
                assert not link["href"].startswith(("/", "http")), (f, link)
    path = rs.write_static_catalog(tmp_path / "ls", landsat.collections, landsat.items)
    assert len(list(pystac.Catalog.from_file(str(path)).get_items(recursive=True))) == 8
    with pytest.raises(ValueError, match="duplicate"):
        rs.write_static_catalog(
            tmp_path / "both",
            [s2.collections["earthsearch"], s2.collections["planetary"]],
            s2.items["earthsearch"],
        )


# ---------------------------------------------------------------------------------------------
# full-size band
# ---------------------------------------------------------------------------------------------


def _tiff_tile_byte_counts(path: Path) -> tuple[int, int, list[int]]:
    """(tiles across, tile width, TileByteCounts) of the first IFD, parsed without GDAL."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        endian = "<" if head[:2] == b"II" else ">"
        big = struct.unpack(endian + "H", head[2:4])[0] == 43
        fh.seek(
            struct.unpack(endian + "Q", head[8:16])[0]
            if big
            else struct.unpack(endian + "I", head[4:8])[0]
        )
        n = struct.unpack(endian + ("Q" if big else "H"), fh.read(8 if big else 2))[0]
        entry = 20 if big else 12
        raw = fh.read(n * entry)
        tags: dict[int, tuple[int, int, bytes]] = {}
        for k in range(n):
            e = raw[k * entry : (k + 1) * entry]
            tag, typ = struct.unpack(endian + "HH", e[:4])
            count = struct.unpack(endian + ("Q" if big else "I"), e[4:12] if big else e[4:8])[0]
            tags[tag] = (typ, count, e[12:] if big else e[8:])
        sizes = {3: 2, 4: 4, 16: 8}

        def values(tag: int) -> list[int]:
            typ, count, payload = tags[tag]
            width = sizes[typ]
            fmt = endian + {2: "H", 4: "I", 8: "Q"}[width] * count
            if width * count <= len(payload):
                return list(struct.unpack(fmt, payload[: width * count]))
            off = struct.unpack(endian + ("Q" if big else "I"), payload)[0]
            fh.seek(off)
            return list(struct.unpack(fmt, fh.read(width * count)))

        image_width = values(256)[0]
        tile_width = values(322)[0]
        return math.ceil(image_width / tile_width), tile_width, values(325)


@pytest.mark.slow
def test_fullsize_band(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = os.environ.get("SITEWATCH_CACHE_DIR")
    root = Path(cache) / "realscenes" if cache else tmp_path_factory.mktemp("full")
    band = rs.build_fullsize_band(root, real_data=real_data)
    if not band.reused:
        assert band.build_seconds < 60
    again = rs.build_fullsize_band(root, real_data=real_data)
    assert again.reused
    assert again.path == band.path
    with rasterio.open(band.path) as ds:
        assert ds.shape == (10980, 10980)
        assert ds.crs.to_epsg() == 32629
        assert ds.transform == band.transform
        assert (band.transform.c, band.transform.f, band.transform.a) == (199980.0, 2800020.0, 10)
        assert ds.block_shapes[0] == (512, 512) == band.block_size
        assert ds.overviews(1)
        win = Window(5000, 3000, 700, 300)
        data = ds.read(1, window=win).astype(int)
    with rasterio.open(real_data / rs.S2_DIR / "B04.tif") as src:
        small = src.read(1).astype(int)
    rows = np.arange(3000, 3300) // 10
    cols = np.arange(5000, 5700) // 10
    extra = data - small[np.ix_(rows, cols)]
    assert extra.min() >= 0
    assert extra.max() <= 15
    assert extra.std() > 3
    valid, errors, _ = cog_validate(str(band.path), quiet=True)
    assert valid
    assert not errors
    across, tile_w, counts = _tiff_tile_byte_counts(band.path)
    assert tile_w == 512
    # window cols 5000..5699 -> tiles 9..11, rows 3000..3299 -> tiles 5..6
    expected = sum(counts[ty * across + tx] for ty in (5, 6) for tx in (9, 10, 11))
    assert band.tile_bytes(win) == expected
    assert band.tile_bytes(Window(0, 0, 1, 1)) == counts[0]
    assert expected > 6 * 512 * 512 * 2 * 0.2  # noise keeps the tiles from compressing away
