"""Tests for pipeline.sources.catalog: searching a static STAC catalog on disk."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pystac
import pytest
from shapely.geometry import Polygon, box, mapping

from pipeline.errors import SourceError
from pipeline.sites import Site
from pipeline.sources import catalog as catalog_module
from pipeline.sources.catalog import StaticCatalogSource

SITE = Site("a", "A", "other", box(125.0, 39.0, 125.1, 39.1), "test")
FAR_SITE = Site("b", "B", "other", box(11.5, 51.5, 11.6, 51.6), "test")


def _item(item_id: str, when: str, geom: Polygon, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "geometry": mapping(geom),
        "bbox": list(geom.bounds),
        "properties": {"datetime": when, "s2:processing_baseline": "04.00"},
        "links": [],
        "assets": {
            "red": {"href": "./red.tif", "roles": ["data"]},
            "scl": {"href": "/abs/path/scl.tif"},
            "nir": {"href": "https://example.org/nir.tif"},
            "thumbnail": {"href": "./thumb.png", "roles": ["thumbnail"]},
        },
    }
    doc.update(extra)
    return doc


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")


@pytest.fixture
def handmade(tmp_path: Path) -> Path:
    """catalog -> sub-catalog -> collection -> items (relative links), plus a direct item."""
    over = box(125.05, 39.05, 125.2, 39.2)
    _write(
        tmp_path / "catalog.json",
        {
            "type": "Catalog",
            "id": "root",
            "description": "d",
            "stac_version": "1.1.0",
            "links": [
                {"rel": "self", "href": "https://example.org/catalog.json"},
                {"rel": "child", "href": "./sub/catalog.json"},
                {"rel": "item", "href": "./loose/loose.json"},
            ],
        },
    )
    _write(
        tmp_path / "sub" / "catalog.json",
        {
            "type": "Catalog",
            "id": "sub",
            "description": "d",
            "stac_version": "1.1.0",
            "links": [{"rel": "child", "href": "./col/collection.json"}],
        },
    )
    _write(
        tmp_path / "sub" / "col" / "collection.json",
        {
            "type": "Collection",
            "id": "sentinel-2-l2a",
            "description": "d",
            "stac_version": "1.1.0",
            "license": "other",
            "extent": {},
            "links": [
                {"rel": "item", "href": f"./{i}/{i}.json"} for i in ("i1", "i2", "i3", "i4", "i5")
            ],
        },
    )
    col = tmp_path / "sub" / "col"
    _write(col / "i1" / "i1.json", _item("i1", "2021-09-01T02:20:00Z", over))
    _write(col / "i2" / "i2.json", _item("i2", "2021-11-15T23:59:59Z", over))
    _write(col / "i3" / "i3.json", _item("i3", "2021-11-16T00:00:00Z", over))
    _write(col / "i4" / "i4.json", _item("i4", "2021-10-01T02:20:00Z", box(11, 51, 12, 52)))
    _write(col / "i5" / "i5.json", {**_item("i5", "2021-10-01T02:20:00Z", over), "geometry": None})
    loose = _item("a-loose", "2021-09-01T02:20:00Z", over, collection="other-collection")
    _write(tmp_path / "loose" / "loose.json", loose)
    return tmp_path / "catalog.json"


def test_search_filters_by_inclusive_dates_and_geometry(handmade: Path) -> None:
    source = StaticCatalogSource(handmade)
    assert len(source) == 5  # the item without geometry is skipped
    found = source.search(SITE, date(2021, 9, 1), date(2021, 11, 15))
    # Both ends inclusive; i3 is a day late, i4 elsewhere; ties on datetime are broken by id.
    assert [s.id for s in found] == ["a-loose", "i1", "i2"]
    assert [s.id for s in source.search(FAR_SITE, date(2021, 1, 1), date(2021, 12, 31))] == ["i4"]
    assert source.search(SITE, date(2022, 1, 1), date(2022, 12, 31)) == []
    assert source.search(SITE, date(2021, 11, 16), date(2021, 11, 1)) == []


def test_scenes_carry_absolute_hrefs_collection_and_properties(handmade: Path) -> None:
    scene = StaticCatalogSource(handmade).search(SITE, date(2021, 9, 1), date(2021, 9, 1))[1]
    assert scene.id == "i1"
    assert scene.collection == "sentinel-2-l2a"  # from the parent collection
    assert scene.datetime == datetime(2021, 9, 1, 2, 20, tzinfo=UTC)
    assert scene.assets["red"].href == str((handmade.parent / "sub/col/i1/red.tif").resolve())
    assert scene.assets["scl"].href == "/abs/path/scl.tif"
    assert scene.assets["nir"].href == "/vsicurl/https://example.org/nir.tif"
    assert "thumbnail" not in scene.assets
    assert scene.properties["s2:processing_baseline"] == "04.00"
    loose = StaticCatalogSource(handmade).search(SITE, date(2021, 9, 1), date(2021, 9, 1))[0]
    assert loose.collection == "other-collection"


def test_catalog_is_read_once_not_per_search(
    handmade: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = StaticCatalogSource(handmade)
    calls: list[Path] = []
    real = catalog_module._read_json

    def counting(path: Path, what: str) -> dict[str, Any]:
        calls.append(path)
        return real(path, what)

    monkeypatch.setattr(catalog_module, "_read_json", counting)
    for _ in range(30):
        source.search(SITE, date(2021, 1, 1), date(2021, 12, 31))
    assert calls == []


def test_naive_datetimes_are_utc(tmp_path: Path) -> None:
    cat = {
        "type": "Catalog", "id": "c", "description": "d", "stac_version": "1.1.0",
        "links": [{"rel": "item", "href": "./x.json"}],
    }  # fmt: skip
    _write(tmp_path / "catalog.json", cat)
    _write(tmp_path / "x.json", _item("x", "2021-09-01T02:20:00", box(125, 39, 125.1, 39.1)))
    (scene,) = StaticCatalogSource(tmp_path / "catalog.json").search(
        SITE, date(2021, 9, 1), date(2021, 9, 1)
    )
    assert scene.datetime.tzinfo is not None


def test_missing_catalog_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "catalog.json"
    with pytest.raises(SourceError, match=r"nowhere/catalog\.json: STAC catalog file not found"):
        StaticCatalogSource(path)


def test_unreadable_catalog_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(SourceError, match=r"catalog\.json: STAC catalog not readable as JSON"):
        StaticCatalogSource(path)
    path.write_text(json.dumps({"type": "Feature", "id": "x"}), encoding="utf-8")
    with pytest.raises(SourceError, match="not a STAC catalog or collection"):
        StaticCatalogSource(path)


def test_broken_item_link_names_the_item_file(handmade: Path) -> None:
    (handmade.parent / "sub" / "col" / "i2" / "i2.json").unlink()
    with pytest.raises(SourceError, match=r"i2/i2\.json: STAC item file not found"):
        StaticCatalogSource(handmade)


def test_bad_item_datetime_and_remote_links_are_refused(tmp_path: Path) -> None:
    cat = {
        "type": "Catalog", "id": "c", "description": "d", "stac_version": "1.1.0",
        "links": [{"rel": "item", "href": "./x.json"}],
    }  # fmt: skip
    _write(tmp_path / "catalog.json", cat)
    _write(tmp_path / "x.json", _item("x", "yesterday", box(125, 39, 125.1, 39.1)))
    with pytest.raises(SourceError, match=r"x\.json: item datetime 'yesterday' is not ISO 8601"):
        StaticCatalogSource(tmp_path / "catalog.json")
    cat["links"] = [{"rel": "child", "href": "https://example.org/c.json"}]
    _write(tmp_path / "catalog.json", cat)
    with pytest.raises(SourceError, match="is remote; a static catalog source reads local"):
        StaticCatalogSource(tmp_path / "catalog.json")


def test_reads_a_pystac_self_contained_catalog(tmp_path: Path) -> None:
    catalog = pystac.Catalog(id="c", description="d")
    extent = pystac.Extent(
        pystac.SpatialExtent([[125.0, 39.0, 125.2, 39.2]]),
        pystac.TemporalExtent([[datetime(2021, 1, 1, tzinfo=UTC), None]]),
    )
    collection = pystac.Collection(id="sentinel-2-l2a", description="d", extent=extent)
    catalog.add_child(collection)
    for i, day in enumerate((3, 1)):
        item = pystac.Item(
            id=f"it{i}",
            geometry=mapping(box(125.0, 39.0, 125.2, 39.2)),
            bbox=[125.0, 39.0, 125.2, 39.2],
            datetime=datetime(2021, 10, day, 2, 20, tzinfo=UTC),
            properties={},
        )
        item.add_asset("blue", pystac.Asset(href="./blue.tif"))
        collection.add_item(item)
    catalog.normalize_hrefs(str(tmp_path / "cat"))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    scenes = StaticCatalogSource(tmp_path / "cat" / "catalog.json").search(
        SITE, date(2021, 10, 1), date(2021, 10, 31)
    )
    assert [s.id for s in scenes] == ["it1", "it0"]  # sorted by datetime
    assert Path(scenes[0].assets["blue"].href) == tmp_path / "cat/sentinel-2-l2a/it1/blue.tif"
    assert all(s.collection == "sentinel-2-l2a" for s in scenes)
