"""Runs on a real dask.distributed cluster (``distributed.LocalCluster(processes=True)`` on
loopback, started and closed by the fixture): the same outputs, byte for byte, as a local run;
a run stopped after its site-years resumes on the cluster and recomputes only what is missing;
a scheduler that cannot be reached is refused with what to do."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_run import interrupted_run, small_config

from pipeline import executors
from pipeline import run as run_module
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


def site_year_tasks_run(address: str) -> int:
    """How many ``run_site_year`` tasks the cluster's scheduler has seen finish (its per-prefix
    counts of transitions into each state are cumulative)."""
    with distributed.Client(address, set_as_default=False) as client:
        return int(
            client.run_on_scheduler(
                lambda dask_scheduler: (
                    dask_scheduler.task_prefixes["run_site_year"].state_counts["memory"]
                    if "run_site_year" in dask_scheduler.task_prefixes
                    else 0
                )
            )
        )


def test_cluster_run_writes_the_same_bytes_as_a_local_run(
    cluster: str, config: RunConfig, local_out: Path, tmp_path: Path
) -> None:
    before = site_year_tasks_run(cluster)
    out = tmp_path / "out"
    run_module.run(config.updated(scheduler=cluster), out)
    n_tasks = len(config.site_ids or []) * len(config.years.all())
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
    assert len(stored) == n_tasks
    # One site-year lost (as if the run was killed before it finished): only it is recomputed.
    stored[0].unlink()
    before = site_year_tasks_run(cluster)
    with caplog.at_level(logging.INFO, logger="pipeline.run"):
        run_module.run(on_cluster, out)
    assert f"reused {n_tasks - 1} of {n_tasks} site-years" in caplog.text
    log = (out / LOG_NAME).read_text()
    # The stopped attempt and the resumed one, in one log; the workers' records forwarded.
    assert log.count("sitewatch ") >= 2
    assert "run stopped: Killed" in log
    assert "reused" in log
    assert site_year_tasks_run(cluster) - before == n_tasks  # each task checks its store there
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
