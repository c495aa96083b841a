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


def report(program: str, error: Exception) -> int:
    """What an entry point does with an exception that reached it: one line on stderr, the exit code.

    OSError with a path (a file or directory of ours that cannot be used) is a local set-up
    problem: exit 2, the path and the reason. Anything else is a bug: its text could hold a
    server's answer, so only its type is shown, unless CLAUDE_DB_DEBUG asks for the traceback."""
    if isinstance(error, ClaudeDbError):
        message, code = str(error), error.exit_code
    elif isinstance(error, OSError) and error.filename:
        message, code = ("cannot use %s (%s); check that path: its owner, its permissions and free space"
                         % (error.filename, error.strerror or type(error).__name__)), 2
    elif isinstance(error, OSError):
        message, code = "a system call failed (%s: %s)" % (type(error).__name__, one_line(error.strerror)), 1
    else:
        from .config import environment  # config imports this module
        if environment("CLAUDE_DB_DEBUG"):
            raise error
        message, code = ("internal error (%s); rerun with CLAUDE_DB_DEBUG=1 for the traceback and report it"
                         % type(error).__name__), 1
    sys.stderr.write("%s: %s\n" % (program, message))
    return code


def say(message: str) -> None:
    """Progress and prompts: on stderr (stdout is for machine output), prefixed with the program's name."""
    sys.stderr.write("%s: %s\n" % (os.path.basename(sys.argv[0] or "claude-db"), message))
    sys.stderr.flush()


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    say("warning: " + message)
