"""Run directories written atomically.

Every fedlab command writes its results into a run directory. It is built under a hidden
temporary name next to the final location and renamed into place only when the run
succeeds, so a failed or interrupted run never leaves a half-written directory behind.
Single files are written the same way (temp file + ``os.replace``).

A process killed with SIGKILL (or a crash of the machine) cannot clean up, so a working
directory holds an exclusive `flock` on ``.owner.lock`` for as long as its process lives; the
next `atomic_run_dir` in the same parent folder removes every ``.NAME.partial-*`` folder that
fedlab marked as its own when it created it (`MARKER`, holding `MARKER_TEXT`) and whose lock
is free (its owner is gone). A folder without the marker is never touched, whatever its name
or age: fedlab deletes only what it created (issue #27: a user's ``.results.partial-keep`` was
deleted by an ordinary run).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, indent: int | None = 2) -> str:
    """JSON with NumPy scalars/arrays and Paths converted; NaN written as null."""
    return json.dumps(_nan_to_none(obj), indent=indent, default=_json_default, allow_nan=False)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:  # NaN
        return None
    if isinstance(obj, np.floating) and np.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, dumps(obj) + "\n")


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (used for per-round metrics while a run is in progress)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(dumps(record, indent=None) + "\n")


OWNER_LOCK = ".owner.lock"
MARKER = ".fedlab-partial"
MARKER_TEXT = "fedlab partial run directory: removed by the next run once its owner is gone\n"


def _lock_owner(work: Path) -> Any:
    """Hold an exclusive lock on `work`/.owner.lock while this process lives (None without fcntl)."""
    try:
        import fcntl
    except ImportError:  # Windows: stale folders are then only removed by age
        return None
    fh = open(work / OWNER_LOCK, "w")  # noqa: SIM115 - kept open: the lock lives as long as the fd
    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fh


def _is_fedlabs(folder: Path) -> bool:
    """The folder carries the marker fedlab writes into every working directory it creates."""
    marker = folder / MARKER
    try:
        if not marker.is_file() or marker.is_symlink():
            return False
        return marker.read_text(encoding="utf-8") == MARKER_TEXT
    except (OSError, UnicodeDecodeError):
        return False


def _is_stale(folder: Path) -> bool:
    if folder.is_symlink() or not _is_fedlabs(folder):
        return False  # not ours: never removed
    lock = folder / OWNER_LOCK
    if not lock.exists():
        return False  # the marker is written before the lock: its owner is still starting
    try:
        import fcntl
    except ImportError:
        return False
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its owner is alive
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


def remove_stale_partials(parent: Path) -> list[Path]:
    """Remove ``.*.partial-*`` folders in `parent` that fedlab created (`MARKER`) and whose owner is gone;
    returns what was removed."""
    removed = []
    if not Path(parent).is_dir():
        return removed
    for folder in Path(parent).glob(".*.partial-*"):
        try:
            if folder.is_dir() and _is_stale(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:  # raced with its owner publishing or removing it
            continue
    return removed


def default_run_name(prefix: str) -> str:
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S-%f')}"


def check_out_dir(final: Path, flag: str = "--out") -> None:
    """The run directory `final` can be created: it is not a file, no folder above it is a file,
    and the nearest existing folder above it is writable. Checked before any data is loaded, so a
    bad ``--out`` costs nothing and writes nothing (one `FedlabError` line)."""
    from fedlab.core.errors import FedlabError

    final = Path(final).expanduser()
    if final.exists() and not final.is_dir():
        raise FedlabError(f"{flag} {final} is an existing file; expected a directory (new or empty)")
    probe = final
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe != final and not probe.is_dir():
        raise FedlabError(f"{flag} {final}: {probe} is a file, so no directory can be created below it")
    target = final if final.exists() else probe
    if not os.access(target, os.W_OK | os.X_OK) or _read_only_mount(target):
        raise FedlabError(f"{flag} {final}: {target} is not writable; choose another {flag}")


def _read_only_mount(folder: Path) -> bool:
    """True on a read-only file system or a pseudo file system (/proc, /sys), where even root's
    `os.access` says yes but creating a folder fails."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return True
    if stat.f_flag & os.ST_RDONLY:
        return True
    resolved = Path(folder).resolve()
    return any(resolved == Path(p) or Path(p) in resolved.parents for p in ("/proc", "/sys"))


@contextmanager
def atomic_run_dir(final: Path, *, resume: bool = False) -> Iterator[Path]:
    """Yield a working directory that becomes `final` only if the block succeeds.

    With ``resume=True`` an existing `final` is copied into the working directory first,
    so resumable commands (``fedlab audit``) can skip finished work and still publish
    atomically. Without it, an existing non-empty `final` is an error.
    """
    from fedlab.core.errors import FedlabError

    final = Path(final)
    check_out_dir(final)
    if final.exists() and any(final.iterdir()) and not resume:
        raise FedlabError(f"run directory {final} already exists and is not empty; choose another --out")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(final.parent)
        work = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
        (work / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    except OSError as exc:
        raise FedlabError(f"--out {final}: cannot create ({exc.strerror or type(exc).__name__})") from exc
    owner = None
    try:
        owner = _lock_owner(work)
        if resume and final.exists():
            shutil.copytree(final, work, dirs_exist_ok=True)
        yield work
    except BaseException:
        if owner is not None:
            owner.close()
        shutil.rmtree(work, ignore_errors=True)
        raise
    if owner is not None:
        owner.close()
    (work / OWNER_LOCK).unlink(missing_ok=True)
    (work / MARKER).unlink(missing_ok=True)
    if final.exists():
        backup = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, backup)
        os.replace(work, final)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(work, final)
