"""Where a run's site-year tasks execute: the executor seam of ``run``.

``open_executor`` gives a standard ``concurrent.futures.Executor`` (or None: run in this
process) and owns its life:

* ``workers <= 1`` and no scheduler: None; the driver runs each task itself.
* ``workers > 1``: a local ``ProcessPoolExecutor`` with the platform's default start method
  (spawn would force every analyst's script to guard its entry point) unless the caller names
  one. Workers ignore SIGINT and die with the driver (Linux ``PR_SET_PDEATHSIG``, elsewhere a
  watchdog thread); on Ctrl-C or a failed task the pool is terminated, not waited for, so no
  worker outlives the run. ``run_unordered`` starts the workers with SIGINT blocked, so none
  takes a Ctrl-C before it ignores it: a spawned worker spends seconds importing, and a
  KeyboardInterrupt there would print its traceback under the driver's one line.
* ``scheduler``: an existing dask.distributed cluster (``tcp://host:8786``), through
  ``Client.get_executor``; nothing home-made. Its workers must import the same ``pipeline``
  version and see the run's work folder (a shared file system): tasks write their arrays there
  and return small records. On failure the client's pending futures are cancelled.

The tasks are plain picklable callables; what they compute never depends on where they run.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from pipeline import composite
from pipeline.errors import SchedulerError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds to wait for a dask scheduler before giving up.
CONNECT_TIMEOUT_S = 20


@contextlib.contextmanager
def open_executor(
    workers: int, scheduler: str | None = None, start_method: str | None = None
) -> Iterator[Executor | None]:
    """The executor for a run (see the module docstring); shut down on exit, terminated on
    an exception (Ctrl-C included). ``start_method`` (``multiprocessing``'s, e.g. "spawn")
    starts a local pool's workers; None: the platform's default."""
    if scheduler is not None:
        with _dask_executor(scheduler) as executor:
            yield executor
        return
    if workers <= 1:
        yield None
        return
    share = max(1, len(os.sched_getaffinity(0)) // workers)  # each worker's cores
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(start_method),
        initializer=_worker_init,
        initargs=(os.getpid(), share),
    )
    try:
        yield pool
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def run_unordered(
    executor: Executor,
    fn: Callable[..., T],
    calls: Sequence[tuple[Any, ...]],
    tick: Callable[[], None] = lambda: None,
    every_s: float = 0.5,
) -> Iterator[tuple[int, T]]:
    """``(i, fn(*calls[i]))`` as each call finishes, all submitted at once; ``tick`` is called
    every ``every_s`` while they run (to show progress). When the consumer stops or a call
    fails, the calls not yet started are cancelled."""
    futures: list[Future[T]] = []
    try:
        # A local pool starts its workers on submit (with fork, all of them on the first): SIGINT
        # stays blocked meanwhile, and workers inherit the mask (across exec too, with spawn), so
        # that none can take a Ctrl-C before its initializer ignores it.
        with _sigint_blocked():
            futures = [executor.submit(fn, *args) for args in calls]
        index = {id(f): i for i, f in enumerate(futures)}
        pending: set[Future[T]] = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=every_s, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: index[id(f)]):
                yield index[id(fut)], fut.result()
            tick()
    finally:
        for fut in futures:
            fut.cancel()


@contextlib.contextmanager
def _dask_executor(address: str) -> Iterator[Executor]:
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerError(
            f"--scheduler {address}: dask.distributed is not installed; install it with "
            "`pip install 'sitewatch[dask]'` or run without --scheduler"
        ) from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(
            f"cannot reach the dask scheduler at {address!r} ({exc}); start one (`dask scheduler` "
            "and `dask worker ADDRESS`) or give its address as tcp://HOST:PORT, or run without "
            "--scheduler"
        ) from None
    try:
        n = len(client.scheduler_info().get("workers", {}))
        logger.info("running site-years on the dask cluster at %s (%d workers)", address, n)
        if n == 0:
            logger.warning("the dask cluster at %s has no workers yet; tasks wait for one", address)
        # The workers' log records reach this process's handlers (the run's log file); their
        # ``pipeline`` loggers pass INFO, as this process's do during a run.
        client.run(_log_info)
        client.forward_logging("pipeline", level=logging.INFO)  # type: ignore[no-untyped-call]
        executor: Executor = client.get_executor(pure=False)  # type: ignore[no-untyped-call]
        yield executor
    finally:
        client.close()  # type: ignore[no-untyped-call]


def _log_info() -> None:
    """On a dask worker: let the ``pipeline`` loggers' INFO records through."""
    package = logging.getLogger("pipeline")
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's workers without waiting for their tasks.

    A worker terminated while sending its result leaves a partial message in the result pipe,
    and the executor's manager thread (which the interpreter joins at exit) would wait for the
    rest forever. Closing the driver's own copies of the pipe ends the workers held (the result
    writer, the call reader) gives that thread end-of-file, which it handles as a broken pool.
    """
    processes = list(pool._processes.values())
    result_queue, call_queue = pool._result_queue, getattr(pool, "_call_queue", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(timeout=5)
    for queue, end in ((result_queue, "_writer"), (call_queue, "_reader")):
        with contextlib.suppress(Exception):
            getattr(queue, end).close()


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    can = threading.current_thread() is threading.main_thread() and hasattr(
        signal, "pthread_sigmask"
    )
    if can:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if can:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


_PR_SET_PDEATHSIG = 1


def _worker_init(parent: int, threads: int) -> None:
    """Pool initializer: ignore Ctrl-C (the driver handles it and terminates the pool), die
    with the driver, so a killed run leaves no worker behind, and keep the compositing kernel
    to this worker's share of the cores."""
    composite.set_default_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
        if armed:
            if os.getppid() != parent:  # the driver died before the prctl
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)
