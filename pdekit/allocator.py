"""The host allocator: keep large freed blocks in the process for reuse instead of handing them back to the OS.

glibc's malloc serves blocks above its mmap threshold with fresh ``mmap`` pages and returns them to
the OS on ``free``; the threshold adapts upward only to 32 MiB. Torch on the CPU allocates and frees
large tensors every step, so every step page-faults its working set back in: a 256² FNO forward
spent 68% of its time in the kernel (1.2 M page faults per forward, measured while planning). Raising
the mmap and trim thresholds keeps freed blocks in the heap, where the next step reuses them
(``benchmarks/allocator.py`` measures the gain; ``benchmarks/RESULTS.md`` records it). The cost is
that the process keeps its peak memory until it exits, as CUDA's caching allocator does on the GPU.

This is a process-wide setting, so importing pdekit never changes it: the ``pdekit`` command calls
``retain_freed_memory()`` at start (``PDEKIT_RETAIN_FREED_MEMORY=0`` turns that off), and a script
or notebook may call it itself. Elsewhere than glibc (macOS, musl) it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
ENVIRONMENT = "PDEKIT_RETAIN_FREED_MEMORY"


def retain_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Raises glibc's mmap and trim thresholds to ``threshold_bytes``; returns True if glibc accepted both.

    Blocks up to ``threshold_bytes`` are then served from the heap and kept there when freed.
    Returns False (and changes nothing) where the C library is not glibc.
    """
    if threshold_bytes < 1:
        raise ValueError(f"threshold_bytes must be positive; got {threshold_bytes}")
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    value = min(threshold_bytes, 2**31 - 1)
    return bool(mallopt(M_MMAP_THRESHOLD, value)) and bool(mallopt(M_TRIM_THRESHOLD, value))


def retain_freed_memory_unless_disabled() -> bool:
    """Calls ``retain_freed_memory()`` unless the environment sets ``PDEKIT_RETAIN_FREED_MEMORY=0``; returns whether it applied."""
    if os.environ.get(ENVIRONMENT, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return retain_freed_memory()
