"""Fewer page faults: memory settings for the calculator's repeated steps.

A calculator step allocates and frees the same intermediates (up to ~10 MB each for ethanol)
again and again, and each fresh 4 KiB page costs a page fault: about 16,000 per ethanol step
with the defaults (measured with ``getrusage``), a large part of the step time on a virtual
machine. :func:`keep_freed_memory` makes two process-wide settings:

- PyTorch's ``THP_MEM_ALLOC_ENABLE=1``: CPU tensors of 2 MB and more are aligned to, and
  advised as, transparent huge pages (one fault per 2 MB). PyTorch reads the variable at its
  first such allocation, so it is set only if no earlier one happened (it is otherwise left to
  the environment);
- glibc's malloc thresholds (what ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` do):
  smaller blocks are not returned to the system on free but reused by the next step. The
  process keeps its peak heap until it exits. On Linux with glibc only.

:class:`ase_phisnet.PhiSNetCalculator` calls it unless ``keep_freed_memory=False``; the
benchmark ``benchmarks/calculator_speed.py`` prints the faults per step.

Examples
--------
>>> keep_freed_memory() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD = 32 * 2**20  # blocks below this come from the heap (glibc's largest accepted value on 64-bit)
_TRIM_THRESHOLD = 1024 * 2**20  # free heap top kept up to this size
_TOP_PAD = 64 * 2**20  # extra heap obtained per growth

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed memory for reuse (once per process).

    Returns
    -------
    bool
        True if the malloc settings are in effect, False where the C library is not glibc.
    """
    global _done
    if _done is None:
        os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
        _done = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # musl and others have no mallopt
                return _done
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            _done = all(mallopt(p, v) == 1 for p, v in ((_M_MMAP_THRESHOLD, _MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_TOP_PAD, _TOP_PAD)))
    return _done
