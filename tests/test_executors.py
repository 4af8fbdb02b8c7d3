"""The executor seam and progress from inside tasks (fast: threads and files, no run)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline import composite, task_progress
from pipeline.executors import open_executor, run_unordered


def square(x: int) -> int:
    return x * x


def kernel_threads(_: int) -> int | None:
    return composite._default_threads


def ignores_sigint(_: int) -> bool:
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def blocks_sigint(thread: threading.Thread) -> bool:
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:"))
    return bool(int(mask, 16) >> (signal.SIGINT - 1) & 1)


def test_run_unordered_gives_every_result_with_its_index_and_ticks() -> None:
    ticks: list[int] = []
    gate = threading.Event()

    def slow(x: int) -> int:
        gate.wait(5)
        return x * 10

    with ThreadPoolExecutor(2) as pool:
        results = run_unordered(pool, slow, [(i,) for i in range(5)], lambda: ticks.append(1), 0.05)
        timer = threading.Timer(0.3, gate.set)
        timer.start()
        got = dict(results)
    assert got == {i: i * 10 for i in range(5)}
    assert len(ticks) >= 2  # called while the calls were blocked, not only at the end


def test_run_unordered_cancels_calls_not_started_when_one_fails() -> None:
    started: list[int] = []

    def work(x: int) -> int:
        started.append(x)
        if x == 0:
            raise ValueError("bad scene")
        time.sleep(0.05)
        return x

    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="bad scene"):
        for _ in run_unordered(pool, work, [(i,) for i in range(20)], every_s=0.01):
            pass
    assert len(started) < 20


def test_open_executor_runs_here_with_one_worker_and_in_processes_with_more() -> None:
    with open_executor(1) as none:
        assert none is None
    with open_executor(2) as pool:
        assert pool is not None
        assert dict(run_unordered(pool, square, [(3,), (4,)])) == {0: 9, 1: 16}
        # Each worker's compositing kernel keeps to its share of the cores.
        share = max(1, len(os.sched_getaffinity(0)) // 2)
        assert set(dict(run_unordered(pool, kernel_threads, [(0,), (1,)])).values()) == {share}
    assert composite._default_threads is None  # this process keeps every core


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_pool_leaves_ctrl_c_to_the_main_thread() -> None:
    # The kernel gives a process's SIGINT to a thread that does not block it, and only the main
    # thread raises KeyboardInterrupt: the pool's threads block it, its workers ignore it.
    before = set(threading.enumerate())
    with open_executor(2) as pool:
        assert pool is not None
        assert set(dict(run_unordered(pool, ignores_sigint, [(0,), (1,)])).values()) == {True}
        started = [t for t in threading.enumerate() if t not in before]
        assert started  # the pool's manager and queue feeder
        assert all(blocks_sigint(t) for t in started)
        assert not blocks_sigint(threading.main_thread())
        assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_a_ctrl_c_while_spawned_workers_start_does_not_reach_them() -> None:
    # A spawned worker imports for seconds before its initializer ignores SIGINT. A Ctrl-C then
    # (here sent to each new worker at the first tick, 10 ms after the calls are submitted)
    # must not kill it: its traceback would follow the driver's one line, and the pool break.
    before = set(multiprocessing.active_children())
    sent: list[int] = []

    def ctrl_c_to_new_workers() -> None:
        for child in set(multiprocessing.active_children()) - before:
            if child.pid is not None and child.pid not in sent:
                os.kill(child.pid, signal.SIGINT)
                sent.append(child.pid)

    with open_executor(2, start_method="spawn") as pool:
        assert pool is not None
        calls = [(3,), (4,)]
        got = dict(run_unordered(pool, square, calls, ctrl_c_to_new_workers, every_s=0.01))
    assert got == {0: 9, 1: 16}
    assert sent  # the workers had their Ctrl-C


def test_report_reaches_the_listener_of_its_block_only() -> None:
    heard: list[tuple[str, int, int]] = []
    task_progress.report("chunks", 1, 4)  # nobody listens: nothing happens
    assert not task_progress.listening()
    with task_progress.reporting_to(lambda *a: heard.append(a)):
        assert task_progress.listening()
        task_progress.report("chunks", 2, 4)
    task_progress.report("chunks", 3, 4)
    assert heard == [("chunks", 2, 4)]


def test_progress_file_round_trip_and_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "t.progress"
    assert task_progress.read_progress(path) == {}
    listener = task_progress.ProgressFile(path)
    listener("scenes read", 1, 9)
    listener("chunks", 2, 6)  # within WRITE_EVERY_S of the first: kept, written by flush
    listener.flush()
    assert task_progress.read_progress(path) == {"scenes read": (1, 9), "chunks": (2, 6)}
    path.write_text('{"chunks": [1')
    assert task_progress.read_progress(path) == {}
    path.write_text('{"chunks": ["x", 2], "scenes read": [3, 4]}')
    assert task_progress.read_progress(path) == {"scenes read": (3, 4)}
