from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config import (
    RunConfig,
    config_from_mapping,
    config_reference,
    config_to_yaml,
    load_config,
)
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {"name": "t", "sites": "sites.geojson", "years": {"start": 2020, "end": 2021}}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_minimal_config_takes_documented_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.season.window(2021) == (
        __import__("datetime").date(2021, 9, 1),
        __import__("datetime").date(2021, 11, 15),
    )
    assert cfg.masking.scl_masked == (0, 1, 8, 9, 10, 11)
    assert cfg.classify.coal.min_frequency == 0.5
    assert cfg.sites == (tmp_path / "sites.geojson").resolve()  # relative to the config file


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, {**MINIMAL, "grid": {"resolutoin_m": 10}})
    with pytest.raises(ConfigError, match=r"(?s)run\.yaml.*grid\.resolutoin_m: unknown key") as err:
        load_config(path)
    assert "allowed here: resolution_m, buffer_m" in str(err.value)
    deep = write(tmp_path, {**MINIMAL, "source": {"kind": "synthetic", "scenario": {"sed": 1}}})
    with pytest.raises(
        ConfigError, match=r"source\.synthetic\.scenario\.sed: unknown key; allowed here: seed"
    ):
        load_config(deep)


def test_wrong_type_and_impossible_value_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, {**MINIMAL, "grid": {"resolution_m": -5}, "workers": "many"})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "grid.resolution_m" in text
    assert "-5" in text
    assert "greater than 0" in text
    assert "workers" in text
    assert "'many'" in text


def test_supervised_mode_needs_training_polygons_resolved_against_the_file(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, {**MINIMAL, "classify": {"mode": "supervised"}})
    with pytest.raises(ConfigError, match=r"classify: .*mode supervised needs training"):
        load_config(path)
    (tmp_path / "polygons.gpkg").write_bytes(b"")
    given = write(
        tmp_path, {**MINIMAL, "classify": {"mode": "supervised", "training": "polygons.gpkg"}}
    )
    assert load_config(given).classify.training == (tmp_path / "polygons.gpkg").resolve()


def test_years_and_season_order_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="start 2022 is after end 2020"):
        load_config(write(tmp_path, {**MINIMAL, "years": {"start": 2022, "end": 2020}}))
    with pytest.raises(ConfigError, match="not a month-day"):
        load_config(write(tmp_path, {**MINIMAL, "season": {"start": "02-30"}}))


def test_bad_scl_class_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SCL classes \[12\] do not exist"):
        load_config(write(tmp_path, {**MINIMAL, "masking": {"scl_masked": [0, 12]}}))


def test_unknown_source_kind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source"):
        load_config(write(tmp_path, {**MINIMAL, "source": {"kind": "ftp"}}))


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(bad)


def test_config_hash_stable_and_sensitive() -> None:
    a = config_from_mapping(MINIMAL)
    b = config_from_mapping(MINIMAL)
    c = config_from_mapping({**MINIMAL, "classify": {"coal": {"min_frequency": 0.6}}})
    assert a.hash() == b.hash() != c.hash()


def test_show_round_trips(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    again = RunConfig.model_validate(yaml.safe_load(config_to_yaml(cfg)))
    assert again == cfg


def test_demo_yaml_is_the_builtin_demo(tmp_path: Path) -> None:
    from pipeline.demo import demo_config

    shipped = load_config(ROOT / "configs" / "demo.yaml")
    builtin = demo_config(tmp_path / "demo")
    ignore = {"sites", "output_dir", "cache_dir"}
    assert shipped.model_dump(exclude=ignore) == builtin.model_dump(exclude=ignore)
    assert shipped.sites.read_text() == builtin.sites.read_text()


def test_every_key_documented_and_reference_current() -> None:
    ref = config_reference()
    for line in ref.splitlines():
        if line.startswith("| `"):
            assert not line.rstrip().endswith("|  |"), f"undocumented key: {line}"
    assert (ROOT / "docs" / "config.md").read_text() == ref, (
        "docs/config.md is stale: regenerate with `sitewatch config reference > docs/config.md`"
    )


def test_config_hash_ignores_where_but_not_what(tmp_path: Path) -> None:
    sites = tmp_path / "a.geojson"
    sites.write_text('{"type": "FeatureCollection", "features": []}')
    base = {**MINIMAL, "sites": str(sites)}
    h = config_from_mapping(base).hash()
    moved = config_from_mapping(
        {**base, "output_dir": "/elsewhere", "cache_dir": "/c", "workers": 4}
    )
    assert moved.hash() == h
    copy = tmp_path / "b.geojson"
    copy.write_text(sites.read_text())
    assert config_from_mapping({**base, "sites": str(copy)}).hash() == h  # by content
    copy.write_text('{"type": "FeatureCollection", "features": [null]}')
    assert config_from_mapping({**base, "sites": str(copy)}).hash() != h
