"""Process settings for work that runs inside Dask workers.

Dask's nanny starts every worker process with ``MALLOC_TRIM_THRESHOLD_=65536`` (its default
``distributed.nanny.pre-spawn-environ``), so that freed memory goes back to the operating system.
Setting any malloc threshold through the environment also freezes glibc's mmap threshold at
128 KiB: every larger block, which is most tensors of a training step or a forward pass, is then
mapped and unmapped again each time, page faults included. ``python -m benchmarks.bench_scale
--skip-stream`` (40 members on a two-worker LocalCluster): 24.1 s before this module existed
(commit 923b634's parent), 9.6 s with it.
"""

import ctypes
import functools
import os
import sys

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 16 * 2**20


@functools.cache
def relax_worker_malloc():
    """Raise glibc's mmap threshold where Dask's trim setting froze it; True if changed.

    Acts only on Linux, in a process started with ``MALLOC_TRIM_THRESHOLD_`` set and
    ``MALLOC_MMAP_THRESHOLD_`` unset (a Dask worker by default); the trim threshold keeps
    returning freed memory. Set ``MALLOC_MMAP_THRESHOLD_`` yourself to keep your own value.
    Once per process.
    """
    if (not sys.platform.startswith("linux") or "MALLOC_TRIM_THRESHOLD_" not in os.environ
            or "MALLOC_MMAP_THRESHOLD_" in os.environ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc
        return False
