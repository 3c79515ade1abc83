"""Processes that end with the process that started them, however it ends: solver workers, and DDP ranks under torchrun.

A ``ProcessPoolExecutor`` worker waits on a queue whose ends it holds itself, so it never sees its
parent die: after a SIGKILL of ``pdekit online`` the worker (hundreds of MB) lived on, and with it
multiprocessing's resource tracker, which exits only once every process holding its pipe has.
``exit_with_parent`` makes a worker end on its own. Two mechanisms, because neither is enough alone:

- Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel signals the worker the moment its parent
  dies, even while the worker is inside a long C call. The kernel ties it to the *thread* that
  started the worker: the Generator starts its workers from its feeder thread (the pool spawns them
  on ``submit``), the only thread that uses them, so it also ends them when the feeder ends, at the
  end of the stream or at ``close``, when nothing is left for them to do.
- a daemon thread that polls ``os.getppid()``: portable (macOS, BSDs), and a second line on Linux
  should the signal be lost (e.g. a parent that died before it was armed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

import torch

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.25


def _arm_parent_death_signal(signum: int) -> bool:
    """Asks Linux to send ``signum`` to this process when its parent dies; returns False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc, or one without prctl
        return False


def _watch_parent(parent_pid: int, interval: float) -> None:
    while True:
        if os.getppid() != parent_pid:  # reparented: the parent is gone
            os._exit(1)
        time.sleep(interval)


def exit_with_parent(parent_pid: int, interval: float = POLL_SECONDS, *, death_signal: bool = True) -> None:
    """Makes this process exit when ``parent_pid`` (its parent) dies: a parent-death signal where Linux has one, and a watchdog thread.

    ``death_signal=False`` keeps only the watchdog, for a process whose parent may start it from a
    thread that ends before the parent does (the signal follows the thread, not the process).
    """
    if death_signal:
        _arm_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid, interval), name="pdekit-parent-watchdog", daemon=True).start()


def solver_worker_initializer(parent_pid: int, threads: int = 1) -> None:
    """Sets up a solver worker process: ``threads`` torch threads, and an exit when ``parent_pid`` dies.

    One thread per worker: the workers already run in parallel, and more would compete for the
    cores with each other and with the trainer.
    """
    torch.set_num_threads(threads)
    exit_with_parent(parent_pid)
