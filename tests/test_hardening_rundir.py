"""Issue #27: the stale-partial sweeper removes only folders fedlab marked as its own.

A user's folder that merely looks like a killed run's partial folder (same name pattern, old,
even holding a file called ``.owner.lock``) must survive any number of fedlab runs beside it;
a folder fedlab created (marker written at creation) and whose owner is gone is removed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from fedlab.core.rundir import MARKER, MARKER_TEXT, OWNER_LOCK, atomic_run_dir, remove_stale_partials


def _old(path: Path, seconds: float = 7200) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_lookalike_user_folders_survive_a_run(tmp_path: Path) -> None:
    plain = tmp_path / ".results.partial-keep"
    plain.mkdir()
    (plain / "notes.txt").write_text("user data")
    with_lock = tmp_path / ".thesis.partial-2024"
    with_lock.mkdir()
    (with_lock / OWNER_LOCK).write_text("")
    (with_lock / "chapter.tex").write_text("user data")
    forged = tmp_path / ".other.partial-x"  # a marker file with other content is not fedlab's
    forged.mkdir()
    (forged / MARKER).write_text("something else")
    (forged / OWNER_LOCK).write_text("")
    for folder in (plain, with_lock, forged):
        _old(folder)
    with atomic_run_dir(tmp_path / "run") as work:
        assert (work / MARKER).read_text() == MARKER_TEXT  # written at creation
        (work / "x.txt").write_text("x")
    assert (plain / "notes.txt").read_text() == "user data"
    assert (with_lock / "chapter.tex").read_text() == "user data"
    assert forged.is_dir()
    assert not (tmp_path / "run" / MARKER).exists() and (tmp_path / "run" / "x.txt").exists()
    assert remove_stale_partials(tmp_path) == []


def test_fedlabs_own_orphan_is_removed(tmp_path: Path) -> None:
    orphan = tmp_path / ".run.partial-abc"
    orphan.mkdir()
    (orphan / MARKER).write_text(MARKER_TEXT)
    (orphan / OWNER_LOCK).write_text("")  # nobody holds the lock: its owner is gone
    (orphan / "metrics.jsonl").write_text("{}\n")
    assert remove_stale_partials(tmp_path) == [orphan]
    assert not orphan.exists()


def test_symlinked_partial_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / MARKER).write_text(MARKER_TEXT)
    (target / OWNER_LOCK).write_text("")
    (tmp_path / ".run.partial-link").symlink_to(target, target_is_directory=True)
    assert remove_stale_partials(tmp_path) == []
    assert target.is_dir()
