"""Errors a user can act on: a one-line message and the exit code the entry point returns.

Messages never carry a secret (token, JWT, refresh token); entry points print
`<program>: <message>` on stderr and exit with `.exit_code`, never a traceback.
"""

import os
import sys


class ClaudeDbError(Exception):
    """Base of every error shown to the user."""

    exit_code = 1


class ConfigError(ClaudeDbError):
    """Bad usage or configuration (exit 2): the message names the key and the file."""

    exit_code = 2


class AuthError(ClaudeDbError):
    """Sign-in, token exchange or network failure (exit 1)."""

    exit_code = 1


def one_line(text, limit: int = 300) -> str:
    """A server's or library's text squeezed onto one line of bounded length, for a message."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def say(message: str) -> None:
    """Progress and prompts: on stderr (stdout is for machine output), prefixed with the program's name."""
    sys.stderr.write("%s: %s\n" % (os.path.basename(sys.argv[0] or "claude-db"), message))
    sys.stderr.flush()


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    say("warning: " + message)
