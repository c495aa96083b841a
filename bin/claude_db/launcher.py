"""`claude-db [claude arguments]`: Claude Code against the Databricks endpoint, token kept out of its reach.

Order matters (docs/design.md "The flow"): get a token while the terminal is still ours (sign-in
may need it), bind the proxy's socket before anything slow so Claude Code's
first request waits in the backlog instead of being refused, spawn Claude Code,
and only then import the proxy's HTTP stack. Every argument goes to Claude Code
unchanged; our own knobs come from the config file and CLAUDE_DB_* variables
(`claude-db --claude-db-help` lists them).
"""

import base64
import json
import os
import shlex
import signal
import socket
import sys

from .config import environment, environment_help, home_dir, load_config
from .errors import ConfigError, report

HELP_FLAG = "--claude-db-help"
HELP = """claude-db [claude arguments]: runs Claude Code against Databricks.

Every argument goes to Claude Code unchanged (so `claude-db --help` is Claude Code's help).
claude-db's own settings come from the config file (see README) and these variables:

%s
The config key `route` picks the Databricks API and what the config's model names are:
  serving-endpoints  (default) /serving-endpoints/anthropic; endpoint_name (required) and
                     models.opus|sonnet|haiku are serving endpoint names
  ai-gateway         Unity AI Gateway, /ai-gateway/anthropic; model (required) and models.opus|sonnet|haiku
                     are model service full names catalog.schema.name, e.g. system.ai.claude-sonnet-4-5
                     (endpoint_name is not used); `claude-db-token doctor` checks you may query each

Exit status: Claude Code's own; 1 sign-in or network failure; 2 usage or config error.
"""
# Credentials Claude Code and its tools must not inherit: the agent reaches Databricks only via the proxy.
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")
_SECRET_PREFIXES = ("DATABRICKS_", "ANTHROPIC_", "CLAUDE_CODE_OAUTH")
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SETTINGS_PREFIX = "claude-db-"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [HELP_FLAG]:
        sys.stdout.write(HELP % environment_help("claude-db"))
        return 0
    settings_path = None
    try:
        config = load_config()
        mode = environment("CLAUDE_DB_MODE") or config.launcher_mode
        command = _claude_command(config)
        read_timeout = environment("CLAUDE_DB_UPSTREAM_TIMEOUT")
        if mode == "proxy":
            _check_proxy_libraries()
        token = _token_while_terminal_is_ours(config)
        sock = listen_on_loopback() if mode == "proxy" else None
        session_key = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode("ascii")
        settings = claude_settings(config, mode, sock.getsockname()[1] if sock else 0, session_key, token)
        settings_path = _write_private_settings(settings)
        env = child_environment(os.environ, settings["env"])
        argv = command + ["--settings", settings_path] + args
        return _run(argv, env, config, sock, session_key, token, read_timeout)
    except KeyboardInterrupt:  # Ctrl-C during sign-in, before Claude Code started
        sys.stderr.write("\n")
        return 130
    except Exception as e:  # noqa: B902 - the same guard as claude-db-token's: one line, an exit code
        return report("claude-db", e)
    finally:
        if settings_path is not None:
            _remove_private_settings(settings_path)


def listen_on_loopback() -> socket.socket:
    """A listening socket on 127.0.0.1, random port: bound before anything slow, so nobody races it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _write_private_settings(settings: dict) -> str:
    """The settings file, 0600 in a fresh 0700 directory: it holds the session key (in env mode, the token).

    The directory's name carries our pid, so that a later launch can remove it if we were killed
    (kill -9 runs no cleanup). Plain os calls rather than tempfile/secrets: those imports alone cost
    more than the rest of start-up.
    """
    tmp = os.environ.get("TMPDIR") or "/tmp"
    _sweep_stale_settings(tmp)
    directory = os.path.join(tmp, "%s%d-%s" % (SETTINGS_PREFIX, os.getpid(), os.urandom(8).hex()))
    try:
        os.mkdir(directory, 0o700)
    except OSError as e:
        raise ConfigError("cannot create a private directory in %s (%s); fix TMPDIR (it must be an existing "
                          "directory you can write) or unset it" % (tmp, e.strerror or e))
    path = os.path.join(directory, "settings.json")
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        json.dump(settings, f)
    return path


def _sweep_stale_settings(tmp: str) -> None:
    """Remove the settings directories of our earlier launches whose claude-db is gone (killed)."""
    try:
        names = [n for n in os.listdir(tmp) if n.startswith(SETTINGS_PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(SETTINGS_PREFIX):].split("-", 1)[0]
        directory = os.path.join(tmp, name)
        try:
            info = os.lstat(directory)
        except OSError:
            continue
        if not pid.isdigit() or info.st_uid != os.getuid() or (info.st_mode & 0o170000) != 0o040000 \
                or _alive(int(pid)):
            continue
        _remove_private_settings(os.path.join(directory, "settings.json"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def _remove_private_settings(path: str) -> None:
    for remove, target in ((os.remove, path), (os.rmdir, os.path.dirname(path))):
        try:
            remove(target)
        except OSError:
            pass


def base_path(config) -> str:
    """Where the route serves the Anthropic Messages API on the workspace (and on our loopback proxy)."""
    return "/%s/anthropic" % config.route


def claude_settings(config, mode: str, port: int, session_key: str, token, token_rules=None) -> dict:
    """The `--settings` JSON: its `env` beats the process environment and any ~/.claude/settings.json.

    `token_rules`: the permission rules that keep the agent away from the token (token_deny_rules()
    for this user and this install unless given)."""
    env = {
        "ANTHROPIC_MODEL": config.main_model,
        # Every slot maps to a served endpoint (model service), or subagents ask for claude-haiku-... ids.
        "ANTHROPIC_DEFAULT_OPUS_MODEL": config.models["opus"],
        "ANTHROPIC_DEFAULT_SONNET_MODEL": config.models["sonnet"],
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": config.models["haiku"],
        "ANTHROPIC_CUSTOM_HEADERS": "x-databricks-use-coding-agent-mode: true",
    }
    if config.disable_experimental_betas:  # the one beta policy that also holds in helper and env modes
        env["CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS"] = "1"
    # The Databricks gateway rejects WebSearch; the rest keeps an innocent `cat` from putting a token in the transcript.
    rules = token_deny_rules() if token_rules is None else token_rules
    settings = {"env": env, "permissions": {"deny": ["WebSearch"] + rules}}
    if mode in ("proxy", "service"):  # service: the user's `claude-db-token serve` on `port` (user_service.port)
        env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:%d%s" % (port, base_path(config))
    else:
        env["ANTHROPIC_BASE_URL"] = config.databricks_host + base_path(config)
    if mode == "proxy":
        env["ANTHROPIC_AUTH_TOKEN"] = session_key
    if mode in ("helper", "service"):
        what = "--raw" if mode == "helper" else "--service-key"  # the token, or the service's client key
        helper = (sys.executable, _token_tool(), what, "--config", os.path.abspath(config.path))
        settings["apiKeyHelper"] = " ".join(shlex.quote(a) for a in helper)
    if mode == "env":
        env["ANTHROPIC_AUTH_TOKEN"] = token.access_token  # the seed's way; documented as leaking and expiring
    return settings


def token_deny_rules(directories=None, tools=None) -> list:
    """Claude Code permission rules: no reading the state directory, no running claude-db-token.

    `Read(//abs/**)` is an absolute path (a single `/` would be relative to the settings file; `~/`
    is the home of whoever runs Claude Code) and also covers Bash commands such as `cat` that name a
    file there; `Bash(cmd:*)` matches cmd with any arguments. Deny beats allow, so `--allowedTools
    Bash` does not undo them. Not a sandbox: a determined agent still can (the token is the user's
    own); an accidental read cannot. Defaults: this user's state directory and this install's tool.
    """
    if directories is None:
        directories = ["/" + d for d in sorted({os.path.abspath(home_dir()), os.path.realpath(home_dir())})]
    tools = {"claude-db-token", _token_tool() if tools is None else tools}
    return (["Read(%s/**)" % d for d in sorted(directories)] +
            ["Bash(%s:*)" % t for t in sorted(tools)])


def _token_tool() -> str:
    """bin/claude-db-token beside this package."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "claude-db-token")


def child_environment(parent, settings_env: dict) -> dict:
    """The parent's environment without credentials, plus the settings' env (which Claude Code applies anyway).

    NO_PROXY and no_proxy get 127.0.0.1 and localhost added to the user's own entries, so that Claude Code
    reaches the loopback proxy directly even when HTTPS_PROXY/HTTP_PROXY name an egress proxy.
    """
    from .network import loopback_no_proxy
    env = {k: v for k, v in parent.items() if not _is_credential(k) and k.upper() != "NO_PROXY"}
    env["NO_PROXY"] = env["no_proxy"] = loopback_no_proxy(parent)
    env.update(settings_env)
    return env


def _is_credential(name: str) -> bool:
    upper = name.upper()
    return upper.startswith(_SECRET_PREFIXES) and any(w in upper for w in _SECRET_WORDS)


def _claude_command(config) -> list:
    text = environment("CLAUDE_DB_CLAUDE_COMMAND") or config.claude_command
    try:
        command = shlex.split(text)
    except ValueError as e:
        command = []
        reason = str(e)
    else:
        reason = "it is empty"
    if not command:
        raise ConfigError("launcher.claude_command / CLAUDE_DB_CLAUDE_COMMAND %r is not a command (%s); set it to "
                          "the Claude Code executable, e.g. claude" % (text, reason))
    return command


def _check_proxy_libraries() -> None:
    """Fail before Claude Code starts, not after: the proxy's imports happen only once it runs."""
    from importlib.util import find_spec
    if find_spec("httptools") is None:
        raise ConfigError("the claude-db proxy needs the Python package httptools: pip install -r "
                          "requirements-workstation.txt (or set launcher.mode to helper)")


def _token_while_terminal_is_ours(config):
    """A Databricks token now, while a sign-in may still use the terminal (Claude Code takes it next)."""
    from .credentials import get_token
    return get_token(config, interactive=True)


def _run(argv: list, env: dict, config, sock, session_key: str, token, read_timeout: float) -> int:
    """Spawn Claude Code, serve the proxy beside it, forward signals; Claude Code's exit code."""
    child = _Child()
    for sig in _SIGNALS:
        signal.signal(sig, child.forward)
    try:
        child.pid = spawn(argv, env)
    except OSError as e:
        raise ConfigError("cannot run Claude Code (%s): %s; install it (npm i -g @anthropic-ai/claude-code) or set "
                          "launcher.claude_command / CLAUDE_DB_CLAUDE_COMMAND" % (argv[0], e.strerror or e))
    child.forward_pending()
    server = None
    if sock is not None:
        server = _start_proxy(config, sock, session_key, token, read_timeout)
    try:
        status = os.waitpid(child.pid, 0)[1]  # retried after each forwarded signal (PEP 475)
        child.pid = None
    finally:
        if server is not None:
            server.stop()
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def spawn(argv: list, env: dict) -> int:
    """Start Claude Code; its pid. posix_spawn or fork+exec, not subprocess (the import alone would add a
    tenth to start-up).

    On Linux the child asks the kernel for SIGTERM when claude-db dies (PR_SET_PDEATHSIG, set between
    fork and exec), so a `kill -9` of claude-db leaves no Claude Code running without its proxy. That
    needs no helper process; macOS has no such call and keeps posix_spawn (a killed claude-db there
    leaves Claude Code running until it exits; its settings file is swept by the next launch).
    """
    if not sys.platform.startswith("linux"):
        return os.posix_spawnp(argv[0], argv, env)
    import ctypes
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()
    errors_r, errors_w = os.pipe()  # close-on-exec: EOF tells the parent that exec succeeded
    pid = os.fork()
    if pid == 0:  # the child: only async-signal-safe work until exec
        code = 127
        try:
            os.close(errors_r)
            for sig in _SIGNALS:  # our forwarding handler would swallow a SIGTERM that comes before exec
                signal.signal(sig, signal.SIG_DFL)
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() == parent:  # else claude-db died before prctl: do not start at all
                os.execvpe(argv[0], argv, env)
            code = 1
        except OSError as e:
            os.write(errors_w, str(e.errno).encode())
        finally:
            os._exit(code)
    os.close(errors_w)
    with os.fdopen(errors_r, "rb") as f:
        failed = f.read()
    if failed:
        os.waitpid(pid, 0)
        raise OSError(int(failed), os.strerror(int(failed)))
    return pid


def _start_proxy(config, sock, session_key: str, token, read_timeout: float):
    """Import the HTTP stack only now, while Claude Code starts up; requests wait in the socket's backlog."""
    from .proxy import ProxyThread
    upstream, path, fetch, options = proxy_arguments(config, read_timeout)
    server = ProxyThread(sock, upstream, path, session_key, fetch, token, **options)
    server.start()
    return server


def proxy_arguments(config, read_timeout: float):
    """(upstream, base path, token fetcher, options) of the auth proxy for `config`: the same for claude-db's
    per-launch proxy and for `claude-db-token serve`. Tokens come without the user: a dead sign-in is an
    error the proxy answers with 401 (run `claude-db-token login`), never a prompt."""
    from .credentials import get_token

    def fetch(rejected):
        return get_token(config, interactive=False, rejected=rejected)

    return (config.databricks_host, base_path(config), fetch,
            {"read_timeout": read_timeout, "config": config, "allowed_betas": config.allowed_betas,
             "workspace_id": config.workspace_id})


class _Child:
    """Claude Code's process, and the signals it should get from us."""

    def __init__(self):
        self.pid = None
        self._pending = []

    def forward(self, signum, frame) -> None:
        if self.pid is None:
            self._pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except OSError:
            pass

    def forward_pending(self) -> None:
        for signum in self._pending:
            self.forward(signum, None)
        self._pending = []
