"""One refresh at a time: a cross-process (and cross-thread) lock around "refresh the token".

Parallel launches and the proxy may all find the cached token expired at once;
each takes this lock and re-reads the cache before refreshing, so the IdP sees
one refresh and Databricks one exchange. flock(2) locks belong to an open file
description, so two threads of one process that each open the lock file also
exclude each other. POSIX only (macOS, Linux), like the rest of bin/.
"""

import contextlib
import fcntl
import os


@contextlib.contextmanager
def refresh_lock(path: str):
    """Hold an exclusive lock on `path` (created 0600) for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
