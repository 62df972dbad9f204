"""Thin ctypes wrappers over Linux syscalls Python lacks (NUMA memory policy, ...).

Lives beside hostfs at the bottom layer so the engine worker and the memory-bandwidth bench can
both use it. Functions raise OSError with the errno and a message saying what to do.
"""

from __future__ import annotations
