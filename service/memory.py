"""Keep a long-running process's resident memory near what it uses.

glibc gives each thread that allocates while another holds the main arena an arena of its own,
up to 8 per core, and memory freed into an arena stays mapped there. The API answers from a pool
of up to 40 threads; after a burst of concurrent requests each arena holds its high-water mark,
so resident memory grew to ~500 MB after the side-by-side benchmark although the live heap was a
fraction of that. Two arenas keep allocation fast for our few busy threads (the GIL serialises
Python allocation anyway) and return to the same pools after a burst.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's <malloc.h> parameter number
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """True when glibc accepted the limit; False elsewhere (musl, macOS: nothing to tune)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    accepted = bool(mallopt(M_ARENA_MAX, arenas))
    if not accepted:
        log.warning("mallopt(M_ARENA_MAX, %d) refused", arenas)
    return accepted
