"""Thin ctypes wrappers over Linux syscalls Python lacks.

`numa`: set_mempolicy / get_mempolicy (memory policy of the calling thread/process).
`pages`: mincore / move_pages (where a file's cached pages sit).
`process`: prctl(PR_SET_PDEATHSIG) (a child that dies with its parent).
Lives beside hostfs at the bottom layer so the engine worker, the memory bench and the checks can
all use it. Functions raise OSError with the errno and a message saying what to do.
"""
