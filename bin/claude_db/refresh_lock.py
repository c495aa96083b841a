"""One refresh at a time: a cross-process (and cross-thread) lock around "refresh the token".

Parallel launches and the proxy may all find the cached token expired at once;
each takes this lock and re-reads the cache before refreshing, so the IdP sees
one refresh and Databricks one exchange. flock(2) locks belong to an open file
description, so two threads of one process that each open the lock file also
exclude each other. POSIX only (macOS, Linux), like the rest of bin/.
"""

import contextlib
import errno
import fcntl
import os
import time

from .errors import ConfigError, say


QUIET_WAIT = 1.0  # seconds


def _lock_within(fd: int, seconds) -> bool:
    """Take the lock within `seconds` (None: however long it takes); False if still held by another."""
    if seconds is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


@contextlib.contextmanager
def refresh_lock(path: str, waiting_for=None):
    """Hold an exclusive lock on `path` (created 0600, never through a symlink) for the duration of the block.

    waiting_for: said on stderr, with the lock's path, when another process holds the lock for longer
    than QUIET_WAIT (an ordinary refresh takes less, so parallel runs stay silent; a sign-in in another
    terminal takes more, and the user learns why nothing happens).
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as e:
        reason = "it is a symbolic link" if e.errno == errno.ELOOP else e.strerror or e
        raise ConfigError("cannot open the lock file %s (%s); remove it (rm %s)" % (path, reason, path))
    try:
        if not _lock_within(fd, QUIET_WAIT if waiting_for else None):
            say("%s (lock %s)" % (waiting_for, path))
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
