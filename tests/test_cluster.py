"""Runs on a real dask.distributed cluster (``distributed.LocalCluster(processes=True)`` on
loopback, started and closed by the fixture): the same outputs, byte for byte, as a local run,
also with the sites read by chunks as tasks of their own; a run stopped after its site-years,
or in the middle of a chunked site-year's steps, resumes on the cluster and recomputes only
what is missing; a scheduler that cannot be reached is refused with what to do."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_run import interrupted_run, small_config

from pipeline import executors
from pipeline import run as run_module
from pipeline import tasks as tasks_module
from pipeline.config import RunConfig, load_config
from pipeline.errors import SchedulerError
from pipeline.export.transaction import LOG_NAME
from pipeline.sources.synthetic import DEMO_SITES_GEOJSON

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two single-threaded worker processes on 127.0.0.1; the scheduler's address."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    ) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> RunConfig:
    tmp = tmp_path_factory.mktemp("cluster")
    loaded = load_config(small_config(tmp, tmp / "cache"))
    # Both demo sites with rasters, so every kind of output is compared.
    ids = [f["properties"]["id"] for f in DEMO_SITES_GEOJSON["features"]]
    scenario = {**loaded.source.model_dump()["scenario"], "sites": ids}
    source = {**loaded.source.model_dump(), "scenario": scenario}
    return loaded.updated(site_ids=ids, source=source, write_rasters=True)


@pytest.fixture(scope="module")
def local_out(config: RunConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    run_module.run(config, out)
    return out


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder but its log (which holds times)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOG_NAME
    }


def site_year_tasks_run(address: str, prefix: str = "run_step") -> int:
    """How many tasks of function ``prefix`` the cluster's scheduler has seen finish (its
    per-prefix counts of transitions into each state are cumulative)."""
    with distributed.Client(address, set_as_default=False) as client:
        return int(
            client.run_on_scheduler(
                lambda dask_scheduler: (
                    dask_scheduler.task_prefixes[prefix].state_counts["memory"]
                    if prefix in dask_scheduler.task_prefixes
                    else 0
                )
            )
        )


CHUNK_PX = 64


def chunked(config: RunConfig) -> RunConfig:
    return config.updated(grid={**config.grid.model_dump(), "chunk_px": CHUNK_PX})


def planned(config: RunConfig) -> list[tasks_module.SiteYearTask]:
    """The first pass's site-year tasks of a run of ``config``."""
    source, _ = run_module.make_source(config)
    return run_module.plan(config, run_module.resolve_sites(config), config.years.all(), source)


def remade(out: Path) -> set[tuple[str, int]]:
    """The site-years a finished run in ``out`` made again in its second pass, resampled onto
    their site's other years (``registration.resampled_px`` in its manifest)."""
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        (site["id"], year["year"])
        for site in manifest["sites"]
        for year in site["years"]
        if year["registration"] and year["registration"]["resampled_px"] != [0.0, 0.0]
    }


def step_counts(config: RunConfig, again: set[tuple[str, int]]) -> tuple[int, int]:
    """(whole site-years, steps of the chunked ones) that a run of ``config`` submits, with
    the site-years ``again`` made a second time."""
    first = planned(config)
    tasks = first + [t for t in first if (t.site.id, t.year) in again]
    by_chunks = [t for t in tasks if tasks_module.by_chunks(t)]
    steps = sum(2 * tasks_module.chunk_count(t) + 2 for t in by_chunks)
    return len(tasks) - len(by_chunks), steps


def test_cluster_run_writes_the_same_bytes_as_a_local_run(
    cluster: str, config: RunConfig, local_out: Path, tmp_path: Path
) -> None:
    before = site_year_tasks_run(cluster)
    out = tmp_path / "out"
    run_module.run(config.updated(scheduler=cluster), out)
    n_tasks = len(config.site_ids or []) * len(config.years.all()) + len(remade(local_out))
    assert site_year_tasks_run(cluster) - before == n_tasks  # ran there, not here
    local, remote = files_of(local_out), files_of(out)
    assert sorted(remote) == sorted(local)
    assert len(local) > 20
    different = [name for name in local if local[name] != remote[name]]
    assert different == []
    assert not run_module.work_dir(out).exists()


def test_stopped_cluster_run_recomputes_only_what_is_missing(
    cluster: str,
    config: RunConfig,
    local_out: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    on_cluster = config.updated(scheduler=cluster)
    out = tmp_path / "out"
    interrupted_run(on_cluster, out)
    stored = sorted(run_module.work_dir(out).glob("*.json"))
    n_tasks = len(config.site_ids or []) * len(config.years.all())
    again = len(remade(local_out))
    assert len(stored) == n_tasks + again  # both passes' site-years
    # One site-year lost (as if the run was killed before it finished): only it is recomputed.
    first = {t.key() for t in planned(config)}
    next(p for p in stored if p.stem.rsplit("-", 1)[1] in first).unlink()
    before = site_year_tasks_run(cluster)
    with caplog.at_level(logging.INFO, logger="pipeline.run"):
        run_module.run(on_cluster, out)
    assert f"reused {n_tasks - 1} of {n_tasks} site-years" in caplog.text
    log = (out / LOG_NAME).read_text()
    # The stopped attempt and the resumed one, in one log; the workers' records forwarded.
    assert log.count("sitewatch ") >= 2
    assert "run stopped: Killed" in log
    assert "reused" in log
    # Each task of both passes checks its store there.
    assert site_year_tasks_run(cluster) - before == n_tasks + again
    local, resumed = files_of(local_out), files_of(out)
    assert [name for name in local if local[name] != resumed.get(name)] == []


def test_unreachable_scheduler_is_refused_with_what_to_do(
    config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(SchedulerError) as err:
        run_module.run(config.updated(scheduler="tcp://127.0.0.1:9"), tmp_path / "out")
    message = str(err.value)
    assert "tcp://127.0.0.1:9" in message
    assert "dask scheduler" in message
    assert not (tmp_path / "out").exists()


def test_chunked_sites_spread_over_the_cluster_with_the_same_bytes(
    cluster: str, config: RunConfig, local_out: Path, tmp_path: Path
) -> None:
    """Sites read by chunks of 64 px run as steps (each chunk's survey and part, the decisions,
    the finish), each a task on the cluster: every output equals the local whole-grid run's."""
    on_cluster = chunked(config).updated(scheduler=cluster)
    whole, steps = step_counts(on_cluster, remade(local_out))
    assert steps > 0  # the scenario's sites are larger than a chunk
    before = site_year_tasks_run(cluster)
    run_module.run(on_cluster, tmp_path / "out")
    assert site_year_tasks_run(cluster) - before == whole + steps
    assert_same_outputs(local_out, tmp_path / "out")


def assert_same_outputs(reference: Path, out: Path) -> None:
    """Every file of ``out`` equals ``reference``'s, but the manifest, which quotes the config
    (``grid.chunk_px``): its config hash and its list of outputs with their checksums equal."""
    local, remote = files_of(reference), files_of(out)
    assert sorted(remote) == sorted(local)
    assert [name for name in local if local[name] != remote[name]] == ["manifest.json"]
    manifests = [json.loads(files["manifest.json"]) for files in (local, remote)]
    assert manifests[0]["config_hash"] == manifests[1]["config_hash"]
    assert manifests[0]["outputs"] == manifests[1]["outputs"]


def test_chunk_steps_resume_where_they_stopped(
    cluster: str, config: RunConfig, local_out: Path, tmp_path: Path
) -> None:
    """A chunked site-year stopped after its surveys and one part: the resumed run on the
    cluster reads none of those chunks again (their step files are untouched) and writes the
    same outputs; the step files are gone once the site-year is stored."""
    on_cluster = chunked(config).updated(scheduler=cluster)
    out = tmp_path / "out"
    source, _ = run_module.make_source(on_cluster)
    planned = run_module.plan(on_cluster, run_module.resolve_sites(on_cluster),
                              on_cluster.years.all(), source)  # fmt: skip
    task = next(t for t in planned if tasks_module.by_chunks(t))
    key, work = task.key(), run_module.work_dir(out)
    work.mkdir(parents=True)
    n = tasks_module.chunk_count(task)
    for c in range(n):
        tasks_module.run_step(work, key, task, tasks_module.Step("survey", c))
    assert tasks_module.run_step(work, key, task, tasks_module.Step("settle")) is None
    tasks_module.run_step(work, key, task, tasks_module.Step("part", 0))
    assert len(list(work.glob("*.pkl"))) == n + 2  # the surveys, the plan, one part
    run_module.run(on_cluster, out)
    assert not work.exists()
    log = (out / LOG_NAME).read_text()  # the workers' records, forwarded
    assert log.count(f"{task.site.id} {task.year}: reused the survey of chunk") == n
    assert log.count(f"{task.site.id} {task.year}: reused the part of chunk") == 1
    assert_same_outputs(local_out, out)


def test_chunk_step_files_are_reused_not_rewritten(config: RunConfig, tmp_path: Path) -> None:
    """Run in this process: a survey step whose file exists does not read its chunk again;
    one whose file is damaged is recomputed."""
    local = chunked(config)
    source, _ = run_module.make_source(local)
    planned = run_module.plan(local, run_module.resolve_sites(local), local.years.all(), source)
    task = next(t for t in planned if tasks_module.by_chunks(t))
    key, work = task.key(), tmp_path / "work"
    work.mkdir()
    tasks_module.run_step(work, key, task, tasks_module.Step("survey", 0))
    tasks_module.run_step(work, key, task, tasks_module.Step("survey", 1))
    first, second = sorted(work.glob("*.survey-*.pkl"))
    stamp = first.stat().st_mtime_ns
    second.write_bytes(b"not a pickle")
    tasks_module.run_step(work, key, task, tasks_module.Step("survey", 0))
    tasks_module.run_step(work, key, task, tasks_module.Step("survey", 1))
    assert first.stat().st_mtime_ns == stamp
    assert second.read_bytes() != b"not a pickle"
