"""Worker processes that die with their parent, however the parent dies.

Why: a SIGKILLed ``fedlab simulate --engine process`` used to leave its pool workers running as
orphans (~400 MB each, still training, ignoring SIGTERM), and since forked workers share the
run directory's lock (`fedlab.core.rundir`) the next run could not clean the partial folder
(issue #27). Three layers, each enough on its own where it applies:

1. Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` — the kernel kills the worker when the thread
   that forked it ends (only used when that thread is the main thread, whose end is the
   process's);
2. a pipe whose only write end stays in the parent (forked workers close their copy): when
   the parent dies the kernel closes it, a watchdog thread in the worker reads EOF and exits;
3. where fds are not inherited (spawn start method): a watchdog polling ``os.getppid()``.

Workers also get SIGTERM back at its default action (the parent's "SIGTERM = Ctrl-C" handler
would otherwise be inherited and swallowed by the pool's worker loop).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class ParentLink:
    """What a worker needs to notice its parent's death (picklable: initializer arguments)."""

    parent_pid: int
    read_fd: int = -1  # pipe read end (fork only); -1: poll the parent pid instead
    write_fd: int = -1  # the parent's end, closed in the worker
    pdeathsig: bool = False


def parent_link(forked: bool) -> ParentLink:
    """Create in the parent, before the workers exist; `close_parent_link` after the pool ends."""
    pdeathsig = sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread()
    if not forked:
        return ParentLink(os.getpid(), pdeathsig=pdeathsig)
    read_fd, write_fd = os.pipe()
    os.set_inheritable(read_fd, False)  # only forked workers (not exec'd programs) see it
    return ParentLink(os.getpid(), read_fd, write_fd, pdeathsig)


def close_parent_link(link: ParentLink | None) -> None:
    """The parent closes both ends: any worker still alive reads EOF and exits."""
    if link is None:
        return
    for fd in (link.read_fd, link.write_fd):
        if fd >= 0:
            with contextlib.suppress(OSError):  # already closed: nothing left to release
                os.close(fd)


def _set_pdeathsig() -> bool:
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _exit_now() -> None:
    os._exit(1)


def watch_parent(link: ParentLink) -> None:
    """In the worker: arrange to die with the parent (see the module doc); returns at once."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if link.pdeathsig:
        _set_pdeathsig()
    if os.getppid() != link.parent_pid:  # the parent died before we got here
        _exit_now()
    if link.read_fd >= 0:
        if link.write_fd >= 0:
            with contextlib.suppress(OSError):  # not inherited: nothing to close
                os.close(link.write_fd)

        def wait_eof() -> None:
            with contextlib.suppress(OSError):  # fd gone: the same as EOF
                while os.read(link.read_fd, 1):
                    continue
            _exit_now()

        threading.Thread(target=wait_eof, name="fedlab-parent-pipe", daemon=True).start()
        return

    def poll() -> None:
        while os.getppid() == link.parent_pid:
            time.sleep(POLL_SECONDS)
        _exit_now()

    threading.Thread(target=poll, name="fedlab-parent-poll", daemon=True).start()
