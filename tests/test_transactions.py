"""Runs as transactions on their output folder: resume keyed by content (npz + JSON, no pickle),
staging swapped in whole, the run lock, folder errors, and workers that die with the driver."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from test_run import TABLES, interrupted_run, small_config

from pipeline import run as run_module
from pipeline import tasks as tasks_module
from pipeline.config import RunConfig, load_config
from pipeline.errors import OutputError, RunLockedError
from pipeline.export import run_outputs
from pipeline.export.manifest import sha256_file
from pipeline.export.transaction import LOG_NAME, lock_path, pid_alive, staging_path
from pipeline.sites import load_sites

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> tuple[RunConfig, Path]:
    """An uninterrupted run of the small scenario: the reference every other run must equal."""
    tmp = tmp_path_factory.mktemp("clean")
    config = load_config(small_config(tmp, cache))
    out = tmp / "out"
    run_module.run(config, out)
    return config, out


def config_in(tmp: Path, cache: Path, **changes: Any) -> RunConfig:
    path = small_config(tmp, cache)
    if changes:
        data = yaml.safe_load(path.read_text())
        data.update(changes)
        path.write_text(yaml.safe_dump(data))
    return load_config(path)


def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (hidden ones included)."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_manifest_consistent(out: Path) -> dict[str, Any]:
    """Every file but the manifest is listed with its SHA-256, and nothing else is there."""
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    listed = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    files = snapshot(out)
    files.pop("manifest.json")
    files.pop(LOG_NAME)  # the run's log: in the folder, not in the manifest
    assert files == listed
    return manifest


def leftovers(out: Path) -> list[str]:
    """Staging, old-run and lock files a finished run must not leave beside ``out``."""
    return sorted(
        p.name for p in out.parent.iterdir() if p.name != out.name and p.name.startswith(out.name)
    )


class Counting:
    """The site-years computed: ``years`` in the run's first pass, ``again`` those made again
    resampled onto their site's other years (``run.resampled_tasks``)."""

    def __init__(self) -> None:
        self.years: list[int] = []
        self.again: list[int] = []
        self.original = tasks_module.observe

    def __call__(self, task: tasks_module.SiteYearTask) -> Any:
        (self.years if task.params.year_shift is None else self.again).append(task.year)
        return self.original(task)


# ---- resume keyed by content -----------------------------------------------------------------


@pytest.mark.slow
def test_resume_reads_a_repaired_scene_again(
    clean: tuple[RunConfig, Path], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, reference = clean
    own_cache = tmp_path / "cache"
    shutil.copytree(cache, own_cache)
    config = config_in(tmp_path, own_cache)
    source, _ = run_module.make_source(config)
    (site,) = load_sites(config.sites, ["demo-control"])
    start, end = config.season.window(2021)
    victim = source.search(site, start, end)[0]
    band = Path(victim.assets["red"].href)
    good = band.read_bytes()
    band.write_bytes(b"not a tiff")  # a corrupt download
    out = tmp_path / "out"

    interrupted_run(config, out)  # killed after both site-years were stored
    records = [
        json.loads(p.read_text()) for p in sorted(run_module.work_dir(out).glob("*-2021-*.json"))
    ]
    assert records  # the year's own, and its remake resampled onto 2022 if it was off it
    for record in records:
        skipped = [s["scene_id"] for s in record["site_year"]["scenes"] if s["skipped"]]
        assert skipped == [victim.id]

    band.write_bytes(good)  # repaired
    counting = Counting()
    monkeypatch.setattr(tasks_module, "observe", counting)
    run_module.run(config, out)
    assert counting.years == [2021]  # the year with the skip is read again, 2022 is resumed
    for name in TABLES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    manifest = assert_manifest_consistent(out)
    assert not [s for y in manifest["sites"][0]["years"] for s in y["scenes"] if s["skipped"]]
    assert manifest["outputs"] == json.loads((reference / "manifest.json").read_text())["outputs"]


def test_key_follows_the_bytes_of_local_assets(clean: tuple[RunConfig, Path]) -> None:
    config, _ = clean
    source, _ = run_module.make_source(config)
    (site,) = load_sites(config.sites, ["demo-control"])
    tasks = run_module.plan(config, [site], [2021], source)
    before = tasks[0].key()
    assert tasks[0].key() == before  # stable
    href = Path(tasks[0].scenes[0].assets["red"].href)
    st = href.stat()
    try:
        os.utime(href, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert tasks[0].key() != before
    finally:
        os.utime(href, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert tasks[0].key() == before


def test_resume_files_are_npz_and_json_never_pickles(
    clean: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    config, reference = clean
    out = tmp_path / "out"
    interrupted_run(config, out)
    work = run_module.work_dir(out)
    resume_files = [p for p in work.iterdir() if p.name != LOG_NAME]
    assert {p.suffix for p in resume_files} == {".json", ".npz"}
    # A pair per site-year, and per site-year made again resampled onto the other year.
    arrays = sorted(p.stem for p in resume_files if p.suffix == ".npz")
    assert arrays == sorted(p.stem for p in resume_files if p.suffix == ".json")
    assert {stem.split("-")[-2] for stem in arrays} == {"2021", "2022"}
    for npz in work.glob("*.npz"):
        with np.load(npz, allow_pickle=False) as arrays:
            assert {"footprint", "valid", "composite_reflectance"} <= set(arrays.files)
    run_module.run(config, out)
    assert not list(tmp_path.rglob("*.pkl"))
    assert not work.exists()  # pruned after success
    assert leftovers(out) == []
    for name in TABLES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_force_recomputes(
    clean: tuple[RunConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = clean
    out = tmp_path / "out"
    interrupted_run(config, out)
    counting = Counting()
    monkeypatch.setattr(tasks_module, "observe", counting)
    run_module.run(config, out, force=True)
    assert counting.years == [2021, 2022]
    assert set(counting.again) <= {2021, 2022}


def test_a_damaged_resume_file_is_recomputed(
    clean: tuple[RunConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, reference = clean
    out = tmp_path / "out"
    interrupted_run(config, out)
    damaged = list(run_module.work_dir(out).glob("*-2022-*.npz"))
    assert damaged
    for npz in damaged:  # the year's own, and its remake resampled onto the other year if any
        npz.write_bytes(npz.read_bytes()[:100])
    counting = Counting()
    monkeypatch.setattr(tasks_module, "observe", counting)
    run_module.run(config, out)
    assert counting.years == [2022]
    for name in TABLES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_stale_temporaries_and_staging_are_swept(
    clean: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    config, _ = clean
    out = tmp_path / "out"
    interrupted_run(config, out)
    work = run_module.work_dir(out)
    temp = work / ".demo-control-2021-x.tmp-1-0123456789abcdef.npz"
    temp.write_bytes(b"half")
    dead = staging_path(out, 999_999_999)
    (dead / "rasters").mkdir(parents=True)
    (dead / "trends.csv").write_text("half")
    interrupted_run(config, out)
    assert not temp.exists()
    assert not dead.exists()
    run_module.run(config, out)
    assert leftovers(out) == []


# ---- transactional output --------------------------------------------------------------------


@pytest.fixture
def with_rasters(clean: tuple[RunConfig, Path], tmp_path: Path, cache: Path) -> RunConfig:
    return config_in(tmp_path, cache, write_rasters=True)


def test_a_failure_during_export_keeps_the_previous_run(
    with_rasters: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    run_module.run(with_rasters, out)
    before = snapshot(out)
    assert any(name.startswith("rasters/") for name in before)
    written: list[Path] = []
    original = run_outputs.write_cog

    def failing(path: Any, *args: Any, **kwargs: Any) -> Path:
        if len(written) == 3:
            raise RuntimeError("writer crashed")
        written.append(Path(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(run_outputs, "write_cog", failing)
    with pytest.raises(RuntimeError, match="writer crashed"):
        run_module.run(with_rasters, out)
    assert len(written) == 3
    assert all(staging_path(out) in p.parents for p in written)  # written into staging only
    assert snapshot(out) == before
    assert_manifest_consistent(out)
    assert not staging_path(out).exists()
    assert not lock_path(out).exists()


def test_a_full_disk_is_an_output_error_and_keeps_the_previous_run(
    with_rasters: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    run_module.run(with_rasters, out)
    before = snapshot(out)

    def full(path: Any, *_args: Any, **_kwargs: Any) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(run_outputs, "write_csv", full)
    with pytest.raises(OutputError, match="free space") as info:
        run_module.run(with_rasters, out)
    assert "trends.csv" in str(info.value)
    assert snapshot(out) == before
    assert leftovers(out) == [out.name + run_module.WORK_SUFFIX]  # kept for the resume


def test_a_rerun_with_fewer_years_leaves_no_rasters_of_dropped_years(
    with_rasters: RunConfig, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_module.run(with_rasters, out)
    assert list(out.rglob("*_2021_*.tif"))
    run_module.run(with_rasters, out, years=[2022])
    assert not list(out.rglob("*_2021_*.tif"))
    assert list(out.rglob("*_2022_*.tif"))
    assert_manifest_consistent(out)
    assert leftovers(out) == []


def test_a_swap_killed_between_its_renames_is_undone(
    clean: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    config, _ = clean
    out = tmp_path / "out"
    run_module.run(config, out)
    before = snapshot(out)
    out.rename(out.with_name(out.name + ".old-999999999"))  # what a kill there leaves
    interrupted_run(config, out)
    assert snapshot(out) == before
    assert leftovers(out) == [out.name + run_module.WORK_SUFFIX]


def test_a_second_run_is_refused_naming_the_pid(
    clean: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    config, _ = clean
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(out).write_text(f"{holder.pid}\n")
        with pytest.raises(RunLockedError, match=rf"PID {holder.pid}\b"):
            run_module.run(config, out)
        assert lock_path(out).read_text() == f"{holder.pid}\n"  # left to its owner
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over(
    clean: tuple[RunConfig, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config, reference = clean
    out = tmp_path / "out"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not pid_alive(gone.pid)
    lock_path(out).write_text(f"{gone.pid}\n")
    with caplog.at_level(logging.WARNING):
        run_module.run(config, out)
    assert f"PID {gone.pid}" in caplog.text
    assert not lock_path(out).exists()
    assert (out / "trends.csv").read_bytes() == (reference / "trends.csv").read_bytes()


def test_folder_errors_are_output_errors(
    clean: tuple[RunConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = clean
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        run_module.run(config, a_file)
    with pytest.raises(OutputError, match="a-file"):
        run_module.run(config, a_file / "out")  # the parent is a file
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.docx").write_text("mine")
    with pytest.raises(OutputError, match="holds no sitewatch run"):
        run_module.run(config, other)
    assert (other / "thesis.docx").read_text() == "mine"

    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OutputError, match="writable") as info:
        run_module.run(config, tmp_path / "ro" / "out")
    assert str(tmp_path / "ro") in str(info.value)


# ---- process hygiene: SIGKILL and Ctrl-C with 2 workers ---------------------------------------

# The CLI with the 2022 site-year made slow, so that a signal finds the workers busy. It first
# takes SIGINT as a terminal's foreground job does: a test runner started in the background by a
# non-interactive shell (``bash .ci/run &``) ignores SIGINT, every child inherits that, and Python
# then installs no KeyboardInterrupt handler, so the Ctrl-C below would be ignored.
SLOW_CLI = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import pipeline.tasks as r
original = r.observe
def slow(task):
    if task.year == 2022:
        time.sleep(float(sys.argv[1]))
    return original(task)
r.observe = slow
from pipeline.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (``SigCgt`` in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    raise AssertionError(f"no SigCgt line for process {pid}")


@contextlib.contextmanager
def slow_run(config_path: Path, out: Path) -> Iterator[subprocess.Popen[str]]:
    """The slow run, in a process group of its own; killed with its workers at the end of the
    block if it is still running (a failed test must not leak it into the rest of the suite)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, "60", "-q", "run", str(config_path), "--out", str(out),
         "--workers", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def stored_records(out: Path, year: int) -> list[Path]:
    """The resume records of ``year`` in the run's work folder: renamed into place, not the
    hidden temporary of a write in progress (which the same glob matches)."""
    records = run_module.work_dir(out).glob(f"*-{year}-*.json")
    return [p for p in records if not p.name.startswith(".")]


def wait_for_site_years(proc: subprocess.Popen[str], out: Path) -> list[int]:
    """Wait until the 2021 site-year is stored and the workers run; return the workers."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        workers = children_of(proc.pid)
        if stored_records(out, 2021) and len(workers) >= 2:
            return workers
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no site-year stored in time: {proc.communicate()}")


def wait_gone(pids: list[int], seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    alive = pids
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            break
        time.sleep(0.05)
    return alive


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_leaves_no_worker_and_the_rerun_is_identical(
    clean: tuple[RunConfig, Path], tmp_path: Path, cache: Path
) -> None:
    config_path = small_config(tmp_path, cache)
    out = tmp_path / "out"
    with slow_run(config_path, out) as proc:
        workers = wait_for_site_years(proc, out)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    survivors = wait_gone(workers)
    for pid in survivors:  # do not leak them into the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], "workers outlived the killed driver"
    assert not out.exists()
    assert lock_path(out).read_text().strip() == str(proc.pid)  # a dead run's lock

    _, reference = clean
    run_module.run(load_config(config_path), out)
    for name in TABLES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    manifest = assert_manifest_consistent(out)
    assert manifest["outputs"] == json.loads((reference / "manifest.json").read_text())["outputs"]
    assert leftovers(out) == []


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_every_worker_with_one_line(
    clean: tuple[RunConfig, Path], tmp_path: Path, cache: Path
) -> None:
    config_path = small_config(tmp_path, cache)
    out = tmp_path / "out"
    with slow_run(config_path, out) as proc:
        workers = wait_for_site_years(proc, out)
        assert catches(proc.pid, signal.SIGINT), "the run ignores SIGINT: no Ctrl-C stops it"
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C goes to the whole process group
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    assert wait_gone(workers) == []
    assert not lock_path(out).exists()
    assert not out.exists()
    assert stored_records(out, 2021)  # kept for the resume
