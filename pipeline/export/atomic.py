"""Atomic file writes: an output exists under its final name complete, or not at all.

A writer writes to a hidden temporary name in the target's own directory (same file system, so
the final ``os.replace`` is an atomic rename) and only a writer that finished renames it over the
target. A run that raises removes its temporary file; a run that is killed (SIGKILL, power loss)
can leave one behind, but never a half-written file under the final name. Temporary names match
``TEMP_GLOB`` so that a resumed run can sweep them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

#: Glob matching the temporary files of this module, e.g. ``.trends.tmp-1234-9f8e7d6c5b4a3f21.csv``.
TEMP_GLOB = ".*.tmp-*"


def _temp_sibling(target: Path) -> Path:
    # The real suffix stays last, so writers that pick a format from the extension (GDAL/OGR)
    # behave as for the final name. The file is not created here: GDAL drivers such as GPKG
    # refuse to write into an existing empty file.
    token = f"{os.getpid()}-{secrets.token_hex(8)}"
    return target.with_name(f".{target.stem}.tmp-{token}{target.suffix}")


def _remove_temp(temp: Path) -> None:
    # A failed GDAL writer can leave sidecars next to its file (.aux.xml, -journal, -wal); the
    # random token makes every file starting with the temporary name ours.
    for leftover in temp.parent.glob(f"{temp.name}*"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse fsync on directories
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    The temporary path does not exist yet: the body creates it (``open(tmp, "w")``, a GDAL
    driver, ...). Parent directories of ``path`` are created. When the body raises (including
    ``KeyboardInterrupt``) the temporary file is removed and an existing ``path`` is left
    untouched. The data is fsynced before the rename, so the rename never publishes a file whose
    contents are still only in the page cache.
    """
    target = Path(path)
    if target.name in ("", ".", ".."):
        raise ValueError(f"atomic write target {str(path)!r} does not name a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_sibling(target)
    try:
        yield temp
        if not temp.is_file():
            raise FileNotFoundError(
                f"writing {target}: the writer did not create its temporary file {temp.name}"
            )
        _fsync_file(temp)
        os.replace(temp, target)
    except BaseException:
        _remove_temp(temp)
        raise
    _fsync_dir(target.parent)
    logger.debug("wrote %s", target)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_path(path) as temp, open(temp, "xb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically as UTF-8, line ends exactly as given; return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))
