"""Transactional run folders: a lock, a staging folder swapped in whole, and the sweeps.

For an output folder ``<out>`` everything lives beside it, in its parent (same file system, so
every rename below is atomic):

* ``<out>.lock``: a file created with ``O_EXCL`` holding the PID of the run that owns ``<out>``.
  A second run into the same folder is refused with ``RunLockedError`` naming that PID; a lock
  whose PID is dead (a killed run) is taken over with a warning.
* ``<out>.staging-<pid>/``: where a run writes all its outputs. Only when the manifest is written
  and verified against the files (``verify_run_folder``) is it swapped in (``publish``).
* ``<out>.old-<pid>/``: the previous run, for the instant between the two renames of a swap
  where ``renameat2(RENAME_EXCHANGE)`` is not available; then deleted. A run that finds one
  and no ``<out>`` puts it back (``recover``).

So ``<out>`` always holds one complete, manifest-consistent run (or none before the first one):
a failure or a kill at any moment leaves the previous complete run or the new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Collection, Iterator
from pathlib import Path

from pipeline.errors import OutputError, RunLockedError
from pipeline.export.atomic import TEMP_GLOB, _fsync_dir
from pipeline.export.manifest import sha256_file

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
STAGING_INFIX = ".staging-"
OLD_INFIX = ".old-"
MANIFEST = "manifest.json"
#: The run's log (times, warnings, skipped scenes): in the run folder, not in the manifest (it
#: holds times, so a rerun would never give the same bytes).
LOG_NAME = "sitewatch.log"


def lock_path(out: Path) -> Path:
    return out.with_name(out.name + LOCK_SUFFIX)


def staging_path(out: Path, pid: int | None = None) -> Path:
    return out.with_name(f"{out.name}{STAGING_INFIX}{os.getpid() if pid is None else pid}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(0) said it exists
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise
    except OSError:
        return None
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def output_error(path: Path, action: str, exc: OSError) -> OutputError:
    """An ``OutputError`` naming ``path``, what failed and what to do about it."""
    reason = exc.strerror or str(exc)
    where = Path(exc.filename) if exc.filename else path
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        hint = f"free space on the disk holding {path.parent} (or choose another --out)"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = f"make {path.parent} writable or choose another --out"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = "a file is in the way of a folder: remove it or choose another --out"
    else:
        hint = "check the folder and the disk, or choose another --out"
    return OutputError(f"{action} {path} failed at {where}: {reason}; {hint}")


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[Path]:
    """Hold ``<out>.lock`` for the body; ``RunLockedError`` when a live run holds it."""
    path = lock_path(out)
    acquire_lock(path)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            if _read_pid(path) == os.getpid():
                path.unlink()


def _locked(lock: Path) -> Path:
    return lock.with_name(lock.name[: -len(LOCK_SUFFIX)])


def acquire_lock(path: Path) -> None:
    """Create the lock file holding this process's PID, taking over a dead run's lock."""
    for _attempt in range(5):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        except OSError as exc:
            raise output_error(path, "creating the run lock", exc) from None
        else:
            try:
                os.write(fd, f"{os.getpid()}\n".encode())
                os.fsync(fd)
            except OSError as exc:
                os.close(fd)
                with contextlib.suppress(OSError):
                    path.unlink()
                raise output_error(path, "writing the run lock", exc) from None
            os.close(fd)
            return
        try:
            holder = _read_pid(path)
        except FileNotFoundError:
            continue  # released meanwhile: try again
        if holder is None:
            # Just created by another run that has not written its PID yet, or junk: junk older
            # than a few seconds is taken over.
            try:
                young = time.time() - path.stat().st_mtime < 5.0
            except FileNotFoundError:
                continue
            if young:
                raise RunLockedError(
                    f"output folder {_locked(path)} is locked by {path} (being created by "
                    "another run); wait for it to finish"
                )
        elif pid_alive(holder):
            raise RunLockedError(
                f"output folder {_locked(path)} is in use by "
                f"the run with PID {holder} (lock {path}); wait for it to finish, or stop it "
                f"(kill {holder}) and run again"
            )
        # Stale: move it aside first, so that of two runs taking it over only one succeeds,
        # and never delete a lock that a live run created in the meantime.
        aside = path.with_name(f"{path.name}.stale-{os.getpid()}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise output_error(path, "taking over the stale run lock", exc) from None
        moved = _read_pid(aside)
        if moved is not None and moved != holder and pid_alive(moved):
            with contextlib.suppress(OSError):
                os.link(aside, path)  # put the live run's lock back (fails if taken again)
            with contextlib.suppress(OSError):
                aside.unlink()
            raise RunLockedError(
                f"output folder {_locked(path)} is in use by "
                f"the run with PID {moved} (lock {path}); wait for it to finish"
            )
        with contextlib.suppress(OSError):
            aside.unlink()
        logger.warning(
            "taking over the lock %s of a run that is no longer running (PID %s)", path, holder
        )
    raise RunLockedError(f"could not take the run lock {path}; another run keeps taking it")


def recover(out: Path) -> None:
    """Under the lock: put back a previous run moved aside by a swap that was killed between
    its two renames, and remove staging and old folders that dead runs left beside ``out``."""
    olds = sorted(out.parent.glob(f"{out.name}{OLD_INFIX}*"), key=lambda p: p.stat().st_mtime)
    if not out.exists() and olds:
        restored = olds.pop()
        logger.warning(
            "restoring the previous run %s to %s (a swap was interrupted)", restored, out
        )
        os.rename(restored, out)
    for leftover in [*olds, *out.parent.glob(f"{out.name}{STAGING_INFIX}*")]:
        if leftover.is_dir() and not leftover.is_symlink():
            logger.info("removing %s, left by a run that stopped", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def sweep_temporaries(folder: Path) -> int:
    """Remove unfinished atomic writes (``atomic.TEMP_GLOB``) under ``folder``; return how many."""
    if not folder.is_dir():
        return 0
    n = 0
    for temp in folder.rglob(TEMP_GLOB):
        if temp.is_file() or temp.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
                n += 1
    if n:
        logger.info("swept %d unfinished temporary file(s) in %s", n, folder)
    return n


def check_output_folder(out: Path, allowed: Collection[str] = ()) -> None:
    """Refuse an ``out`` that is a file, or a non-empty folder that holds no run (a swap would
    delete its files); entries named in ``allowed`` (inputs the run carries over, such as the
    demo's sites file) do not count."""
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"output folder {out} is a file; remove it or choose another --out (a new or empty "
            "folder, or the folder of an earlier run)"
        )
    if out.is_dir() and os.path.ismount(out):
        raise OutputError(
            f"output folder {out} is a mount point: a run writes a new folder beside its output "
            f"folder and swaps it in, which a mount point cannot take; give a folder inside it "
            f"(e.g. --out {out / 'run'})"
        )
    if out.is_dir() and not (out / MANIFEST).is_file():
        visible = [
            p.name for p in out.iterdir() if not p.name.startswith(".") and p.name not in allowed
        ]
        if visible:
            raise OutputError(
                f"output folder {out} is not empty and holds no sitewatch run ({MANIFEST} "
                f"missing; it has {', '.join(sorted(visible)[:5])}); a run replaces its folder "
                "whole, so choose a new or empty folder, or the folder of an earlier run"
            )


def verify_run_folder(folder: Path) -> None:
    """The manifest lists every file of ``folder`` (but itself and the log) with its SHA-256,
    and nothing else is there; ``OutputError`` naming the first difference otherwise."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    listed = {o["path"]: o["sha256"] for o in manifest.get("outputs", [])}
    present = {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in (MANIFEST, LOG_NAME)
    }
    extra = sorted(set(present) - set(listed))
    missing = sorted(set(listed) - set(present))
    if extra or missing:
        raise OutputError(
            f"staged run {folder} does not match its manifest (not listed: {extra[:5]}, "
            f"missing: {missing[:5]}); nothing was published"
        )
    for rel, path in present.items():
        if sha256_file(path) != listed[rel]:
            raise OutputError(
                f"staged output {path} changed after its checksum was taken; nothing was published"
            )


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False when the
    platform or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def publish(staging: Path, out: Path) -> None:
    """Swap the verified ``staging`` folder in as ``out`` and delete the previous run.

    With an existing ``out``: one atomic exchange where the kernel offers it, else rename
    ``out`` aside to ``<out>.old-<pid>``, rename ``staging`` to ``out`` (a kill between the two
    is undone by ``recover``). Then the previous run is deleted.
    """
    _fsync_tree(staging)
    if not out.exists():
        os.rename(staging, out)
        _fsync_dir(out.parent)
        return
    if _exchange(staging, out):
        old = staging  # now holds the previous run
    else:
        old = out.with_name(f"{out.name}{OLD_INFIX}{os.getpid()}")
        os.rename(out, old)
        os.rename(staging, out)
    _fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for directory in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        _fsync_dir(directory)
