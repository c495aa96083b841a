"""The workstation config file: where it is found, what it may contain, one clear error when it is wrong.

Format (the seed's keys stay valid, every new key is optional), see docs/design.md "Contracts":
databricks_host, endpoint_name, model, route, models{opus,sonnet,haiku},
azure_ad{tenant_id, client_id, scopes, authority}, federation{service_principal_client_id},
token_cache{method, fallback}, launcher{mode, claude_command}, network{proxy, ca_bundle},
workspace_id, betas{allow, disable_experimental}, serve{port, idle_stop}. JSON null means "not set".

This module is on the cached-token path, so it imports only json and os (no
typing, urllib, dataclasses: each costs about as much as starting Python).
"""

from __future__ import annotations

import json
import os

from . import urls
from .errors import ConfigError
from .network import checked_proxy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

HOME_DIR_NAME = ".databricks-claude-gateway"
# An all-users install (the workstation role's workstation_scope: system) puts its config here; read last.
SYSTEM_CONFIG = "/etc/databricks-claude-gateway/config.json"
MICROSOFT_LOGIN = "https://login.microsoftonline.com/"
# MSAL adds these itself and raises when a caller passes them (docs/design.md "Sign-in behaviours").
RESERVED_SCOPES = ("openid", "profile", "offline_access")
DEFAULT_SCOPES = ("email",)  # without one non-reserved scope the IdP sends no refresh token
SLOTS = ("opus", "sonnet", "haiku")
# Claude Code strips this suffix from a model name before sending it (and asks for the 1M context instead).
CONTEXT_1M_SUFFIX = "[1m]"
# The `anthropic-beta` policy per route, when betas{} does not set it (docs/design.md "Beta headers").
# /serving-endpoints: Databricks' first Claude Code configs set CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS=1,
# and these two are what Claude Code then still sends; anything else is filtered out by the proxy.
# /ai-gateway: ucode dropped that flag (the 1-hour cache needs its beta); every value passes ("*").
ROUTE_BETAS = {
    "serving-endpoints": {"allow": ("claude-code-20250219", "interleaved-thinking-2025-05-14"),
                          "disable_experimental": True},
    "ai-gateway": {"allow": ("*",), "disable_experimental": False},
}


class _Key:
    """One allowed key: its JSON type, whether it is required, its default and allowed values."""

    def __init__(self, kind, required=False, default=None, choices=None, children=None):
        self.kind = kind  # "string", "list of strings" or "object"
        self.required = required
        self.default = default
        self.choices = choices
        self.children = children


SCHEMA = {
    "databricks_host": _Key("string", required=True),
    "endpoint_name": _Key("string"),  # required on route serving-endpoints (_main_model)
    "model": _Key("string"),
    "route": _Key("string", default="serving-endpoints", choices=("serving-endpoints", "ai-gateway")),
    "models": _Key("object", children={slot: _Key("string") for slot in SLOTS}),
    "azure_ad": _Key("object", required=True, children={
        "tenant_id": _Key("string", required=True),
        "client_id": _Key("string", required=True),
        "scopes": _Key("list of strings", default=list(DEFAULT_SCOPES)),
        "authority": _Key("string"),
    }),
    "federation": _Key("object", children={"service_principal_client_id": _Key("string")}),
    "token_cache": _Key("object", children={
        "method": _Key("string", default="keyring", choices=("keyring", "file")),
        "fallback": _Key("string", default="file", choices=("file", "none")),
    }),
    "launcher": _Key("object", children={
        "mode": _Key("string", default="proxy", choices=("proxy", "helper", "env")),
        "claude_command": _Key("string", default="claude"),
    }),
    # The egress proxy and the CA bundle of a TLS-inspecting network; network.py says how they combine with
    # HTTPS_PROXY/NO_PROXY and REQUESTS_CA_BUNDLE.
    "network": _Key("object", children={"proxy": _Key("string"), "ca_bundle": _Key("string")}),
    "workspace_id": _Key("string"),
    "betas": _Key("object", children={"allow": _Key("list of strings"), "disable_experimental": _Key("boolean")}),
    # `claude-db-token serve`, the per-user service; user_service.py owns what its defaults mean.
    "serve": _Key("object", children={"port": _Key("port"), "idle_stop": _Key("seconds")}),
}


class _Variable:
    """One environment variable we read: what it means and its default (for --help), the programs it matters
    to, and how its text is checked. Each reader calls environment(name), so one parse serves them all."""

    __slots__ = ("name", "meaning", "default", "programs", "kind", "choices")

    def __init__(self, name, meaning, default=None, programs=("claude-db", "claude-db-token"), kind="text",
                 choices=None):
        self.name = name
        self.meaning = meaning  # --help indents the lines after the first under it
        self.default = default  # the value when unset or empty (--help shows it); None: `meaning` says what then
        self.programs = programs
        # "text", "choice" (one of `choices`), "seconds" (> 0), "whole seconds" (>= 1), "flag" (set = on),
        # or "standard": one the libraries read themselves (webbrowser, requests), listed here for --help.
        self.kind = kind
        self.choices = choices


# Every variable claude-db and claude-db-token read, declared once: their --help is generated from it.
ENVIRONMENT = {v.name: v for v in (
    _Variable("CLAUDE_DB_CONFIG", "config file (default: ./config.json, then ~/%s/config.json,\n"
                                  "then the all-users config)" % HOME_DIR_NAME),
    _Variable("CLAUDE_DB_HOME", "state directory (default ~/%s)" % HOME_DIR_NAME),
    _Variable("CLAUDE_DB_SYSTEM_CONFIG", "the all-users config, read last\n(the workstation role's wrappers set it)",
              default=SYSTEM_CONFIG),
    _Variable("CLAUDE_DB_LOGIN_TIMEOUT", "seconds to finish a sign-in", default=300, kind="whole seconds"),
    _Variable("CLAUDE_DB_MODE", " | ".join(SCHEMA["launcher"].children["mode"].choices) + ", overrides launcher.mode:\n"
                                "  proxy   (default) a loopback proxy adds a fresh Databricks token to each request;\n"
                                "          Claude Code and its tools only see a per-launch session key\n"
                                "  helper  Claude Code's apiKeyHelper runs `claude-db-token --raw`; the first prompt\n"
                                "          after the token expired fails with 403 (Claude Code does not retry 403)\n"
                                "  env     the token in ANTHROPIC_AUTH_TOKEN; stops working when it expires (~1 h)\n"
                                "          and every command Claude Code runs can read it",
              programs=("claude-db",), kind="choice", choices=SCHEMA["launcher"].children["mode"].choices),
    _Variable("CLAUDE_DB_CLAUDE_COMMAND", "the Claude Code command, overrides launcher.claude_command (default: %s)"
              % SCHEMA["launcher"].children["claude_command"].default, programs=("claude-db",)),
    _Variable("CLAUDE_DB_UPSTREAM_TIMEOUT", "seconds the proxy waits for the next bytes from Databricks",
              default=600.0, programs=("claude-db", "claude-db-token"), kind="seconds"),
    _Variable("CLAUDE_DB_DEBUG", "set: an internal error prints its traceback (for a bug report)", kind="flag"),
    _Variable("BROWSER", "the browser program for a sign-in", kind="standard"),
    _Variable("HTTPS_PROXY / HTTP_PROXY / NO_PROXY", "egress proxy; config network.proxy wins", kind="standard"),
    _Variable("REQUESTS_CA_BUNDLE", "CA bundle when TLS is inspected; config network.ca_bundle wins",
              kind="standard"),
)}


def environment(name: str, env=None):
    """The value of the declared variable `name` in `env` (default os.environ), checked as declared; its
    default when unset or empty. ConfigError (exit 2) names the variable and what it must be."""
    variable = ENVIRONMENT[name]
    text = (os.environ if env is None else env).get(name) or ""
    if not text:
        return False if variable.kind == "flag" else variable.default
    if variable.kind == "flag":
        return True
    if variable.kind == "choice" and text not in variable.choices:
        raise ConfigError("%s must be one of %s, got %r; fix or unset it" % (name, ", ".join(variable.choices), text))
    if variable.kind == "whole seconds":
        if not text.isdigit() or int(text) < 1:
            raise ConfigError("%s must be a whole number of seconds, got %r; fix or unset it" % (name, text))
        return int(text)
    if variable.kind == "seconds":
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not 0 < value < 1e9:  # also NaN and infinity, which would never time out
            raise ConfigError("%s must be a number of seconds > 0, got %r; fix or unset it" % (name, text))
        return value
    return text


def environment_help(program: str) -> str:
    """The variables `program` reads, one entry each, for its --help."""
    rows = []
    for variable in ENVIRONMENT.values():
        if program in variable.programs:
            first, *rest = variable.meaning.split("\n")
            if variable.default is not None and variable.kind != "flag":
                first += " (default %s)" % (variable.default if variable.kind == "text" else "%g" % variable.default)
            name = "  %-26s  " % variable.name
            rows.append(name + first if len(name) == 30 else name.rstrip() + "\n" + " " * 30 + first)
            rows.extend(" " * 30 + line for line in rest)
    return "\n".join(rows) + "\n"


class Config:
    """A validated config file; immutable once loaded."""

    __slots__ = ("path", "databricks_host", "endpoint_name", "model", "route", "main_model", "models", "client_id",
                 "scopes", "authority", "service_principal_client_id", "token_cache_method", "token_cache_fallback",
                 "launcher_mode", "claude_command", "network_proxy", "network_ca_bundle",
                 "workspace_id", "allowed_betas", "disable_experimental_betas", "service_port", "service_idle_stop")

    def __init__(self, path: str, raw: dict):
        ad = raw["azure_ad"]
        main_model = _main_model(raw, path)
        fields = {
            "path": path,
            "databricks_host": _workspace_url(raw["databricks_host"], path),
            "endpoint_name": raw["endpoint_name"],
            "model": raw["model"],
            "route": raw["route"],
            "main_model": main_model,
            "models": {slot: raw["models"][slot] or main_model for slot in SLOTS},
            "client_id": ad["client_id"],
            "scopes": msal_scopes(ad["scopes"]),
            "authority": _authority(ad, path),
            "service_principal_client_id": raw["federation"]["service_principal_client_id"],
            "token_cache_method": raw["token_cache"]["method"],
            "token_cache_fallback": raw["token_cache"]["fallback"],
            "launcher_mode": raw["launcher"]["mode"],
            "claude_command": raw["launcher"]["claude_command"],
            "network_proxy": checked_proxy(raw["network"]["proxy"], "network.proxy in %s" % path)
            if raw["network"]["proxy"] else None,
            "network_ca_bundle": raw["network"]["ca_bundle"] or None,
            "workspace_id": raw["workspace_id"],
            "service_port": raw["serve"]["port"],
            "service_idle_stop": raw["serve"]["idle_stop"],
        }
        fields.update(_beta_policy(raw["route"], raw["betas"]))
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("Config is read-only")

    @property
    def identity(self) -> str:
        """What a cached secret belongs to: the IdP app and the workspace it is exchanged at."""
        return "\n".join((self.authority, self.client_id, self.databricks_host,
                          self.service_principal_client_id or ""))

    def __repr__(self):
        return "Config(%r)" % self.path


def home_dir() -> str:
    """~/.databricks-claude-gateway, or $CLAUDE_DB_HOME (tests); not created here."""
    return environment("CLAUDE_DB_HOME") or os.path.join(os.path.expanduser("~"), HOME_DIR_NAME)


def state_dir() -> str:
    """home_dir(), created 0700 (and tightened to 0700 if it already exists); see check_state_dir."""
    path = home_dir()
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except FileExistsError:
        pass  # not a directory: check_state_dir says what it is
    except OSError as e:
        raise ConfigError("cannot create the state directory %s (%s); make its parent writable or set "
                          "CLAUDE_DB_HOME to a directory you can write" % (path, e.strerror or e))
    if check_state_dir(path).st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def check_state_dir(path: str):
    """The lstat of the state directory, or None when it does not exist yet; ConfigError (exit 2) unless it
    is a real directory that belongs to this user. Secrets are never kept through a symlink, and a
    directory of someone else's (root's, after `sudo claude-db-token login`) is neither used nor chmod-ed."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError("cannot use the state directory %s (%s); fix its permissions or set CLAUDE_DB_HOME to "
                          "a directory of yours" % (path, e.strerror or e))
    if (info.st_mode & 0o170000) == 0o120000:  # stat.S_ISLNK, without the import
        raise ConfigError("the state directory %s is a symbolic link; secrets are not kept through one: replace "
                          "it with a directory (rm %s) or set CLAUDE_DB_HOME" % (path, path))
    if (info.st_mode & 0o170000) != 0o040000:
        raise ConfigError("the state directory %s is not a directory; remove or rename it, or set CLAUDE_DB_HOME "
                          "to a directory" % path)
    if info.st_uid != os.geteuid():
        import pwd
        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = "uid %d" % info.st_uid
        raise ConfigError("the state directory %s belongs to %s, not to you (made by `sudo claude-db-token "
                          "login`?); fix: sudo chown -R %d %s" % (path, owner, os.geteuid(), path))
    return info


def find_config(path: Optional[str] = None) -> str:
    """The config file to use: `path`, $CLAUDE_DB_CONFIG, ./config.json, ~/.databricks-claude-gateway/config.json,
    then the all-users one (system_config())."""
    explicit = path or environment("CLAUDE_DB_CONFIG")
    if explicit:
        problem = _not_a_file(explicit)
        if problem:
            source = "--config" if path else "$CLAUDE_DB_CONFIG"
            raise ConfigError("config file %s (from %s) %s; fix the path or create the file"
                              % (explicit, source, problem))
        return explicit
    candidates = [os.path.abspath("config.json"), os.path.join(home_dir(), "config.json"), system_config()]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise ConfigError("no config file found (looked at --config, $CLAUDE_DB_CONFIG, %s); create one "
                      "(see README) or pass --config PATH" % ", ".join(candidates))


def system_config() -> str:
    """The all-users config: SYSTEM_CONFIG, or $CLAUDE_DB_SYSTEM_CONFIG (the role's wrappers set it when elsewhere)."""
    return environment("CLAUDE_DB_SYSTEM_CONFIG")


def _not_a_file(path: str) -> str:
    """Why `path` cannot be read as a config file ("" when it can): so a directory or a FIFO (which
    would block the read forever) is named for what it is, not reported as missing."""
    try:
        mode = os.stat(path).st_mode & 0o170000
    except FileNotFoundError:
        return "does not exist"
    except OSError as e:
        return "cannot be read (%s)" % (e.strerror or e)
    if mode == 0o040000:
        return "is a directory"
    return "" if mode == 0o100000 else "is not a regular file (a FIFO or device?)"


def load_config(path: Optional[str] = None) -> Config:
    """Find, read and validate the config; ConfigError (exit 2) names the key and the file."""
    path = find_config(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError("cannot read config file %s: %s" % (path, e.strerror or e))
    return parse_config(data, path)


def parse_config(data: bytes, path: str) -> Config:
    """Validate a config file's bytes; `path` names it in the error (also for one read from stdin)."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("config file %s is not UTF-8 text; save it as UTF-8 JSON" % path)
    except RecursionError:
        raise ConfigError("config file %s is nested too deeply to be a config; fix it (see README)" % path)
    except ValueError as e:  # json.JSONDecodeError
        raise ConfigError("config file %s is not valid JSON (line %s, column %s: %s); fix the syntax"
                          % (path, getattr(e, "lineno", "?"), getattr(e, "colno", "?"), getattr(e, "msg", e)))
    return Config(path, _validated(raw, SCHEMA, "", path))


def msal_scopes(scopes) -> tuple:
    """The configured scopes minus the ones MSAL adds itself; never empty (no refresh token without one)."""
    kept = tuple(s for s in scopes if s.lower() not in RESERVED_SCOPES)
    return kept or DEFAULT_SCOPES


def _validated(raw, schema: dict, prefix: str, path: str) -> dict:
    """A copy of `raw` with defaults filled in; ConfigError for unknown, missing or mistyped keys."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise ConfigError("%s in config file %s must be a JSON object, got %s" % (where, path, _json_type(raw)))
    for key in raw:
        if key not in schema:
            raise ConfigError("unknown key %s%s in config file %s; remove it or fix its spelling (known: %s)"
                              % (prefix, key, path, ", ".join(sorted(schema))))
    out = {}
    for key, spec in schema.items():
        name = prefix + key
        value = raw.get(key)
        if spec.required:
            _require(name, value, path)
        if value is None and spec.kind != "object":
            out[key] = spec.default
            continue
        if spec.kind == "object":
            out[key] = _validated({} if value is None else value, spec.children, name + ".", path)
            continue
        if not _has_kind(value, spec.kind):
            number = spec.kind in _KIND_TEXT and _json_type(value) == "a number"
            raise ConfigError("key %s in config file %s must be %s, got %s" % (
                name, path, _KIND_TEXT.get(spec.kind, "a " + spec.kind), value if number else _json_type(value)))
        if spec.choices and value not in spec.choices:
            raise ConfigError("key %s in config file %s must be one of %s, got %s"
                              % (name, path, ", ".join(spec.choices), json.dumps(value)))
        out[key] = value
    return out


def _beta_policy(route: str, betas: dict) -> dict:
    """allowed_betas (None = every value passes) and disable_experimental_betas for the route."""
    default = ROUTE_BETAS[route]
    allow = betas["allow"] if betas["allow"] is not None else default["allow"]
    disable = betas["disable_experimental"]
    return {"allowed_betas": None if "*" in allow else frozenset(allow),
            "disable_experimental_betas": default["disable_experimental"] if disable is None else disable}


_KIND_TEXT = {"port": "a port number from 1024 to 65535", "seconds": "a number of seconds > 0"}


def _has_kind(value, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "port":
        return isinstance(value, int) and not isinstance(value, bool) and 1024 <= value <= 65535
    if kind == "seconds":  # also refuses NaN and infinity (JSON has neither, Python's json reads both)
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e9
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _workspace_url(url: str, path: str) -> str:
    """databricks_host without a trailing slash; https, or http only to this machine (urls.py says why)."""
    example = "e.g. https://adb-123.4.azuredatabricks.net"
    try:
        parts = urls.parse(url.strip())
        scheme, host, rest = parts[0], parts[1], parts[3]
    except urls.UnsafeUrl as e:
        raise ConfigError("key databricks_host in config file %s must be the workspace URL (%s), got %s: %s"
                          % (path, example, json.dumps(url), e))
    if scheme not in ("https", "http"):
        raise ConfigError("key databricks_host in config file %s must be the workspace URL (%s), got %s"
                          % (path, example, json.dumps(url)))
    if not urls.cleartext_allowed(scheme, host):
        raise ConfigError("key databricks_host in config file %s must use https:// (plain http is only allowed "
                          "for 127.0.0.1/localhost)" % path)
    if rest.strip("/"):
        raise ConfigError("key databricks_host in config file %s must be the workspace URL without a path or "
                          "query (%s), got %s" % (path, example, json.dumps(url)))
    return url.strip().rstrip("/")


def _authority(ad: dict, path: str) -> str:
    """azure_ad.authority, or Entra's authority for the tenant; always https (MSAL refuses anything else)."""
    authority = (ad["authority"] or MICROSOFT_LOGIN + ad["tenant_id"].strip()).strip().rstrip("/")
    try:
        parts = urls.parse(authority)
        scheme, rest = parts[0], parts[3]
        reason = "" if "?" not in rest and "#" not in rest else "it has a query or fragment"
    except urls.UnsafeUrl as e:
        scheme, rest, reason = "", "", str(e)
    if scheme != "https" or not rest.strip("/") or reason:
        got = json.dumps(authority) + (": " + reason if reason else "")
        raise ConfigError("key azure_ad.authority in config file %s must be an https URL with a path, "
                          "e.g. %s<tenant_id>; got %s" % (path, MICROSOFT_LOGIN, got))
    return authority


def _require(name: str, value, path: str) -> None:
    """ConfigError unless a required key has a value; whitespace alone does not count."""
    if value is None or isinstance(value, str) and not value.strip():
        raise ConfigError("missing required key %s in config file %s; add it%s"
                          % (name, path, " (it is blank)" if value is not None else ""))


def _main_model(raw: dict, path: str) -> str:
    """The `model` of every request: the serving endpoint's name, or on ai-gateway the model service's full name.

    The two kinds of name cannot be swapped: /ai-gateway routes by model service and the legacy
    /serving-endpoints route by endpoint (docs/design.md "Contracts", `route`), so each route refuses the other's.
    """
    gateway = raw["route"] == "ai-gateway"
    main_key = "model" if gateway else "endpoint_name"
    named = [(main_key, raw[main_key])] + [("models." + slot, raw["models"][slot]) for slot in SLOTS]
    if gateway:
        if not raw["model"]:
            raise ConfigError("route ai-gateway in config file %s needs key model: the model service's full name "
                              "catalog.schema.name (e.g. system.ai.claude-sonnet-4-5); add it" % path)
        _require("model", raw["model"], path)
        for key, name in named:
            if name is not None and not is_model_service_name(name):
                raise ConfigError("key %s in config file %s must be a model service's full name catalog.schema.name "
                                  "on route ai-gateway (e.g. system.ai.claude-sonnet-4-5), got %s; fix the name, or "
                                  "set route to serving-endpoints for a serving endpoint"
                                  % (key, path, json.dumps(name)))
        return raw["model"]
    _require("endpoint_name", raw["endpoint_name"], path)
    for key, name in named:
        if name is not None and is_model_service_name(name):
            raise ConfigError("key %s in config file %s is a model service name (%s), which only route ai-gateway "
                              "serves; set route to ai-gateway, or use a serving endpoint's name" % (key, path, name))
    return raw["endpoint_name"]


def is_model_service_name(name: str) -> bool:
    """catalog.schema.name (Unity Catalog: each part non-empty, at most 255 characters, no space, slash or control
    character), optionally with Claude Code's [1m] suffix."""
    if name.lower().endswith(CONTEXT_1M_SUFFIX):
        name = name[:-len(CONTEXT_1M_SUFFIX)]
    parts = name.split(".")
    return len(parts) == 3 and all(0 < len(p) <= 255 and not any(c in p for c in " /") and p.isprintable()
                                   for p in parts)
