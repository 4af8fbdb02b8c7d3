"""The real test servers in tests/support: the counting range server (byte ranges, counts,
seeded faults, a GDAL /vsicurl/ read through it) and the pgstac STAC API (query, CQL2 filter,
bbox, datetime, sorting and paging through pystac-client)."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pystac_client
import pytest
import rasterio
from affine import Affine
from pystac_client.conformance import ConformanceClasses
from rasterio.windows import Window
from support.pgstac import PgstacServer, sample_records
from support.rangeserver import RangeServer, parse_range

StartRange = Callable[[Path], RangeServer]
SIZE = 10_000
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def served(tmp_path: Path, range_server: StartRange) -> tuple[RangeServer, bytes]:
    data = np.random.default_rng(0).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    (tmp_path / "blob.bin").write_bytes(data)
    (tmp_path / "other.bin").write_bytes(data[:1000])
    (tmp_path / "empty.bin").write_bytes(b"")
    return range_server(tmp_path), data


def get(url: str, range_: str | None = None, method: str = "GET") -> tuple[int, Any, bytes]:
    req = urllib.request.Request(url, method=method)
    if range_ is not None:
        req.add_header("Range", range_)
    try:
        with _NO_PROXY.open(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


# ---- range server ----------------------------------------------------------------------------


def test_full_get_and_head(served: tuple[RangeServer, bytes]) -> None:
    srv, data = served
    status, headers, body = get(srv.url + "/blob.bin")
    assert status == 200
    assert body == data
    assert headers["Content-Length"] == str(SIZE)
    assert headers["Accept-Ranges"] == "bytes"
    status, headers, body = get(srv.url + "/blob.bin", method="HEAD")
    assert (status, headers["Content-Length"], body) == (200, str(SIZE), b"")
    reqs = srv.stats()["requests"]
    assert [(r["method"], r["status"], r["bytes"]) for r in reqs] == [
        ("GET", 200, SIZE),
        ("HEAD", 200, 0),
    ]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-99", 10, 99),
        ("bytes=9990-20000", 9990, SIZE - 1),  # past the end: clamped
        ("bytes=4321-", 4321, SIZE - 1),
        ("bytes=-10", SIZE - 10, SIZE - 1),  # suffix
        ("bytes=-20000", 0, SIZE - 1),  # suffix longer than the file: all of it
    ],
)
def test_ranges_are_byte_exact(
    served: tuple[RangeServer, bytes], header: str, first: int, last: int
) -> None:
    srv, data = served
    status, headers, body = get(srv.url + "/blob.bin", header)
    assert status == 206
    assert body == data[first : last + 1]
    assert headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert headers["Content-Length"] == str(last - first + 1)
    assert srv.stats()["requests"][0]["range"] == header


@pytest.mark.parametrize(
    ("path", "header"),
    [
        ("/blob.bin", f"bytes={SIZE}-"),
        ("/blob.bin", f"bytes={SIZE + 5}-{SIZE + 10}"),
        ("/blob.bin", "bytes=50-10"),
        ("/blob.bin", "bytes=-0"),
        ("/empty.bin", "bytes=-5"),
        ("/empty.bin", "bytes=0-"),
    ],
)
def test_unsatisfiable_range_is_416(
    served: tuple[RangeServer, bytes], path: str, header: str
) -> None:
    srv, _ = served
    status, headers, _ = get(srv.url + path, header)
    size = 0 if path == "/empty.bin" else SIZE
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{size}"


def test_parse_range_ignores_what_it_cannot_read() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("items=0-5", 10) is None
    assert parse_range("bytes=0-1,5-6", 10) is None  # multi-range: answered 200, whole file
    assert parse_range("bytes=-", 10) is None
    assert parse_range("bytes=2-4", 10) == (2, 4)


def test_missing_file_and_escape_are_404(served: tuple[RangeServer, bytes], tmp_path: Path) -> None:
    srv, _ = served
    (tmp_path.parent / "outside.bin").write_bytes(b"secret")
    assert get(srv.url + "/nope.tif")[0] == 404
    assert get(srv.url + "/")[0] == 404  # a directory is not a file
    conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=10)
    conn.request("GET", "/../outside.bin")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (404, b"not found")
    conn.close()


def test_keep_alive_serves_many_requests_on_one_connection(
    served: tuple[RangeServer, bytes],
) -> None:
    srv, data = served
    conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=10)
    conn.request("GET", "/blob.bin", headers={"Range": "bytes=0-9"})
    resp = conn.getresponse()
    assert resp.read() == data[:10]
    sock = conn.sock
    assert sock is not None
    for k in range(5):
        conn.request("GET", "/blob.bin", headers={"Range": f"bytes={k * 100}-{k * 100 + 99}"})
        resp = conn.getresponse()
        assert resp.status == 206
        assert resp.read() == data[k * 100 : k * 100 + 100]
        assert conn.sock is sock  # not reconnected: the server kept the connection open
    conn.close()


def test_counts_bytes_per_path_and_reset(served: tuple[RangeServer, bytes]) -> None:
    srv, _ = served
    get(srv.url + "/blob.bin", "bytes=0-99")
    get(srv.url + "/blob.bin", "bytes=-50")
    get(srv.url + "/other.bin")
    get(srv.url + "/missing.bin")
    srv.stats()  # control requests are not counted
    stats = srv.stats()
    assert stats["per_path"]["/blob.bin"] == {"requests": 2, "bytes": 150}
    assert stats["per_path"]["/other.bin"] == {"requests": 1, "bytes": 1000}
    assert stats["per_path"]["/missing.bin"]["requests"] == 1
    assert [r["status"] for r in stats["requests"]] == [206, 206, 200, 404]
    assert stats["total_bytes"] == sum(p["bytes"] for p in stats["per_path"].values())
    assert not any(r["path"].startswith("/__") for r in stats["requests"])
    srv.reset()
    assert srv.stats() == {"requests": [], "total_bytes": 0, "per_path": {}}


def _statuses(srv: RangeServer, n: int, path: str = "/other.bin") -> list[int]:
    conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=10)
    out = []
    for _ in range(n):
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        out.append(resp.status)
    conn.close()
    return out


def test_error_faults_are_seeded_and_deterministic(served: tuple[RangeServer, bytes]) -> None:
    srv, _ = served
    srv.set_faults(seed=42, error_rate=0.3)
    first = _statuses(srv, 200)
    assert set(first) == {200, 503}
    assert 0.2 < first.count(503) / len(first) < 0.4
    srv.set_faults(seed=42, error_rate=0.3)  # same seed, counter restarted: same answers
    assert _statuses(srv, 200) == first
    srv.set_faults(seed=43, error_rate=0.3)
    assert _statuses(srv, 200) != first
    srv.clear_faults()
    assert set(_statuses(srv, 20)) == {200}
    errors = [r for r in srv.stats()["requests"] if r["status"] == 503]
    assert errors
    assert all(r["fault"] == "error" for r in errors)


def test_fail_paths_and_match_limit_faults(served: tuple[RangeServer, bytes]) -> None:
    srv, _ = served
    srv.set_faults(fail_paths=r"^/other\.bin$")
    assert set(_statuses(srv, 10, "/other.bin")) == {503}
    assert set(_statuses(srv, 10, "/blob.bin")) == {200}
    srv.set_faults(seed=1, error_rate=1.0, match=r"blob")
    assert set(_statuses(srv, 5, "/other.bin")) == {200}
    assert set(_statuses(srv, 5, "/blob.bin")) == {503}


def test_truncated_body_is_detected_by_the_client(served: tuple[RangeServer, bytes]) -> None:
    srv, data = served
    srv.set_faults(seed=3, truncate_rate=1.0)
    with pytest.raises(http.client.IncompleteRead) as info:
        get(srv.url + "/blob.bin", "bytes=0-999")
    assert len(info.value.partial) == 500
    assert info.value.partial == data[:500]
    [req] = srv.stats()["requests"]
    assert (req["status"], req["bytes"], req["fault"]) == (206, 500, "truncate")
    srv.clear_faults()
    assert get(srv.url + "/blob.bin", "bytes=0-999")[2] == data[:1000]


def test_stall_delays_the_answer(served: tuple[RangeServer, bytes]) -> None:
    srv, data = served
    srv.set_faults(seed=0, stall_rate=1.0, stall_seconds=0.4)
    t = time.monotonic()
    status, _, body = get(srv.url + "/other.bin")
    assert time.monotonic() - t >= 0.4
    assert (status, body) == (200, data[:1000])


def test_bad_fault_settings_are_refused(served: tuple[RangeServer, bytes]) -> None:
    srv, _ = served
    with pytest.raises(ValueError, match="error_rate"):
        srv.set_faults(error_rate=1.5)
    with pytest.raises(ValueError, match="400"):
        srv._call("POST", "/__faults", {"bogus": 1})


def test_stop_ends_the_process(tmp_path: Path) -> None:
    srv = RangeServer(tmp_path).start()
    proc = srv.proc
    assert proc is not None
    url = srv.url
    srv.stop()
    assert proc.poll() is not None
    with pytest.raises(OSError, match=r"refused|Connection"):
        _NO_PROXY.open(url + "/__stats", timeout=2)


def test_gdal_window_read_through_vsicurl(tmp_path: Path, range_server: StartRange) -> None:
    arr = np.random.default_rng(1).integers(0, 10_000, (2, 1024, 1024), dtype=np.uint16)
    path = tmp_path / "x.tif"
    profile = {
        "driver": "COG",
        "width": 1024,
        "height": 1024,
        "count": 2,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_000_000.0),
        "blocksize": 256,
        "compress": "deflate",
        "overviews": "none",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    srv = range_server(tmp_path)
    window = Window(300, 500, 200, 100)
    with rasterio.open(path) as src:
        local = src.read(window=window)
    env = {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
        "GDAL_HTTP_MAX_RETRY": "0",
    }
    with rasterio.Env(**env), rasterio.open(f"/vsicurl/{srv.url}/x.tif") as src:
        assert src.shape == (1024, 1024)
        remote = src.read(window=window)
    np.testing.assert_array_equal(remote, local)
    stats = srv.stats()
    gets = [r for r in stats["requests"] if r["method"] == "GET"]
    assert gets
    assert all(r["status"] == 206 and r["range"] for r in gets)  # only ranges, never the whole
    size = path.stat().st_size
    assert stats["per_path"]["/x.tif"]["bytes"] < size / 2  # 2 of 16 tiles per band + header
    assert set(stats["per_path"]) == {"/x.tif"}  # no sidecar probing


def test_gdal_sees_server_errors(tmp_path: Path, range_server: StartRange) -> None:
    with rasterio.open(
        tmp_path / "y.tif", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8"
    ) as dst:
        dst.write(np.zeros((1, 8, 8), np.uint8))
    srv = range_server(tmp_path)
    srv.set_faults(fail_paths=r"/y\.tif$")
    env = {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
        "GDAL_HTTP_MAX_RETRY": "0",
    }
    with rasterio.Env(**env), pytest.raises(rasterio.errors.RasterioIOError):
        rasterio.open(f"/vsicurl/{srv.url}/y.tif")
    assert {r["status"] for r in srv.stats()["requests"]} == {503}


# ---- pgstac STAC API ---------------------------------------------------------------------------

ITEMS = [  # id, eo:cloud_cover, datetime, bbox
    ("clear", 5, "2023-06-01T10:00:00Z", [10.0, 10.0, 11.0, 11.0]),
    ("partly", 40, "2023-07-15T10:00:00Z", [20.0, 20.0, 21.0, 21.0]),
    ("overcast", 100, "2023-08-20T10:00:00Z", [10.5, 10.5, 11.5, 11.5]),
]


@pytest.fixture(scope="module")
def stac(pgstac_api: PgstacServer) -> tuple[pystac_client.Client, str]:
    """The shared API with this module's own collection (a unique id: other modules load
    theirs into the same server)."""
    cid = f"servers-{uuid.uuid4().hex[:8]}"
    collections, items = sample_records(cid, ITEMS)
    pgstac_api.load(collections, items)
    return pystac_client.Client.open(pgstac_api.url), cid


def ids(search: Any) -> list[str]:
    return [item.id for item in search.items()]


def test_api_conformance(stac: tuple[pystac_client.Client, str], pgstac_api: PgstacServer) -> None:
    client, _ = stac
    assert client.conforms_to(ConformanceClasses.ITEM_SEARCH)
    assert client.conforms_to(ConformanceClasses.QUERY)
    assert client.conforms_to(ConformanceClasses.FILTER)
    with _NO_PROXY.open(pgstac_api.url + "/conformance", timeout=10) as resp:
        uris = json.load(resp)["conformsTo"]
    # sorting is declared as v1.1.0, a version pystac-client 0.9's SORT pattern (v1.0.*) misses
    assert any(u.endswith("/item-search#sort") for u in uris)
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in uris


def test_query_compares_cloud_cover_as_a_number(stac: tuple[pystac_client.Client, str]) -> None:
    client, cid = stac
    search = client.search(collections=[cid], query={"eo:cloud_cover": {"lt": 50}})
    assert sorted(ids(search)) == ["clear", "partly"]  # as text, "100" < "50" would match too
    search = client.search(collections=[cid], query={"eo:cloud_cover": {"gte": 40}})
    assert sorted(ids(search)) == ["overcast", "partly"]  # as text, "5" >= "40" would match


def test_cql2_json_filter(stac: tuple[pystac_client.Client, str]) -> None:
    client, cid = stac
    search = client.search(
        collections=[cid],
        filter={"op": "<", "args": [{"property": "eo:cloud_cover"}, 50]},
        filter_lang="cql2-json",
    )
    assert sorted(ids(search)) == ["clear", "partly"]
    search = client.search(
        collections=[cid],
        filter={
            "op": "and",
            "args": [
                {"op": ">", "args": [{"property": "eo:cloud_cover"}, 10]},
                {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 100]},
            ],
        },
        filter_lang="cql2-json",
    )
    assert sorted(ids(search)) == ["overcast", "partly"]


def test_cql2_text_filter(stac: tuple[pystac_client.Client, str]) -> None:
    client, cid = stac
    search = client.search(collections=[cid], filter="eo:cloud_cover < 50", method="GET")
    assert sorted(ids(search)) == ["clear", "partly"]


def test_bbox_and_datetime(stac: tuple[pystac_client.Client, str]) -> None:
    client, cid = stac
    assert sorted(ids(client.search(collections=[cid], bbox=[9.5, 9.5, 10.8, 10.8]))) == [
        "clear",
        "overcast",
    ]
    assert ids(client.search(collections=[cid], bbox=[19, 19, 22, 22])) == ["partly"]
    assert ids(client.search(collections=[cid], bbox=[30, 30, 31, 31])) == []
    assert sorted(ids(client.search(collections=[cid], datetime="2023-07-01/2023-12-31"))) == [
        "overcast",
        "partly",
    ]
    assert ids(client.search(collections=[cid], datetime="2023-06-01")) == ["clear"]
    both = client.search(collections=[cid], bbox=[9.5, 9.5, 12, 12], datetime="2023-08/2023-09")
    assert ids(both) == ["overcast"]


def test_sortby_and_paging(
    stac: tuple[pystac_client.Client, str], pgstac_api: PgstacServer
) -> None:
    client = pystac_client.Client.open(pgstac_api.url)
    client.add_conforms_to("SORT")  # see test_api_conformance
    _, cid = stac
    asc = client.search(collections=[cid], sortby="properties.eo:cloud_cover")
    assert ids(asc) == ["clear", "partly", "overcast"]  # as text: 100, 40, 5
    desc = client.search(collections=[cid], sortby="-properties.eo:cloud_cover")
    assert ids(desc) == ["overcast", "partly", "clear"]
    by_date = client.search(collections=[cid], sortby="-properties.datetime")
    assert ids(by_date) == ["overcast", "partly", "clear"]
    paged = client.search(collections=[cid], limit=1, sortby="properties.eo:cloud_cover")
    pages = [[item.id for item in page] for page in paged.pages()]
    assert pages == [["clear"], ["partly"], ["overcast"]]
    assert paged.matched() == 3


def test_load_upserts(pgstac_api: PgstacServer) -> None:
    client = pystac_client.Client.open(pgstac_api.url)
    cid = f"upsert-{uuid.uuid4().hex[:8]}"
    collections, items = sample_records(cid, ITEMS)
    pgstac_api.load(collections, items)
    assert sorted(ids(client.search(collections=[cid], query={"eo:cloud_cover": {"lt": 50}}))) == [
        "clear",
        "partly",
    ]
    changed = [(i, 60 if i == "partly" else c, d, b) for i, c, d, b in ITEMS]
    collections, items = sample_records(cid, changed)
    pgstac_api.load(collections, items)  # same ids again: updated, not duplicated
    assert ids(client.search(collections=[cid], query={"eo:cloud_cover": {"lt": 50}})) == ["clear"]
    assert client.search(collections=[cid]).matched() == 3
    assert client.get_collection(cid).id == cid
