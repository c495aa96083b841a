"""The client side of the per-user service: `claude-db-token --service-key`, and what `status`/`doctor` say of it.

`--service-key` is Claude Code's apiKeyHelper in service mode. It makes the key when there is none,
starts `claude-db-token serve` detached when nothing accepts on the user's port, and, before it
prints the key, checks that the listener on that port belongs to this user: on a shared machine
another user could bind our port first (port squatting) and collect whatever key we send. Linux
shows each socket's owner in /proc/net/tcp{,6}; elsewhere the check is skipped (docs/design.md).
It never prints or fetches a Databricks token.
"""

from __future__ import annotations

import os
import sys
import time

# The C module under `socket`: the apiKeyHelper path needs only connect() and inet_pton(), and the
# socket module's own imports (selectors, array, enum classes) cost more than the rest of this file.
import _socket as socket

from . import user_service
from .config import state_dir
from .errors import AuthError
from .service_key import ensure_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

START_WAIT = 5.0  # seconds `--service-key` waits for a service it started to accept
LOG_FILE = "service.log"
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
_TABLES = {"/proc/net/tcp": socket.AF_INET, "/proc/net/tcp6": socket.AF_INET6}
# The local addresses a connect to 127.0.0.1 can land on: the loopback address itself or a wildcard.
_REACHING = {socket.AF_INET: ("127.0.0.1", "0.0.0.0"), socket.AF_INET6: ("::ffff:127.0.0.1", "::", "::ffff:0.0.0.0")}


def print_service_key(config) -> int:
    """The apiKeyHelper answer: the key on stdout, once the service on our port is running and ours."""
    key = ensure_key()
    port = user_service.port(config)
    if not accepting(port):
        _start(config, port)
    check_listener(port, config)
    sys.stdout.write(key + "\n")
    return 0


def accepting(port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on 127.0.0.1:port (a literal address: no resolver, no idna)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
    except OSError:
        return False
    finally:
        s.close()
    return True


def check_listener(port: int, config) -> None:
    """AuthError unless the listener on 127.0.0.1:port is this user's (Linux); no check elsewhere."""
    owners = listener_owners(port)
    if owners is None:
        return
    others = sorted(owners - {os.geteuid()})
    if others or not owners:
        who = "uid %d" % others[0] if others else "a socket this system does not show (another network namespace?)"
        raise AuthError("127.0.0.1:%d is held by %s, not by your claude-db-token serve; no key given out. Fix: "
                        "set serve.port in %s to a free port, or stop that program" % (port, who, config.path))


def listener_owners(port: int, tables=None) -> Optional[set]:
    """The uids of the listening sockets a connect to 127.0.0.1:port can reach; None where /proc/net is absent."""
    owners, seen = set(), False
    for path, family in (tables or _TABLES).items():
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        seen = True
        owners.update(listening_uids(text, family, port))
    return owners if seen else None


def listening_uids(table: str, family: int, port: int) -> set:
    """From the text of /proc/net/tcp (AF_INET) or tcp6: uids of LISTEN rows on `port` at an address that
    takes connections to 127.0.0.1. Addresses there are the kernel's 32-bit words in host byte order, in hex."""
    wanted = {"%s:%04X" % (_proc_address(family, address), port) for address in _REACHING[family]}
    uids = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 7 and fields[3] == _LISTEN and fields[1].upper() in wanted and fields[7].isdigit():
            uids.add(int(fields[7]))
    return uids


def _proc_address(family: int, address: str) -> str:
    packed = socket.inet_pton(family, address)
    return "".join("%08X" % int.from_bytes(packed[i:i + 4], sys.byteorder) for i in range(0, len(packed), 4))


def _start(config, port: int) -> None:
    """Start `claude-db-token serve` in a session of its own (stdio to a 0600 log) and wait until it accepts."""
    import subprocess
    from .launcher import _token_tool
    log = os.path.join(state_dir(), LOG_FILE)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        child = subprocess.Popen([sys.executable, _token_tool(), "serve", "--config", os.path.abspath(config.path)],
                                 stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True)
    finally:
        os.close(fd)
    deadline = time.monotonic() + START_WAIT
    while not accepting(port, 0.2):
        code = child.poll()
        if code is not None or time.monotonic() > deadline:
            what = "exited with %d" % code if code is not None else "is not accepting after %g s" % START_WAIT
            raise AuthError("claude-db-token serve on 127.0.0.1:%d %s; see %s" % (port, what, log))
        time.sleep(0.05)


def service_status(config) -> dict:
    """For `status --json` and `doctor`: the port, whether it accepts, and whether the listener is ours."""
    port = user_service.port(config)
    running = accepting(port)
    owners = listener_owners(port) if running else None
    return {"port": port, "running": running,
            "listener_uids": sorted(owners) if owners is not None else None,
            "ours": None if owners is None else owners == {os.geteuid()}}


def describe(status: dict) -> str:
    """One line for `status`."""
    where = "127.0.0.1:%d" % status["port"]
    if not status["running"]:
        return "not running (starts on demand on %s)" % where
    if status["ours"] is None:
        return "running on %s (owner not checked on this system)" % where
    if status["ours"]:
        return "running on %s (yours)" % where
    return "%s is held by uid %s, not by you: set serve.port" % (
        where, ", ".join(map(str, status["listener_uids"])) or "?")


def check_service(config) -> str:
    """doctor's line: running and ours, or not running (fine: it starts on demand); AuthError for a squatter."""
    status = service_status(config)
    if status["running"]:
        check_listener(status["port"], config)
    return describe(status) + "; key %s" % user_service.key_path()
