"""FolderSource: a local folder of GeoTIFF/JP2 scenes, described by provider file names or an
index CSV, searched and read through the ordinary sensor profiles."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from pydantic import ValidationError
from rasterio.windows import Window
from shapely.geometry import Polygon, box

from pipeline.errors import SceneReadError, SourceError
from pipeline.grid import Grid, reproject_geometry
from pipeline.masking import MaskReason
from pipeline.sites import Site
from pipeline.sources.base import SearchFilter, sun_angles
from pipeline.sources.folder import FolderSource, FolderSourceConfig, open_folder
from pipeline.sources.read import read_scene
from pipeline.sources.sensors import BANDS

LANDSAT_DIR = "landsat-c2-l2-LC08-001062-20201031"
LANDSAT_ID = "LC08_L2SP_001062_20201031_20201106_02_T2"
S2_CRS = "EPSG:32651"
LEFT, TOP = 300000.0, 4000020.0
S2_TIME = "20230915T022549"
SAFE = f"S2B_MSIL2A_{S2_TIME}_N0509_R046_T51SUH_20230915T061234.SAFE"


def write_raster(
    path: Path, data: np.ndarray, res: float, crs: str = S2_CRS, nodata: float | None = 0
) -> Path:
    """A single-band COG; ``.jp2`` names are copied losslessly to JPEG 2000."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "COG", "width": data.shape[1], "height": data.shape[0], "count": 1,
        "dtype": data.dtype.name, "crs": crs, "transform": Affine(res, 0, LEFT, 0, -res, TOP),
        "nodata": nodata,
    }  # fmt: skip
    target = path.with_suffix(".tmp.tif") if path.suffix.lower() == ".jp2" else path
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data, 1)
    if target != path:
        rasterio.shutil.copy(target, path, driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES")
        target.unlink()
    return path


def mtd_xml(baseline: str, offsets: bool = True, uri: str = SAFE) -> str:
    offset_list = "".join(
        f'<BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>' for i in range(13)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/'
        'User_Product_Level-2A.xsd"><n1:General_Info><Product_Info>'
        f"<PRODUCT_URI>{uri}</PRODUCT_URI><PROCESSING_BASELINE>{baseline}"
        "</PROCESSING_BASELINE><Datatake><SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>"
        "</Datatake></Product_Info><Product_Image_Characteristics>"
        "<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE>10000</BOA_QUANTIFICATION_VALUE>"
        "</QUANTIFICATION_VALUES_LIST>"
        + (
            f"<BOA_ADD_OFFSET_VALUES_LIST>{offset_list}</BOA_ADD_OFFSET_VALUES_LIST>"
            if offsets
            else ""
        )
        + "</Product_Image_Characteristics></n1:General_Info><n1:Quality_Indicators_Info>"
        "<Cloud_Coverage_Assessment>3.5</Cloud_Coverage_Assessment>"
        "</n1:Quality_Indicators_Info></n1:Level-2A_User_Product>\n"
    )


def write_s2_product(
    root: Path, safe: str | None = SAFE, xml: str | None = None, suffix: str = "_10m"
) -> Path:
    """A 1 km x 1 km Sentinel-2 L2A granule in the SAFE layout, with an offset in the data:
    B02 DN 1500 (reflectance 0.05 after DN - 1000), B12 DN 1300, SCL 6 (water: the dark
    reference the reader's offset check reads)."""
    product = root / safe if safe else root / "download"
    img = product / "GRANULE" / "L2A_T51SUH_A034000_20230915T023000" / "IMG_DATA"
    if xml is not None:
        product.mkdir(parents=True, exist_ok=True)
        (product / "MTD_MSIL2A.xml").write_text(xml, encoding="utf-8")
    for band, dn in (("B02", 1500), ("B03", 1600), ("B04", 1700), ("B08", 3000)):
        name = f"T51SUH_{S2_TIME}_{band}{suffix}.tif"
        write_raster(img / "R10m" / name, np.full((100, 100), dn, np.uint16), 10)
    suffix20 = "_20m" if suffix else ""
    for band, dn in (("B02", 9999), ("B11", 2500), ("B12", 1300), ("B8A", 3100)):
        name = f"T51SUH_{S2_TIME}_{band}{suffix20}.tif"
        if band == "B02" and not suffix:
            name = f"t51suh_{S2_TIME}_b02.TIF"  # the 20 m copy, other case: the finest wins
        write_raster(img / "R20m" / name, np.full((50, 50), dn, np.uint16), 20)
    write_raster(
        img / "R20m" / f"T51SUH_{S2_TIME}_SCL{suffix20}.jp2", np.full((50, 50), 6, np.uint8), 20
    )
    return product


def site_over(crs: str, bounds: tuple[float, float, float, float], site_id: str = "s") -> Site:
    geom = reproject_geometry(box(*bounds), crs, "EPSG:4326")
    assert isinstance(geom, Polygon)
    return Site(site_id, site_id, kind="other", geometry=geom, source="test")


S2_SITE_BOUNDS = (LEFT + 200, TOP - 800, LEFT + 600, TOP - 200)
S2_GRID = Grid(S2_CRS, Affine(10, 0, LEFT + 200, 0, -10, TOP - 200), 40, 30)


# --- the real Landsat 8 scene ---------------------------------------------------------------


@pytest.fixture(scope="module")
def landsat_folder(real_data: Path) -> Path:
    folder = real_data / LANDSAT_DIR
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


@pytest.mark.realdata
def test_real_landsat_is_indexed_from_its_file_names(landsat_folder: Path) -> None:
    source = FolderSource(landsat_folder)
    assert len(source) == 1
    scene = source.scenes[0]
    assert scene.id == LANDSAT_ID
    assert scene.collection == "landsat-c2-l2"
    assert scene.profile == "landsat-c2-l2"
    assert scene.date == date(2020, 10, 31)
    assert scene.datetime == datetime(2020, 10, 31, 14, 31, 47, 808399, tzinfo=UTC)  # MTL.json
    assert scene.platform == "landsat-8"
    assert scene.properties["eo:cloud_cover"] == pytest.approx(99.94)
    assert sun_angles(scene.properties) == (64.45083205, 118.08241478)  # cloud shadows need it
    assert scene.crs == "EPSG:32620"
    assert set(scene.assets) == {
        "blue", "green", "red", "nir08", "swir16", "swir22", "qa_pixel", "qa_radsat",
    }  # fmt: skip
    # OLI band numbering: blue is SR_B2, nir08 SR_B5, swir22 SR_B7.
    assert scene.assets["blue"].href.endswith("_SR_B2.TIF")
    assert scene.assets["nir08"].href.endswith("_SR_B5.TIF")
    assert scene.assets["swir22"].href.endswith("_SR_B7.TIF")
    with rasterio.open(landsat_folder / f"{LANDSAT_ID}_SR_B2.TIF") as src:
        assert scene.assets["blue"].transform == tuple(src.transform)[:6]
        assert scene.assets["blue"].shape == (src.height, src.width)
    assert scene.assets["blue"].raster_bands[0]["scale"] == 2.75e-05
    assert scene.assets["blue"].raster_bands[0]["offset"] == -0.2
    assert scene.assets["qa_pixel"].raster_bands == ()


@pytest.mark.realdata
def test_real_landsat_search_by_place_date_and_filter(landsat_folder: Path) -> None:
    source = FolderSource(landsat_folder)
    inside = Site("amazon", "inside", "other", box(-65.3, -3.0, -65.1, -2.8), "test")
    elsewhere = Site("korea", "outside", "other", box(126.0, 39.0, 126.1, 39.1), "test")
    day = date(2020, 10, 31)
    assert [s.id for s in source.search(inside, day, day)] == [LANDSAT_ID]  # inclusive
    assert [s.id for s in source.search(inside, date(2020, 1, 1), date(2020, 12, 31))] == [
        LANDSAT_ID
    ]
    assert source.search(inside, date(2020, 11, 1), date(2020, 12, 31)) == []
    assert source.search(inside, date(2020, 1, 1), date(2020, 10, 30)) == []
    assert source.search(elsewhere, date(2020, 1, 1), date(2020, 12, 31)) == []
    cloudy = FolderSource(landsat_folder, search_filter=SearchFilter(max_cloud_cover=50))
    assert cloudy.search(inside, day, day) == []  # eo:cloud_cover 99.94 from the MTL
    other = FolderSource(landsat_folder, search_filter=SearchFilter(platforms=("landsat-9",)))
    assert other.search(inside, day, day) == []


@pytest.mark.realdata
def test_real_landsat_reads_on_its_own_lattice(landsat_folder: Path) -> None:
    scene = FolderSource(landsat_folder).scenes[0]
    t = Affine(*scene.assets["blue"].transform)
    row0, col0, height, width = 30, 180, 150, 199  # holds fill, cloud and clear pixels
    grid = Grid("EPSG:32620", t @ Affine.translation(col0, row0), width, height)
    obs = read_scene(scene, grid)

    assert obs.reflectance.shape == (len(BANDS), height, width)
    assert obs.radiometry.scale == 2.75e-05
    window = Window(col0, row0, width, height)
    for i, band in enumerate(("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7")):
        with rasterio.open(landsat_folder / f"{LANDSAT_ID}_{band}.TIF") as src:
            dn = src.read(1, window=window).astype(np.float64)
        refl = obs.reflectance[i]
        valid = dn != 0
        assert np.isnan(refl[~valid]).all()  # nodata 0
        assert np.isfinite(refl[valid]).all()
        # Same pixels, no half-pixel shift: the DN come back exactly.
        np.testing.assert_array_equal(np.round((refl[valid] + 0.2) / 2.75e-05), dn[valid])
        np.testing.assert_allclose(refl[valid], dn[valid] * 0.0000275 - 0.2, rtol=0, atol=1e-6)
        assert refl[valid].min() >= -0.2
        assert refl[valid].max() <= 1.61
    finite = obs.reflectance[np.isfinite(obs.reflectance)]
    assert np.mean((finite >= 0) & (finite <= 1)) > 0.95

    with rasterio.open(landsat_folder / f"{LANDSAT_ID}_QA_PIXEL.TIF") as src:
        qa = src.read(1, window=window).astype(np.uint32)
    bit = {b: (qa >> b) & 1 == 1 for b in range(8)}
    fill, cloud = bit[0], bit[3] & ~bit[0]
    clear = bit[6] & ~(bit[0] | bit[1] | bit[2] | bit[3] | bit[5])
    has_data = np.isfinite(obs.reflectance).all(axis=0)
    assert fill.sum() > 100
    assert cloud.sum() > 1000
    assert (clear & has_data).sum() > 10
    assert (obs.reasons[fill] == MaskReason.NODATA).all()
    assert (obs.reasons[cloud & has_data] == MaskReason.CLOUD).all()
    assert (obs.reasons[clear & has_data] == MaskReason.CLEAR).all()
    assert (obs.reasons[~has_data] == MaskReason.NODATA).all()


# --- Sentinel-2 SAFE-style names -------------------------------------------------------------


def test_s2_safe_product_reads_baseline_and_offset_from_mtd(tmp_path: Path) -> None:
    write_s2_product(tmp_path, xml=mtd_xml("05.09"))
    source = FolderSource(tmp_path)
    assert len(source) == 1
    scene = source.scenes[0]
    assert scene.id == f"S2_T51SUH_{S2_TIME}"
    assert scene.collection == "sentinel-2-l2a"
    assert scene.profile == "earth-search/sentinel-2-l2a"
    assert scene.datetime == datetime(2023, 9, 15, 2, 25, 49, tzinfo=UTC)
    assert scene.crs == S2_CRS
    assert scene.properties["s2:processing_baseline"] == "05.09"
    assert scene.properties["earthsearch:boa_offset_applied"] is False
    assert scene.properties["platform"] == "sentinel-2b"
    assert scene.properties["eo:cloud_cover"] == 3.5
    assert set(scene.assets) == {"blue", "green", "red", "nir", "swir16", "swir22", "scl"}
    assert scene.assets["blue"].href.endswith("B02_10m.tif")  # finest of 10 m and 20 m
    assert scene.assets["scl"].href.endswith("SCL_20m.jp2")
    assert scene.assets["swir22"].transform == (20.0, 0.0, LEFT, 0.0, -20.0, TOP)
    assert scene.assets["swir22"].shape == (50, 50)

    obs = read_scene(scene, S2_GRID)
    assert obs.radiometry.offset_dn == -1000
    assert obs.radiometry.check.startswith("confirmed")
    np.testing.assert_allclose(obs.reflectance[BANDS.index("blue")], 0.05, atol=1e-6)
    np.testing.assert_allclose(obs.reflectance[BANDS.index("swir22")], 0.03, atol=1e-6)
    assert (obs.reasons == MaskReason.CLEAR).all()

    site = site_over(S2_CRS, S2_SITE_BOUNDS)
    assert [s.id for s in source.search(site, date(2023, 9, 15), date(2023, 9, 15))] == [scene.id]
    assert source.search(site, date(2023, 9, 16), date(2023, 10, 1)) == []


def test_s2_mtd_outside_a_safe_name_and_plain_band_names(tmp_path: Path) -> None:
    """The XML is found walking up from ``..._B02.tif`` names (no resolution suffix) in a
    folder that is not named like a SAFE product."""
    write_s2_product(tmp_path, safe=None, xml=mtd_xml("04.00"), suffix="")
    scene = FolderSource(tmp_path, processing_baseline="03.01").scenes[0]
    assert scene.properties["s2:processing_baseline"] == "04.00"  # XML over config
    assert scene.assets["blue"].href.endswith(f"R10m/T51SUH_{S2_TIME}_B02.tif")
    assert read_scene(scene, S2_GRID).radiometry.offset_dn == -1000


def test_s2_baseline_from_safe_name_then_config_then_pixels(tmp_path: Path) -> None:
    write_s2_product(tmp_path / "a")  # no XML: the SAFE name's N0509
    scene = FolderSource(tmp_path / "a").scenes[0]
    assert scene.properties["s2:processing_baseline"] == "05.09"
    assert scene.properties["platform"] == "sentinel-2b"
    assert "earthsearch:boa_offset_applied" not in scene.properties

    write_s2_product(tmp_path / "b", safe=None)  # neither XML nor SAFE name
    scene = FolderSource(tmp_path / "b", processing_baseline="04.00").scenes[0]
    assert scene.properties["s2:processing_baseline"] == "04.00"
    assert "platform" not in scene.properties

    scene = FolderSource(tmp_path / "b").scenes[0]
    assert "s2:processing_baseline" not in scene.properties
    obs = read_scene(scene, S2_GRID)  # the metadata says no offset; the pixels overrule it
    assert obs.radiometry.offset_dn == -1000
    assert obs.radiometry.check.startswith("contradicted")
    np.testing.assert_allclose(obs.reflectance[BANDS.index("blue")], 0.05, atol=1e-6)


def test_s2_mtd_of_another_acquisition_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = SAFE.replace(S2_TIME, "20230920T022549")
    write_s2_product(tmp_path, safe=None, xml=mtd_xml("05.09", uri=other))
    with caplog.at_level(logging.WARNING):
        scene = FolderSource(tmp_path, processing_baseline="04.00").scenes[0]
    assert scene.properties["s2:processing_baseline"] == "04.00"
    assert "not the acquisition" in caplog.text


def test_s2_scene_missing_a_band_is_kept_for_the_reader_to_skip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    product = write_s2_product(tmp_path)
    next(product.rglob("*_SCL_20m.jp2")).unlink()
    with caplog.at_level(logging.WARNING):
        source = FolderSource(tmp_path)
    assert len(source) == 1
    assert "lacks ['scl']" in caplog.text
    with pytest.raises(SceneReadError, match=r"assets \['scl'\] missing"):
        read_scene(source.scenes[0], S2_GRID)


def test_s2_two_products_of_one_acquisition_are_refused(tmp_path: Path) -> None:
    write_s2_product(tmp_path, xml=mtd_xml("05.09"))
    write_s2_product(
        tmp_path,
        safe=SAFE.replace("N0509", "N0400"),
        xml=mtd_xml("04.00", uri=SAFE.replace("N0509", "N0400")),
    )
    with pytest.raises(SourceError, match="several products"):
        FolderSource(tmp_path)


def test_landsat_tm_numbering_and_mtl_txt(tmp_path: Path) -> None:
    pid = "LE07_L2SP_116033_20100915_20100920_02_T1"
    for band in ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7", "QA_PIXEL", "ST_B6"):
        write_raster(tmp_path / f"{pid}_{band}.TIF", np.full((10, 10), 9000, np.uint16), 30)
    (tmp_path / f"{pid}_MTL.txt").write_text(
        "GROUP = LANDSAT_METADATA_FILE\n  GROUP = IMAGE_ATTRIBUTES\n    CLOUD_COVER = 12.34\n"
        "    SUN_AZIMUTH = 151.2\n    SUN_ELEVATION = north\n"
        '    DATE_ACQUIRED = 2010-09-15\n    SCENE_CENTER_TIME = "02:13:45.1234567Z"\n'
        "  END_GROUP = IMAGE_ATTRIBUTES\nEND_GROUP = LANDSAT_METADATA_FILE\nEND\n",
        encoding="utf-8",
    )
    l1 = "LC08_L1TP_116033_20100915_20100920_02_T1_B2.TIF"
    write_raster(tmp_path / l1, np.full((10, 10), 9000, np.uint16), 30)
    scene = FolderSource(tmp_path).scenes[0]  # the Level-1 file is not a scene
    assert scene.id == pid
    assert scene.platform == "landsat-7"
    assert scene.datetime == datetime(2010, 9, 15, 2, 13, 45, 123456, tzinfo=UTC)
    assert scene.properties["eo:cloud_cover"] == 12.34
    assert sun_angles(scene.properties) is None  # an elevation that is not a number
    assert scene.assets["blue"].href.endswith("_SR_B1.TIF")
    assert scene.assets["nir08"].href.endswith("_SR_B4.TIF")
    assert scene.assets["swir16"].href.endswith("_SR_B5.TIF")
    assert scene.assets["swir22"].href.endswith("_SR_B7.TIF")
    assert "qa_radsat" not in scene.assets  # optional
    obs = read_scene(scene, Grid(S2_CRS, Affine(30, 0, LEFT, 0, -30, TOP), 5, 5))
    np.testing.assert_allclose(obs.reflectance, 9000 * 2.75e-05 - 0.2, atol=1e-6)


# --- index CSV ---------------------------------------------------------------------------------

HEADER = "scene_id,datetime,sensor,band,path,band_index,processing_baseline,platform,cloud_cover"


def write_index(root: Path, rows: list[str], header: str = HEADER) -> Path:
    files = root / "vendor"
    for name, dn, res in (
        ("img_blue", 1500, 10), ("img_green", 1600, 10), ("img_red", 1700, 10),
        ("img_nir", 3000, 10), ("img_sw1", 2500, 20), ("img_sw2", 1300, 20),
    ):  # fmt: skip
        n = 100 if res == 10 else 50
        write_raster(files / f"{name}.tif", np.full((n, n), dn, np.uint16), res)
    write_raster(files / "mask.tif", np.full((50, 50), 4, np.uint8), 20)
    path = root / "scenes.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


GOOD_ROWS = [
    "acme_001,2023-09-15,sentinel-2-l2a,blue,vendor/img_blue.tif,1,05.09,sentinel-2a,5",
    "acme_001,2023-09-15,sentinel-2-l2a,B03,vendor/img_green.tif,,,,",
    "acme_001,2023-09-15,Sentinel-2-L2A,red,vendor/img_red.tif,,,,",
    "acme_001,2023-09-15,sentinel-2-l2a,b08,vendor/img_nir.tif,,05.09,,",
    "acme_001,2023-09-15,sentinel-2-l2a,swir16,vendor/img_sw1.tif,,,,",
    "acme_001,2023-09-15,sentinel-2-l2a,B12,vendor/img_sw2.tif,,,,",
    "acme_001,2023-09-15,sentinel-2-l2a,SCL,vendor/mask.tif,,,,",
]


def test_index_csv_scene(tmp_path: Path) -> None:
    write_index(tmp_path, GOOD_ROWS)
    source = FolderSource(tmp_path, index=Path("scenes.csv"))
    assert len(source) == 1
    scene = source.scenes[0]
    assert scene.id == "acme_001"
    assert scene.datetime == datetime(2023, 9, 15, tzinfo=UTC)  # a date alone: 00:00 UTC
    assert scene.profile == "earth-search/sentinel-2-l2a"
    assert scene.properties["s2:processing_baseline"] == "05.09"
    assert scene.properties["platform"] == "sentinel-2a"
    assert scene.properties["eo:cloud_cover"] == 5.0
    assert scene.assets["nir"].href.endswith("img_nir.tif")
    obs = read_scene(scene, S2_GRID)
    np.testing.assert_allclose(obs.reflectance[BANDS.index("blue")], 0.05, atol=1e-6)
    site = site_over(S2_CRS, S2_SITE_BOUNDS)
    assert len(source.search(site, date(2023, 9, 15), date(2023, 9, 15))) == 1


def test_index_datetime_with_offset_is_utc(tmp_path: Path) -> None:
    rows = [r.replace("2023-09-15", "2023-09-15T09:00:00+09:00") for r in GOOD_ROWS]
    write_index(tmp_path, rows)
    scene = FolderSource(tmp_path, index=Path("scenes.csv")).scenes[0]
    assert scene.datetime == datetime(2023, 9, 15, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("row", "column", "value", "allowed"),
    [
        ("acme_001,2023-09-15,sentinel-2-l2a,B99,vendor/img_green.tif,,,,", "band", "B99", "allowed: blue"),
        ("acme_001,2023-09-15,sentinel-2-l2a,qa_pixel,vendor/img_green.tif,,,,", "band", "qa_pixel", "allowed: blue"),
        ("acme_001,2023-15-45,sentinel-2-l2a,B03,vendor/img_green.tif,,,,", "datetime", "2023-15-45", "ISO 8601"),
        ("acme_001,2023-09-15,sentinel-2-l2a,B03,vendor/nope.tif,,,,", "path", "vendor/nope.tif", "not a file"),
        ("acme_001,2023-09-15,planetscope,B03,vendor/img_green.tif,,,,", "sensor", "planetscope", "allowed: sentinel-2-l2a, landsat-c2-l2"),
        ("acme_001,2023-09-15,sentinel-2-l2a,B03,vendor/img_green.tif,2,,,", "band_index", "2", "gdal_translate -b 2"),
        ("acme_001,2023-09-15,sentinel-2-l2a,B03,vendor/img_green.tif,,5.9,,", "processing_baseline", "5.9", "NN.NN"),
        ("acme_001,2023-09-15,sentinel-2-l2a,B03,vendor/img_green.tif,,,landsat-8,", "platform", "landsat-8", "sentinel-2a"),
        ("acme_001,2023-09-15,sentinel-2-l2a,B03,vendor/img_green.tif,,,,140", "cloud_cover", "140", "0-100"),
        ("acme_001,2023-09-15,sentinel-2-l2a,blue,vendor/img_green.tif,,,,", "band", "blue", "repeats"),
        ("acme 1,2023-09-15,sentinel-2-l2a,B03,vendor/img_green.tif,,,,", "scene_id", "acme 1", "allowed"),
    ],
)  # fmt: skip
def test_index_bad_row_names_file_row_column_and_value(
    tmp_path: Path, row: str, column: str, value: str, allowed: str
) -> None:
    """The bad row is the CSV's row 3 (header row 1, a good row 2), as a spreadsheet shows it."""
    write_index(tmp_path, [GOOD_ROWS[0], row])
    with pytest.raises(SourceError) as info:
        FolderSource(tmp_path, index=Path("scenes.csv"))
    message = str(info.value)
    assert str(tmp_path / "scenes.csv") in message
    assert "row 3" in message
    assert f"column {column!r}" in message
    assert repr(value) in message
    assert allowed in message


def test_index_contradicting_rows_and_landsat_ids(tmp_path: Path) -> None:
    write_index(tmp_path, [GOOD_ROWS[0], GOOD_ROWS[1].replace("2023-09-15", "2023-09-16")])
    with pytest.raises(
        SourceError, match=r"row 3, column 'datetime': '2023-09-16' contradicts row 2"
    ):
        FolderSource(tmp_path, index=Path("scenes.csv"))
    row = "l8,2020-10-31,landsat-c2-l2,SR_B2,vendor/img_blue.tif,,,,"
    write_index(tmp_path, [row])
    with pytest.raises(SourceError, match="give the platform column"):
        FolderSource(tmp_path, index=Path("scenes.csv"))
    write_index(tmp_path, [row.replace(",,,,", ",,,landsat-8,")])
    scene = FolderSource(tmp_path, index=Path("scenes.csv")).scenes[0]
    assert scene.profile == "landsat-c2-l2"
    assert scene.assets["blue"].raster_bands[0]["scale"] == 2.75e-05


def test_index_header_and_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="index CSV not found"):
        FolderSource(tmp_path, index=Path("scenes.csv"))
    write_index(tmp_path, GOOD_ROWS[:1], header=HEADER.replace("datetime", "date"))
    with pytest.raises(
        SourceError,
        match=r"row 1 \(header\): unknown columns \['date'\]; missing columns \['datetime'\]",
    ):
        FolderSource(tmp_path, index=Path("scenes.csv"))


def test_index_files_are_not_also_read_by_name(tmp_path: Path) -> None:
    """A file the CSV lists is that scene's only, even when its name matches a pattern."""
    write_index(tmp_path, GOOD_ROWS)
    named = tmp_path / "vendor" / f"T51SUH_{S2_TIME}_B02_10m.tif"
    (tmp_path / "vendor" / "img_blue.tif").rename(named)
    index = tmp_path / "scenes.csv"
    index.write_text(index.read_text().replace("img_blue.tif", named.name))
    assert [s.id for s in FolderSource(tmp_path, index=Path("scenes.csv"))] == ["acme_001"]


# --- config -------------------------------------------------------------------------------------


def test_config_opens_the_folder(tmp_path: Path) -> None:
    write_index(tmp_path, GOOD_ROWS)
    config = FolderSourceConfig(path=tmp_path, index=Path("scenes.csv"), max_cloud_cover=4)
    source = open_folder(config)
    assert source.name == "folder"
    assert len(source) == 1
    site = site_over(S2_CRS, S2_SITE_BOUNDS)
    assert source.search(site, date(2023, 9, 1), date(2023, 9, 30)) == []  # 5 % > 4 %
    assert len(config.hash_data()["index"]) == 64  # the CSV by content
    with pytest.raises(ValidationError, match="String should match pattern"):
        FolderSourceConfig(path=tmp_path, processing_baseline="4.0")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FolderSourceConfig.model_validate({"path": str(tmp_path), "folder": "x"})
    for name, info in FolderSourceConfig.model_fields.items():
        assert info.description, name


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="scene folder not found"):
        FolderSource(tmp_path / "nope")
