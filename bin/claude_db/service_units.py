"""The files that start this user's `claude-db-token serve` on demand: systemd user units on Linux, a launchd
agent on macOS. The service manager holds the loopback socket and starts the service on the first connection
(it reads the socket from LISTEN_FDS / launch_activate_socket); the service exits after its idle time and the
next connection starts it again, so there is no KeepAlive and no restart loop.

Built here so that the workstation role (which asks `claude-db-token settings --units`) and a by-hand install
write the same files. Standard library only: the role runs this on the controller.
"""

import os
import plistlib

from . import user_service
from .errors import ConfigError

KINDS = ("systemd", "launchd")

# What a user unit may take without privileges (seccomp and the no_new_privs bit, no namespaces): the service
# never needs to gain privileges, change its personality, run realtime or make set-uid files.
_HARDENING = ("NoNewPrivileges=yes", "LockPersonality=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes",
              "SystemCallArchitectures=native", "UMask=0077")
# systemd.syntax(7): a word with one of these (or nothing in it) is double-quoted; inside, \ and " are escaped.
_NEEDS_QUOTES = set(" \t\"'\\;")
# systemd 252 refuses these in the program's path however they are quoted ("Executable name contains special
# characters"); an argument may have them.
_UNRUNNABLE = set("\"'\\")


def unit_files(kind: str, config, command: str, config_path: str, uid=None) -> dict:
    """{file name: content} that run `<command> serve --config <config_path>` for the user `uid` (default:
    this process's user) on their loopback port, for the service manager `kind` (systemd or launchd)."""
    if kind not in KINDS:
        raise ConfigError("--units must be one of %s, got %r" % (", ".join(KINDS), kind))
    for option, path in (("--command", command), ("--unit-config", config_path)):
        if not path or not os.path.isabs(path) or any(ord(c) < 32 for c in path):
            raise ConfigError("%s must be an absolute path on one line (the service manager runs it without "
                              "your PATH or current directory), got %r" % (option, path))
    argv = [command, "serve", "--config", config_path]
    port = user_service.port(config, uid)
    return _systemd(argv, port) if kind == "systemd" else _launchd(argv, port)


def _systemd(argv: list, port: int) -> dict:
    name = user_service.UNIT_NAME
    if _UNRUNNABLE.intersection(argv[0]):
        raise ConfigError("systemd runs no program whose path has a quote or a backslash in it (%r); install "
                          "claude-db-token under another directory" % argv[0])
    what = "claude-db-token serve, this user's Claude Code auth proxy for Databricks"
    socket = "\n".join([
        "[Unit]",
        "Description=Socket of %s (127.0.0.1:%d)" % (what, port),
        "",
        "[Socket]",
        "ListenStream=127.0.0.1:%d" % port,
        "",
        "[Install]",
        "WantedBy=sockets.target",
        "",
    ])
    # No [Install]: the socket starts it; it exits when idle and the socket stays.
    service = "\n".join([
        "[Unit]",
        "Description=%s" % what,
        "Requires=%s.socket" % name,
        "After=%s.socket" % name,
        "",
        "[Service]",
        "ExecStart=%s" % " ".join([_systemd_word(argv[0], False)] + [_systemd_word(word) for word in argv[1:]]),
    ] + list(_HARDENING) + [""])
    return {name + ".socket": socket, name + ".service": service}


def _systemd_word(word: str, argument: bool = True) -> str:
    """One word of ExecStart, taken literally: specifiers (%) escaped, and in an argument (not in the program's
    path, where systemd expands none) variables ($) too; quoted when it has blanks or quotes."""
    word = word.replace("%", "%%")
    if argument:
        word = word.replace("$", "$$")
    if word and not _NEEDS_QUOTES.intersection(word):
        return word
    return '"%s"' % word.replace("\\", "\\\\").replace('"', '\\"')


def _launchd(argv: list, port: int) -> dict:
    label = user_service.LAUNCHD_LABEL
    agent = {
        "Label": label,
        "ProgramArguments": argv,
        # launchd listens and starts the agent on the first connection (launch_activate_socket "Listeners").
        "Sockets": {"Listeners": {"SockNodeName": "127.0.0.1", "SockServiceName": str(port),
                                  "SockType": "stream", "SockFamily": "IPv4"}},
    }
    return {label + ".plist": plistlib.dumps(agent).decode("utf-8")}
