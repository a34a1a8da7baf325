"""Memory allocator settings for processes that repeat large tensor operations.

Training and MD allocate and free the same large per-edge tensors (tens of MB on dense
periodic cells) at every step. glibc's malloc serves blocks of that size with ``mmap``
and returns them to the system when they are freed, so every step pays the page faults
of touching fresh memory again (``fill_``, ``index_select`` and the autograd buffers
dominate a CPU training step that way). :func:`keep_freed_memory` asks malloc to serve
them from its heap and keep freed memory for reuse instead, as PyTorch's CPU tuning
guide gets from jemalloc or tcmalloc. Peak memory is unchanged; the process keeps its
peak once reached. Outside glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit systems
_TRIM_THRESHOLD = 2**62  # never give freed heap back
_TOP_PAD = 64 * 1024 * 1024  # grow the heap in large steps

_applied = False


def keep_freed_memory() -> bool:
    """Keep freed large blocks for reuse (glibc ``mallopt``); True where it applied.

    Idempotent and process-wide; set ``MLIP_MALLOC=system`` in the environment to leave
    the allocator as it is.
    """
    global _applied
    if _applied:
        return True
    import os

    if os.environ.get("MLIP_MALLOC", "") == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(
        mallopt(option, value)
        for option, value in (
            (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX),
            (_M_TRIM_THRESHOLD, min(_TRIM_THRESHOLD, 2**31 - 1)),
            (_M_TOP_PAD, _TOP_PAD),
        )
    )
    _applied = ok
    return ok
