"""Fewer malloc arenas in the server's processes: less memory kept per thread.

glibc gives each thread that allocates its own malloc arena, up to eight per
core. A worker's threads each read MiB-sized body chunks; an arena keeps what
its thread freed for that thread's next request, so a worker's resident set
grows with the threads that ever handled a big part (bench/README.md: about
3.6 MiB per in-flight part, kept). Two arenas shared by all threads reuse each
other's freed chunks; the threads rarely allocate at once (the copying is in
the kernel and in hashlib, outside malloc), so they do not queue on them.
"""

from __future__ import annotations

import ctypes

#: glibc's malloc.h ``M_ARENA_MAX``.
_M_ARENA_MAX = -8
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """``mallopt(M_ARENA_MAX, arenas)``; False where there is no glibc.

    Call it before the process starts its threads (``wsgi.py`` does, in each
    gunicorn worker, before the app is built). ``MALLOC_ARENA_MAX`` in the
    environment does the same for any process.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
