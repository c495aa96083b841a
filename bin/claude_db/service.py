"""`claude-db-token serve`: claude-db's auth proxy as a long-running per-user service on 127.0.0.1.

The same AuthProxy, TokenKeeper and client limits as the per-launch proxy (proxy.serve is the one
serving loop); what differs is how it starts and who may use it. The listening socket comes from
systemd socket activation (fd 3, LISTEN_PID/LISTEN_FDS), from launchd (launch_activate_socket
"Listeners"), or is bound here on user_service.port(config). Clients show the per-user key
(service_key.py) instead of a per-launch session key. It exits 0 after user_service.idle_stop(config)
seconds without a client connection (socket activation or the next `--service-key` starts it again),
and on SIGTERM/SIGINT. Logs are one line each on stderr (the journal, or the log file the helper
opened) and never carry a secret.
"""

import asyncio
import errno
import hmac
import os
import signal
import socket
import sys
from typing import Callable, Optional

from . import user_service
from .errors import AuthError, ConfigError, say
from .config import environment
from .launcher import proxy_arguments
from .service_key import ensure_key, read_key, rotate_key

SD_LISTEN_FDS_START = 3  # systemd/sd-daemon.h
LAUNCHD_SOCKET = "Listeners"  # the agent's Sockets key (the workstation role's plist)


def listen_fds(environ, pid: int) -> int:
    """How many sockets systemd passed (from fd 3 on): sd_listen_fds(1). Unsets LISTEN_PID, LISTEN_FDS and
    LISTEN_FDNAMES in `environ` so that nothing we start takes them for its own."""
    owner, count = environ.pop("LISTEN_PID", ""), environ.pop("LISTEN_FDS", "")
    environ.pop("LISTEN_FDNAMES", None)
    if owner != str(pid) or not count.isdigit():
        return 0
    return int(count)


def listening_socket(config):
    """(socket, how it came): systemd's, launchd's, or one bound here on the user's port."""
    if listen_fds(os.environ, os.getpid()) >= 1:
        os.set_inheritable(SD_LISTEN_FDS_START, False)
        return _checked(socket.socket(fileno=SD_LISTEN_FDS_START)), "systemd socket activation"
    sock = _launchd_socket()
    if sock is not None:
        return _checked(sock), "launchd socket %s" % LAUNCHD_SOCKET
    port = user_service.port(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # only lets a restart reuse a TIME_WAIT port
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise AuthError("port %d on 127.0.0.1 is already taken (another claude-db-token serve of yours, or "
                            "another program); stop that, or set serve.port in %s to a free port"
                            % (port, config.path))
        raise
    sock.listen(128)
    return sock, "bound 127.0.0.1:%d" % port


def _checked(sock: socket.socket) -> socket.socket:
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        raise ConfigError("the socket the service manager passed is not a TCP socket; the unit or agent must "
                          "listen on 127.0.0.1:<port> (rerun the workstation role)")
    return sock


def _launchd_socket():
    """The agent's `Listeners` socket via launch_activate_socket(3), on macOS when launchd started us; else None.

    Best effort: written from the man page, not run in this project's tests (they run on Linux)."""
    if sys.platform != "darwin":
        return None
    import ctypes
    libc = ctypes.CDLL(None)
    activate = getattr(libc, "launch_activate_socket", None)
    if activate is None:
        return None
    fds, count = ctypes.POINTER(ctypes.c_int)(), ctypes.c_size_t(0)
    activate.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_int)),
                         ctypes.POINTER(ctypes.c_size_t)]
    if activate(LAUNCHD_SOCKET.encode(), ctypes.byref(fds), ctypes.byref(count)) != 0 or count.value < 1:
        return None  # ESRCH: not started by launchd; ENOENT: no such socket in the agent
    numbers = [fds[i] for i in range(count.value)]
    libc.free(fds)
    for extra in numbers[1:]:
        os.close(extra)
    return socket.socket(fileno=numbers[0])


class ClientKey:
    """The service's check of `Authorization: Bearer <key>`, following the key file as it is rotated.

    Each request head costs one lstat of the key file; the file is re-read only when it changed (inode,
    size or mtime), so the old key is refused from the first request after a rotation on. `changed`
    runs after a rotation (the service then drops the Databricks token it holds: a logout takes effect)."""

    def __init__(self, path: Optional[str] = None, changed: Optional[Callable[[], None]] = None):
        self.path = path or user_service.key_path()
        self.changed = changed
        self._stamp = None
        self._expected = None  # type: Optional[bytes]
        self._load()

    def accepts(self, authorization: bytes) -> bool:
        if self._file_stamp() != self._stamp:
            self._load()
            if self.changed is not None:
                self.changed()
        return self._expected is not None and hmac.compare_digest(authorization, self._expected)

    def _load(self) -> None:
        self._stamp = self._file_stamp()
        key = read_key(self.path)
        self._expected = None if key is None else b"Bearer " + key.encode("ascii")

    def _file_stamp(self):
        try:
            info = os.lstat(self.path)
        except OSError:
            return None
        return info.st_ino, info.st_size, info.st_mtime_ns


def serve(config) -> int:
    """Run the service in the foreground until it is idle for serve.idle_stop seconds or is told to stop."""
    ensure_key()
    # Everything that can fail on a broken install or config comes before the socket: a service that
    # listens and then dies would let `--service-key` hand out the key to nothing.
    from .proxy import AuthProxy, TokenKeeper, new_event_loop, serve as serve_proxy
    upstream, path, fetch, options = proxy_arguments(config, environment("CLAUDE_DB_UPSTREAM_TIMEOUT"))
    tokens = TokenKeeper(fetch)
    # A rotated key (logout) also drops the token held in memory: the next request reads the cache anew.
    key = ClientKey(changed=lambda: tokens.seed(None))
    proxy = AuthProxy(upstream, path, "", tokens, client_key=key, **options)
    sock, how = listening_socket(config)
    idle = user_service.idle_stop(config)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    done = loop.create_future()

    def stop(why: str) -> None:
        if not done.done():
            say("stopping: %s" % why)
            done.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, signal.Signals(sig).name)

    def listening(clients) -> None:
        say("serving http://127.0.0.1:%d%s for uid %d (%s); stops after %g s idle"
            % (sock.getsockname()[1], "/" + path.lstrip("/"), os.geteuid(), how, idle))

        def check_idle() -> None:
            if clients.idle_for() >= idle:
                stop("no client for %g s (serve.idle_stop)" % idle)
            else:
                loop.call_later(min(1.0, idle / 4), check_idle)

        check_idle()

    try:
        loop.run_until_complete(serve_proxy(sock, proxy, done, listening))
    finally:
        loop.close()
        sock.close()
    return 0


def rotate_key_command(only_if_present: bool = True) -> int:
    """`logout` (when a key exists) and `serve --rotate-key`: replace the client key; the old one gets 401."""
    if only_if_present and read_key() is None:
        return 0
    rotate_key()
    say("rotated the service client key %s; clients get the new one from `claude-db-token --service-key`, "
        "a running service takes it at its next request" % user_service.key_path())
    return 0


def run_command(config, args) -> int:
    """`serve [--rotate-key]`."""
    if args.rotate_key:
        return rotate_key_command(only_if_present=False)
    return serve(config)


def add_command(sub, common) -> None:
    """The `serve` subcommand's arguments and help."""
    import argparse
    serve_parser = sub.add_parser(
        "serve", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run the per-user service for plain claude and the IDEs (foreground)",
        description="Run claude-db's auth proxy as this user's service on 127.0.0.1:<port> (serve.port, default\n"
                    "20000 + uid mod 10000), in the foreground, one log line each on stderr. Plain `claude`\n"
                    "reaches it with the settings of `claude-db-token settings --managed --service`; its\n"
                    "apiKeyHelper `claude-db-token --service-key` prints the per-user client key and starts\n"
                    "the service when nothing listens. Tokens are refreshed ahead of expiry and a refused\n"
                    "request is replayed once; a dead sign-in is answered with 401 (run `claude-db-token login`).\n"
                    "It exits 0 after serve.idle_stop seconds (default 3600) without a client. Under systemd\n"
                    "(socket activation, LISTEN_FDS) or launchd (socket \"Listeners\") it uses their socket.",
        epilog="examples:\n"
               "  claude-db-token serve                 run it here (Ctrl-C stops it)\n"
               "  claude-db-token serve --rotate-key    new client key; the old one is refused from now on\n"
               "exit codes: 0 stopped (idle, SIGTERM); 1 port taken or sign-in failure; 2 config error.")
    serve_parser.add_argument("--rotate-key", action="store_true",
                              help="replace the client key and exit (a running service takes the new one)")
