"""The file operations under checkpoint saves: locks, atomic swaps, and repairing a killed save.

Locks are `filelock`'s (flock on POSIX, msvcrt on Windows), so this runs on every system the app
does; a killed holder releases its lock with its process. The atomic swap is Linux's renameat2
where there is one, else two renames that `recover_interrupted_saves` repairs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock, Timeout

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
STAGING_LOCK = ".save.lock"  # inside a staging folder while its save runs; removed before the rename


def fsync(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk (a folder cannot be opened on Windows: skipped there)."""
    if os.name == "nt" and path.is_dir():
        return
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)  # Windows flushes only a writable handle
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE).

    Returns False where the system or file system cannot; the caller then falls back to two
    renames, which `recover_interrupted_saves` repairs if a kill lands between them.
    """
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # no C library to ask (e.g. Windows)
        return None


def _lock(path: Path, timeout: float = -1, preserve: bool = False) -> FileLock:
    """filelock's lock on `path`; OSError at once when the file cannot be opened for writing (filelock
    itself would retry that forever). No soft (marker file) fallback: a killed holder must release
    the lock, which a marker never does."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
    return FileLock(path, timeout=timeout, fallback_to_soft=False, preserve_lock_file=preserve)


@contextlib.contextmanager
def folder_lock(root: Path):
    """Serialise renames in `root` across threads and processes (a killed holder releases it).

    Raises OSError when root is read-only or missing."""
    with _lock(root / ".lock", preserve=True):
        yield


def recover_interrupted_saves(root: Path) -> None:
    """Undo what a save killed half-way left behind.

    An overwrite renames the old folder to `.NAME.old-*` before renaming the new one in; if the
    process died between the two, the old checkpoint is put back. Retired copies whose successor
    is in place are removed. A staging folder (`.NAME.tmp-*`) is removed once no save holds its
    lock: a live save keeps it locked, and the lock dies with the process that held it.
    """
    try:
        with folder_lock(root):
            for staging in root.glob(".*.tmp-*"):
                _remove_if_abandoned(staging)
            for retired in root.glob(".*.old-*"):
                name = retired.name[1:].rsplit(".old-", 1)[0]
                target = root / name
                if target.exists():
                    shutil.rmtree(retired, ignore_errors=True)
                elif NAME_PATTERN.fullmatch(name):
                    os.rename(retired, target)
    except OSError:
        pass  # a read-only folder has nothing we could repair anyway


def free_name(parent: Path, name: str) -> Path:
    """The first NAME-2, NAME-3, ... with no folder in parent (NAME shortened to keep within 64 characters)."""
    from vae.checkpoints import CheckpointExistsError

    for number in range(2, 10_000):
        suffix = f"-{number}"
        candidate = parent / (name[:64 - len(suffix)] + suffix)
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
    raise CheckpointExistsError(f"A checkpoint named '{name}' already exists, and so do 9,998 variants of the name.")


def new_staging(parent: Path, name: str) -> tuple[Path, FileLock]:
    """A new hidden staging folder and the lock (a file inside it) held for as long as the save
    runs; `release_staging` before renaming it into place."""
    with folder_lock(parent):  # so recover_interrupted_saves never sees it unlocked
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent))
        lock = _lock(staging / STAGING_LOCK)
        lock.acquire()
    return staging, lock


def release_staging(staging: Path, lock: FileLock) -> None:
    """Release a staging folder's lock and remove its file (call with the folder lock held, so no
    clean-up sees the folder unlocked before it is renamed or removed)."""
    if lock.is_locked:
        lock.release(force=True)
    (staging / STAGING_LOCK).unlink(missing_ok=True)


def _remove_if_abandoned(staging: Path) -> None:
    if staging.is_symlink() or not staging.is_dir():
        return
    lock = _lock(staging / STAGING_LOCK, timeout=0)
    try:
        lock.acquire()
    except (Timeout, OSError):
        return  # a live save holds it
    lock.release(force=True)
    shutil.rmtree(staging, ignore_errors=True)
