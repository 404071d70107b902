"""Keep big buffers out of the heap: a fixed mmap threshold for glibc's malloc.

glibc serves an allocation from 128 KiB up with its own mmap, returned to
the system when freed, until the first such block is freed: then it raises
the threshold to that block's size (up to 32 MiB) and serves later ones
from the heap, which seldom shrinks. Building ua-parser's resolver at start
frees a few MiB blocks, so afterwards a relayed 25 MB attachment's buffers
(the message, its copies, their base64) piled up in the heap: the serve
process's peak grew 2.5x the message instead of 1.7x (bench/relay.py; with
classification off, or this threshold fixed, 1.6-1.7x).

A fixed threshold (``mallopt(M_MMAP_THRESHOLD)``) turns that adjustment off.
1 MiB keeps the many small and mid-size buffers of the hot path and of a
normal message in the heap, where they are cheapest, and gives every big
one back as soon as it is freed. Only on glibc; ``MALLOC_MMAP_THRESHOLD_``
in the environment wins (glibc reads it itself).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD = 1024 * 1024


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where it does not apply."""
    if platform.libc_ver()[0] != "glibc" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
