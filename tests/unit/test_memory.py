"""The malloc arena limit (issue 12, memory) is accepted by this machine's glibc."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from service.memory import limit_malloc_arenas


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt(M_ARENA_MAX) is glibc's",
)
def test_glibc_accepts_the_arena_limit() -> None:
    assert ctypes.util.find_library("c")
    assert limit_malloc_arenas() is True
