"""Progress from inside a task (scenes read, chunks done), wherever the task runs.

The stages call ``report(counter, done, total)``; it goes to whatever the task's runner set up
with ``reporting_to``: in the driver's own process the run's progress callback, in a worker
(a local process or a dask worker) a small JSON file beside the task's resume files
(``ProgressFile``), which the driver reads while it waits (``read_progress``). A file works
the same on every executor: cluster workers already share the run's work folder. Without a
runner, ``report`` does nothing, so the stages stay callable on their own.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path

from pipeline.export.atomic import atomic_write_text

TaskProgress = Callable[[str, int, int], None]
"""(counter, done, total), e.g. ("chunks", 3, 12)."""

_current: ContextVar[TaskProgress | None] = ContextVar("sitewatch_task_progress", default=None)

#: Seconds between two writes of a progress file (the last state is always written).
WRITE_EVERY_S = 0.5


def report(counter: str, done: int, total: int) -> None:
    """Tell the current task's runner how far ``counter`` is; nothing when none listens."""
    listener = _current.get()
    if listener is not None:
        listener(counter, done, total)


def listening() -> bool:
    """Whether a runner listens to ``report`` here."""
    return _current.get() is not None


@contextlib.contextmanager
def reporting_to(listener: TaskProgress) -> Iterator[None]:
    """Send ``report`` calls made in this block (this thread or task) to ``listener``."""
    token = _current.set(listener)
    try:
        yield
    finally:
        _current.reset(token)


class ProgressFile:
    """A listener that keeps ``{counter: [done, total]}`` in ``path`` (atomically, at most
    every ``WRITE_EVERY_S``; ``flush`` writes the last state)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, list[int]] = {}
        self._written = 0.0

    def __call__(self, counter: str, done: int, total: int) -> None:
        self.state[counter] = [done, total]
        if time.monotonic() - self._written >= WRITE_EVERY_S:
            self.flush()

    def flush(self) -> None:
        atomic_write_text(self.path, json.dumps(self.state, separators=(",", ":")))
        self._written = time.monotonic()


def read_progress(path: Path) -> dict[str, tuple[int, int]]:
    """The counters of a progress file; empty when it does not exist (yet, or any more) or
    cannot be read (progress is advisory)."""
    try:
        state: Mapping[str, list[int]] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    counters: dict[str, tuple[int, int]] = {}
    for counter, pair in state.items():
        with contextlib.suppress(TypeError, ValueError):
            done, total = (int(v) for v in pair)
            counters[counter] = (done, total)
    return counters
