"""`sitewatch compare` converts each date by its own product's rule (issue 8): Sentinel-2 L1C and
L2A across processing baseline 04.00 (the +1000 DN offset), Landsat C2 L2, and says per date what
it did and why.

Inputs are built in tmp_path from the real scenes in ../shared/real-data (skipped with the reason
when absent): the same ground on both dates with independent 0.004-reflectance noise, AFTER
written with the offset a baseline-04.00 product carries, and metadata saying so or not.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from pipeline.cli import main
from pipeline.compare import compare, parse_baseline_option
from pipeline.errors import InputRasterError
from pipeline.sources.local import locate_input

pytestmark = pytest.mark.realdata

S2_DIR = "sentinel2-l2a-29RKH-20200219"
S2_ITEM = "S2A_29RKH_20200219_0_L2A.json"
LS_DIR = "landsat-c2-l2-LC08-001062-20201031"
LS_PID = "LC08_L2SP_001062_20201031_20201106_02_T2"
S2_FILES = ("B02", "B03", "B04", "B08", "B11", "B12")
OSCD_BANDS = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip
# 300 x 300 px of the 100 m bands (150 x 150 of the 200 m ones), with some cloud and cirrus.
ROW0, COL0, SIZE = 200, 600, 300
NOISE = 0.004  # reflectance: a realistic no-change difference, never the identical image
BASELINE_DN = 1000  # what processing baseline 04.00 adds to the DN


# --- builders --------------------------------------------------------------------------------


def window_transform(t: Affine, win: Window) -> Affine:
    """The transform of ``win`` of a north-up raster (rasterio's uses the deprecated ``*``)."""
    return Affine(t.a, 0.0, t.c + win.col_off * t.a, 0.0, t.e, t.f + win.row_off * t.e)


def s2_date(real_data: Path, folder: Path, seed: int, add_dn: int = 0) -> Path:
    """The real L2A scene's window as a band folder (B02.tif ... B12.tif, SCL.tif): the same
    ground, Gaussian noise of ``NOISE`` and ``add_dn`` added to every reflectance band."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for band in (*S2_FILES, "SCL"):
        with rasterio.open(real_data / S2_DIR / f"{band}.tif") as src:
            f = round(src.res[0] / 100)
            win = Window(COL0 // f, ROW0 // f, SIZE // f, SIZE // f)
            data = src.read(1, window=win)
            profile = {
                "driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
                "dtype": src.dtypes[0], "crs": src.crs, "transform": window_transform(src.transform, win),
                "nodata": src.nodata,
            }  # fmt: skip
        if band != "SCL":
            dn = data + rng.normal(0, NOISE * 10_000, data.shape) + add_dn
            data = np.where(data == 0, 0, np.clip(np.round(dn), 1, 65535)).astype(np.uint16)
        with rasterio.open(folder / f"{band}.tif", "w", **profile) as dst:
            dst.write(data, 1)
    return folder


def write_mtd(
    folder: Path, level: str, baseline: str, offset_dn: int | None, name: str = ""
) -> Path:
    """A product metadata file as ESA writes it (the elements compare reads)."""
    sat = "S2A" if level == "L1C" else "S2B"
    uri = (
        name
        or f"{sat}_MSI{level}_20220315T112119_N{baseline.replace('.', '')}_R037_T29RKH_20220315T130000.SAFE"
    )
    offsets = ""
    if level == "L2A":
        quant = '<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE><AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>'
        if offset_dn is not None:
            values = "".join(
                f'<BOA_ADD_OFFSET band_id="{i}">{offset_dn}</BOA_ADD_OFFSET>' for i in range(13)
            )
            offsets = f"<BOA_ADD_OFFSET_VALUES_LIST>{values}</BOA_ADD_OFFSET_VALUES_LIST>"
    else:
        quant = '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
        if offset_dn is not None:
            values = "".join(
                f'<RADIO_ADD_OFFSET band_id="{i}">{offset_dn}</RADIO_ADD_OFFSET>' for i in range(13)
            )
            offsets = f"<Radiometric_Offset_List>{values}</Radiometric_Offset_List>"
    root = "Level-2A_User_Product" if level == "L2A" else "Level-1C_User_Product"
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:{root} xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_{level}.xsd">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_URI>{uri}</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
      <Datatake><SPACECRAFT_NAME>Sentinel-2{sat[-1]}</SPACECRAFT_NAME></Datatake>
    </Product_Info>
    <Product_Image_Characteristics>{quant}{offsets}</Product_Image_Characteristics>
  </n1:General_Info>
</n1:{root}>
"""
    path = folder / f"MTD_MSI{level}.xml"
    path.write_text(xml, encoding="utf-8")
    return path


def write_stac(
    real_data: Path, folder: Path, baseline: str | None, applied: bool | None = False
) -> Path:
    """The real scene's STAC item with its baseline (and Earth Search flag) replaced."""
    item = json.loads((real_data / S2_DIR / S2_ITEM).read_text())
    props = item["properties"]
    for key, value in (
        ("s2:processing_baseline", baseline),
        ("earthsearch:boa_offset_applied", applied),
    ):
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    if baseline is not None:
        props["s2:product_uri"] = (
            f"S2A_MSIL2A_20220315T112119_N{baseline.replace('.', '')}_R037_T29RKH_"
            "20220315T130000.SAFE"
        )
    path = folder / "item.json"
    path.write_text(json.dumps(item), encoding="utf-8")
    return path


def two_date_medians(summary: dict[str, Any]) -> dict[str, float]:
    """Band -> median AFTER - BEFORE reflectance, as the summary's two-date check states it."""
    text = summary["radiometry"]["two_date_check"]
    found = re.findall(r"(blue|green|red|nir|swir16|swir22) ([+-]\d\.\d{3})", text)
    assert len(found) == 6, text
    return {band: float(value) for band, value in found}


def expansion_fraction(summary: dict[str, Any]) -> float:
    return float(summary["expansion_pixels"]) / float(summary["valid_pixels"])


def changed_fraction(summary: dict[str, Any]) -> float:
    return float(summary["changed_pixels"]) / float(summary["valid_pixels"])


@pytest.fixture
def l2a_pair(real_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """BEFORE (baseline 02.14 ground) and AFTER (the same ground + 1000 DN), no metadata yet."""
    before = s2_date(real_data, tmp_path / "before", seed=1)
    after = s2_date(real_data, tmp_path / "after", seed=2, add_dn=BASELINE_DN)
    return before, after


# --- Sentinel-2 L2A across baseline 04.00 ----------------------------------------------------


@pytest.mark.parametrize("told_by", ["mtd", "stac", "option"])
def test_l2a_pair_spanning_baseline_0400_offset_applied_to_after(
    real_data: Path, tmp_path: Path, l2a_pair: tuple[Path, Path], told_by: str
) -> None:
    before, after = l2a_pair
    option = None
    if told_by == "mtd":
        write_mtd(before, "L2A", "02.14", None)
        write_mtd(after, "L2A", "04.00", -BASELINE_DN)
        expected_from = "MTD_MSIL2A.xml"
    elif told_by == "stac":
        shutil.copy(real_data / S2_DIR / S2_ITEM, before / S2_ITEM)  # the real item: 02.14
        write_stac(real_data, after, "04.00")
        expected_from = "item.json (s2:processing_baseline)"
    else:
        option = "02.14,04.00"
        expected_from = "--baseline"
    summary = compare(before, after, tmp_path / "o", baseline=option)
    rad = summary["radiometry"]
    assert rad["before"]["offset"] == 0.0
    assert rad["after"]["offset"] == pytest.approx(-0.1, abs=1e-12)
    assert rad["after"]["scale"] == pytest.approx(1e-4)
    assert rad["after"]["baseline"] == "04.00"
    assert expected_from in rad["after"]["baseline_from"]
    assert rad["after"]["decided_by"] == ("--baseline" if option else "metadata")
    why = rad["after"]["why"]
    assert ("BOA_ADD_OFFSET -1000" in why) if told_by == "mtd" else ("DN - 1000" in why), why
    if told_by != "option":
        assert rad["after"]["product"] == "L2A"
    assert summary["warnings"] == []
    # corrected, the dates read the same reflectance band by band (noise apart)
    assert all(abs(m) <= 0.002 for m in two_date_medians(summary).values()), summary
    if told_by == "mtd":
        assert rad["after"]["platform"] == "sentinel-2b"  # SPACECRAFT_NAME
    assert summary["masked_by_scl_pixels"] > 0  # the window's cirrus, as before
    assert summary["valid_pixels"] > 50_000
    assert expansion_fraction(summary) < 0.001, summary
    assert changed_fraction(summary) < 0.01, summary


def test_l2a_offset_on_cli_with_baseline_option(
    l2a_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after = l2a_pair
    argv = [str(before), str(after), "--out", str(tmp_path / "o"), "--baseline", "02.14,04.00"]
    assert main(["-q", "compare", *argv]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["radiometry"]["after"]["offset"] == pytest.approx(-0.1)
    assert summary["radiometry"]["after"]["baseline_from"] == "--baseline"
    assert summary["expansion_pixels"] <= 0.001 * summary["valid_pixels"]
    # one value for both dates, and an empty side taken from the metadata
    assert parse_baseline_option("04.00") == ("04.00", "04.00")
    assert parse_baseline_option(",04.00") == (None, "04.00")
    assert parse_baseline_option("04.00,") == ("04.00", None)
    assert parse_baseline_option(("02.09", None)) == ("02.09", None)


def test_explicit_scale_still_wins_and_the_shift_is_reported(
    l2a_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    """Today's single --scale for both dates: AFTER reads 0.1 too bright; compare says so."""
    before, after = l2a_pair
    write_mtd(after, "L2A", "04.00", -BASELINE_DN)
    summary = compare(before, after, tmp_path / "o", scale=1e-4)
    rad = summary["radiometry"]
    assert rad["after"]["offset"] == 0.0
    assert rad["after"]["decided_by"] == "--scale/--offset"
    assert all(m == pytest.approx(0.1, abs=0.002) for m in two_date_medians(summary).values())
    assert any(
        "AFTER reads a uniform +0.10" in w and "give --baseline instead" in w
        for w in summary["warnings"]
    ), summary["warnings"]


def test_l2a_offset_without_metadata_found_from_the_pixels(
    real_data: Path, l2a_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    """AFTER says nothing of its baseline; the desert has nothing dark enough for the absolute
    check, but AFTER reads a uniform +0.1 over BEFORE (whose item says 02.14) in every band: the
    offset is in AFTER's data."""
    before, after = l2a_pair
    shutil.copy(real_data / S2_DIR / S2_ITEM, before / S2_ITEM)
    summary = compare(before, after, tmp_path / "o")
    rad = summary["radiometry"]
    assert rad["after"]["baseline"] is None
    assert rad["after"]["baseline_from"] == "none"
    assert rad["after"]["pixel_check"].startswith("inconclusive")
    assert rad["after"]["decided_by"] == "pixels"
    assert rad["after"]["offset"] == pytest.approx(-0.1)
    assert "two-date check" in rad["after"]["why"]
    assert "DN -1000" in rad["after"]["why"]
    assert rad["before"]["offset"] == 0.0
    assert summary["warnings"] == []
    assert expansion_fraction(summary) < 0.001


def test_no_metadata_anywhere_corrects_the_brighter_date_and_warns_loudly(
    l2a_pair: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before, after = l2a_pair
    summary = compare(before, after, tmp_path / "o")
    rad = summary["radiometry"]
    assert rad["after"]["offset"] == pytest.approx(-0.1)  # the brighter one carries it
    assert rad["before"]["decided_by"] == "assumed"
    assert rad["before"]["offset"] == 0.0
    (warning,) = summary["warnings"]
    assert warning.startswith("BEFORE")
    assert "no processing baseline" in warning
    assert "read with NO offset" in warning
    assert "give --baseline" in warning
    assert "read with NO offset" in caplog.text


def test_no_metadata_and_no_shift_warns_for_both_dates(real_data: Path, tmp_path: Path) -> None:
    before = s2_date(real_data, tmp_path / "b", seed=1)
    after = s2_date(real_data, tmp_path / "a", seed=2)
    summary = compare(before, after, tmp_path / "o")
    rad = summary["radiometry"]
    assert rad["before"]["decided_by"] == rad["after"]["decided_by"] == "assumed"
    assert rad["before"]["product"] == "L2A"  # SCL.tif: a Level-2A file
    assert [w.split(" ", 1)[0] for w in summary["warnings"]] == ["BEFORE", "AFTER"]
    assert expansion_fraction(summary) < 0.001


def test_baseline_option_contradicting_metadata_wins_with_a_warning(
    real_data: Path, tmp_path: Path
) -> None:
    """AFTER's item claims 04.00 but its data carry no offset (say, harmonised by whoever
    exported them); the analyst, who knows, gives --baseline: the option wins, with a warning."""
    before = s2_date(real_data, tmp_path / "b", seed=1)
    after = s2_date(real_data, tmp_path / "a", seed=2)
    shutil.copy(real_data / S2_DIR / S2_ITEM, before / S2_ITEM)
    write_stac(real_data, after, "04.00", applied=None)
    summary = compare(before, after, tmp_path / "o", baseline=",02.14")
    rad = summary["radiometry"]
    assert rad["after"]["baseline"] == "02.14"
    assert rad["after"]["baseline_from"] == "--baseline"
    assert rad["after"]["offset"] == 0.0
    assert rad["before"]["baseline_from"].endswith("(s2:processing_baseline)")  # its own item
    (warning,) = summary["warnings"]
    assert "AFTER: --baseline 02.14 contradicts STAC item" in warning
    assert "(04.00); the explicit option wins" in warning
    assert expansion_fraction(summary) < 0.001


@pytest.mark.parametrize(
    "value", ["4.0", "04.0", "N0400", "a,b", "02.09,04.00,05.00", "04.00 05.00"]
)
def test_bad_baseline_option_refused(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before any file is opened (no real data needed)."""
    before, after = tmp_path / "before", tmp_path / "after"
    with pytest.raises(InputRasterError, match=r"--baseline .* not allowed"):
        compare(before, after, tmp_path / "o", baseline=value)
    code = main(["-q", "compare", str(before), str(after), "--out", str(tmp_path / "o"),
                 f"--baseline={value}"])  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert f"--baseline {value!r} not allowed" in err
    assert "NN.NN" in err or "values" in err
    assert not (tmp_path / "o").exists()


def test_bad_stac_baseline_refused_naming_file_and_field(
    real_data: Path, l2a_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    before, after = l2a_pair
    item = write_stac(real_data, after, "04.00")
    doc = json.loads(item.read_text())
    doc["properties"]["s2:processing_baseline"] = 4.0
    item.write_text(json.dumps(doc))
    with pytest.raises(
        InputRasterError, match=r"item\.json: properties\['s2:processing_baseline'\] 4\.0 is not"
    ):
        compare(before, after, tmp_path / "o")
    item.write_text("{ not json")
    with pytest.raises(InputRasterError, match=r"item\.json: not readable JSON"):
        compare(before, after, tmp_path / "o")


# --- products that do not mix ------------------------------------------------------------------


def test_folder_mixing_l1c_and_l2a_band_files_refused(
    l2a_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after = l2a_pair
    shutil.copy(after / "B12.tif", after / "B10.tif")  # an L1C cirrus band beside SCL.tif
    with pytest.raises(InputRasterError, match="mixes Level-1C and Level-2A band files") as info:
        compare(before, after, tmp_path / "o")
    assert "B10.tif (B10, cirrus, exists only in Level-1C)" in str(info.value)
    assert "SCL.tif (SCL exists only in Level-2A)" in str(info.value)
    code = main(["-q", "compare", str(before), str(after), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "mixes Level-1C and Level-2A" in " ".join(capsys.readouterr().err.split())


def test_l1c_metadata_beside_l2a_files_refused(l2a_pair: tuple[Path, Path], tmp_path: Path) -> None:
    before, after = l2a_pair
    write_mtd(after, "L1C", "04.00", -BASELINE_DN)
    with pytest.raises(InputRasterError, match=r"MTD_MSIL1C\.xml says L1C but file SCL\.tif"):
        compare(before, after, tmp_path / "o")


def test_baseline_option_for_landsat_refused(
    real_data: Path, l2a_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    before, _ = l2a_pair
    landsat = landsat_folder(real_data, tmp_path / "ls", seed=1)
    with pytest.raises(InputRasterError, match=r"--baseline 04\.00 for AFTER .* is Landsat"):
        compare(before, landsat, tmp_path / "o", baseline="02.14,04.00")


# --- Sentinel-2 L1C (OSCD) -----------------------------------------------------------------------


def oscd_copy(real_data: Path, folder: Path, date: str, add_dn: int = 0) -> Path:
    """An OSCD bordeaux date as its 13 band files, ``add_dn`` added (no offset in the source)."""
    folder.mkdir(parents=True)
    for band in OSCD_BANDS:
        with rasterio.open(real_data / "oscd-dev" / "bordeaux" / date / f"{band}.tif") as src:
            profile = src.profile
            data = src.read(1)
        with rasterio.open(folder / f"{band}.tif", "w", **profile) as dst:
            dst.write((data.astype(np.int64) + add_dn).astype(np.uint16), 1)
    return folder


def test_l1c_oscd_pair_runs_and_reports_l1c(real_data: Path, tmp_path: Path) -> None:
    city = real_data / "oscd-dev" / "bordeaux"
    summary = compare(city / "imgs_1", city / "imgs_2", tmp_path / "o")
    for key in ("before", "after"):
        rad = summary["radiometry"][key]
        assert rad["product"] == "L1C"
        assert "B10.tif" in rad["product_from"]
        assert rad["baseline"] is None  # OSCD ships no metadata (2015-2018: before 04.00)
        assert rad["scale"] == pytest.approx(1e-4)
        assert rad["offset"] == 0.0
        # the Garonne and the estuary: reflectance cannot be below zero, so no offset
        assert rad["pixel_check"].startswith("confirmed")
        assert "B12 DN < 800" in rad["pixel_check"]
        assert rad["decided_by"] == "pixels"
    assert summary["warnings"] == []
    assert summary["input_crs"] == {"before": "EPSG:4326", "after": "EPSG:4326"}
    assert summary["grid"]["crs"] == "EPSG:32630"  # areas in metres
    assert summary["grid"]["resolution_m"] == 10
    assert summary["changed_pixels"] > 0


def test_l1c_after_with_baseline_0400_radio_offset_reads_as_without(
    real_data: Path, tmp_path: Path
) -> None:
    """AFTER as a baseline-04.00 L1C product delivers it (+1000 DN, RADIO_ADD_OFFSET -1000 in
    MTD_MSIL1C.xml): compare reads the very same reflectance as from the unshifted files."""
    city = real_data / "oscd-dev" / "bordeaux"
    reference = compare(city / "imgs_1", city / "imgs_2", tmp_path / "ref")
    after = oscd_copy(real_data, tmp_path / "after", "imgs_2", add_dn=BASELINE_DN)
    write_mtd(after, "L1C", "04.00", -BASELINE_DN)
    summary = compare(city / "imgs_1", after, tmp_path / "o")
    rad = summary["radiometry"]["after"]
    assert rad["product"] == "L1C"
    assert rad["product_from"].endswith("MTD_MSIL1C.xml")
    assert rad["baseline"] == "04.00"
    assert rad["baseline_from"].endswith("MTD_MSIL1C.xml (PROCESSING_BASELINE)")
    assert rad["offset"] == pytest.approx(-0.1)
    assert "RADIO_ADD_OFFSET -1000" in rad["why"]
    assert "QUANTIFICATION_VALUE" in rad["why"]
    for key in ("changed_pixels", "expansion_pixels", "valid_pixels"):
        assert summary[key] == reference[key], key


def test_l1c_against_l2a_warns(real_data: Path, tmp_path: Path) -> None:
    city = real_data / "oscd-dev" / "bordeaux"
    after = oscd_copy(real_data, tmp_path / "after", "imgs_2")
    (after / "B10.tif").unlink()
    write_mtd(after, "L2A", "02.14", None)  # pretend: only the product level matters here
    summary = compare(city / "imgs_1", after, tmp_path / "o")
    assert summary["radiometry"]["after"]["product"] == "L2A"
    assert any("top-of-atmosphere against surface" in w for w in summary["warnings"])


# --- Landsat C2 L2 ---------------------------------------------------------------------------

OLI_TO_TM = {"SR_B2": "SR_B1", "SR_B3": "SR_B2", "SR_B4": "SR_B3", "SR_B5": "SR_B4",
             "SR_B6": "SR_B5", "SR_B7": "SR_B7"}  # fmt: skip


def landsat_folder(
    real_data: Path, folder: Path, seed: int, pid: str = LS_PID, tm: bool = False
) -> Path:
    """The real Landsat 8 scene's SR bands and MTL as USGS names them (optionally renamed to a
    TM product with TM band numbers), plus 0.004 reflectance of noise where there is data."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    src_dir = real_data / LS_DIR
    for src_band, dst_band in (OLI_TO_TM if tm else {b: b for b in OLI_TO_TM}).items():
        with rasterio.open(src_dir / f"{LS_PID}_{src_band}.TIF") as src:
            profile = src.profile
            data = src.read(1)
        dn = data + rng.normal(0, NOISE / 2.75e-5, data.shape)
        data = np.where(data == 0, 0, np.clip(np.round(dn), 1, 65535)).astype(np.uint16)
        with rasterio.open(folder / f"{pid}_{dst_band}.TIF", "w", **profile) as dst:
            dst.write(data, 1)
    mtl = json.loads((src_dir / f"{LS_PID}_MTL.json").read_text())
    (folder / f"{pid}_MTL.json").write_text(json.dumps(mtl))
    return folder


def test_landsat_folder_with_usgs_names(real_data: Path, tmp_path: Path) -> None:
    before = landsat_folder(real_data, tmp_path / "b", seed=1)
    after = landsat_folder(real_data, tmp_path / "a", seed=2)
    summary = compare(before, after, tmp_path / "o")
    for key in ("before", "after"):
        rad = summary["radiometry"][key]
        assert rad["product"] == "Landsat"
        assert rad["sensor"] == "landsat"
        assert rad["platform"] == "landsat-8"
        assert rad["scale"] == pytest.approx(2.75e-5)
        assert rad["offset"] == pytest.approx(-0.2)
        assert rad["decided_by"] == "rule"
        assert rad["metadata"][0].endswith(f"{LS_PID}_MTL.json")
    assert summary["warnings"] == []
    assert summary["radiometry"]["two_date_check"] is None  # for Sentinel-2 offsets only
    assert summary["valid_pixels"] > 90_000  # the fill (DN 0, 30 %) is no data
    assert expansion_fraction(summary) < 0.001
    assert changed_fraction(summary) < 0.01


def test_landsat_tm_band_numbers(real_data: Path, tmp_path: Path) -> None:
    """The same pixels named as a Landsat 5 TM product: blue is SR_B1 there, not SR_B2."""
    oli = landsat_folder(real_data, tmp_path / "oli", seed=1)
    pid = LS_PID.replace("LC08", "LT05")
    tm = landsat_folder(real_data, tmp_path / "tm", seed=1, pid=pid, tm=True)
    located = locate_input(tm)
    assert located.bands["blue"].path.name == f"{pid}_SR_B1.TIF"
    assert located.bands["nir"].path.name == f"{pid}_SR_B4.TIF"
    assert located.bands["swir22"].path.name == f"{pid}_SR_B7.TIF"
    assert located.product.platform == "landsat-5"
    a = compare(oli, landsat_folder(real_data, tmp_path / "oli2", seed=2), tmp_path / "o1")
    b = compare(tm, landsat_folder(real_data, tmp_path / "tm2", seed=2, pid=pid, tm=True),
                tmp_path / "o2")  # fmt: skip
    for key in ("valid_pixels", "changed_pixels", "expansion_pixels"):
        assert a[key] == b[key], key


def test_landsat_multiband_with_bands(real_data: Path, tmp_path: Path) -> None:
    folder = landsat_folder(real_data, tmp_path / "ls", seed=1)
    ids = ["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"]
    layers = []
    for band in ids:
        with rasterio.open(folder / f"{LS_PID}_{band}.TIF") as src:
            profile = src.profile
            layers.append(src.read(1))
    profile.update(count=len(ids))
    stack = tmp_path / f"{LS_PID}_SR_stack.tif"
    with rasterio.open(stack, "w", **profile) as dst:
        dst.write(np.stack(layers))
    summary = compare(stack, folder, tmp_path / "o", bands=ids)
    rad = summary["radiometry"]["before"]
    assert rad["product"] == "Landsat"
    assert rad["platform"] == "landsat-8"
    assert f"USGS product id {LS_PID} in the file name" in rad["product_from"]
    assert rad["scale"] == pytest.approx(2.75e-5)
    assert rad["offset"] == pytest.approx(-0.2)
    assert summary["changed_pixels"] == 0  # the same pixels as the folder
    # without a product id, SR band numbers cannot be placed (TM and OLI differ)
    anonymous = tmp_path / "stack.tif"
    shutil.copy(stack, anonymous)
    with pytest.raises(InputRasterError, match="nothing says which platform"):
        compare(anonymous, folder, tmp_path / "o", bands=ids)
    # canonical names: read as given (today's behaviour), and the summary says so
    canonical = ["blue", "green", "red", "nir", "swir16", "swir22"]
    summary = compare(anonymous, anonymous, tmp_path / "o", bands=canonical)
    rad = summary["radiometry"]["before"]
    assert rad["product"] == "unknown"
    assert rad["decided_by"] == "as-given"
    assert (rad["scale"], rad["offset"]) == (1.0, 0.0)
    assert "product unknown" in rad["why"]
    assert "give --scale/--offset" in rad["why"]
    assert summary["reflectance_scaled"] is False


def test_folder_mixing_sentinel2_and_landsat_refused(
    real_data: Path, l2a_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    before, after = l2a_pair
    ls = landsat_folder(real_data, tmp_path / "ls", seed=1)
    shutil.copy(ls / f"{LS_PID}_SR_B2.TIF", after / f"{LS_PID}_SR_B2.TIF")
    with pytest.raises(InputRasterError, match=r"mixes Sentinel-2 band files .* and Landsat files"):
        compare(before, after, tmp_path / "o")


def test_sentinel2_against_landsat_warns(real_data: Path, tmp_path: Path) -> None:
    """A Landsat-named copy of the OSCD AFTER date against its L1C BEFORE: the pair runs, and the
    summary says the sensors differ."""
    city = real_data / "oscd-dev" / "bordeaux"
    oscd = oscd_copy(real_data, tmp_path / "oscd", "imgs_2")
    ls = tmp_path / "ls"
    ls.mkdir()
    for s2_band, sr_band in zip(S2_FILES, OLI_TO_TM, strict=True):
        shutil.copy(oscd / f"{s2_band}.tif", ls / f"{LS_PID}_{sr_band}.TIF")
    summary = compare(city / "imgs_1", ls, tmp_path / "o")
    assert summary["radiometry"]["after"]["product"] == "Landsat"
    assert any("no cross-sensor adjustment" in w for w in summary["warnings"])
