"""The workstation config file: where it is found, what it may contain, one clear error when it is wrong.

Format (the seed's keys stay valid, every new key is optional), see DESIGN.md:
databricks_host, endpoint_name, model, route, models{opus,sonnet,haiku},
azure_ad{tenant_id, client_id, scopes, authority}, federation{service_principal_client_id},
token_cache{method, fallback}, launcher{mode, claude_command}. JSON null means "not set".

This module is on the cached-token path, so it imports only json and os (no
typing, urllib, dataclasses: each costs about as much as starting Python).
"""

from __future__ import annotations

import json
import os

from .errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

HOME_DIR_NAME = ".databricks-claude-gateway"
MICROSOFT_LOGIN = "https://login.microsoftonline.com/"
# MSAL adds these itself and raises when a caller passes them (facts/test-idp.md §1).
RESERVED_SCOPES = ("openid", "profile", "offline_access")
DEFAULT_SCOPES = ("email",)  # without one non-reserved scope the IdP sends no refresh token
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
SLOTS = ("opus", "sonnet", "haiku")
# Claude Code strips this suffix from a model name before sending it (and asks for the 1M context instead).
CONTEXT_1M_SUFFIX = "[1m]"


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
}


class Config:
    """A validated config file; immutable once loaded."""

    __slots__ = ("path", "databricks_host", "endpoint_name", "model", "route", "main_model", "models", "tenant_id",
                 "client_id",
                 "scopes", "authority", "service_principal_client_id", "token_cache_method", "token_cache_fallback",
                 "launcher_mode", "claude_command")

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
            "tenant_id": ad["tenant_id"],
            "client_id": ad["client_id"],
            "scopes": msal_scopes(ad["scopes"]),
            "authority": _authority(ad, path),
            "service_principal_client_id": raw["federation"]["service_principal_client_id"],
            "token_cache_method": raw["token_cache"]["method"],
            "token_cache_fallback": raw["token_cache"]["fallback"],
            "launcher_mode": raw["launcher"]["mode"],
            "claude_command": raw["launcher"]["claude_command"],
        }
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
    return os.environ.get("CLAUDE_DB_HOME") or os.path.join(os.path.expanduser("~"), HOME_DIR_NAME)


def state_dir() -> str:
    """home_dir(), created 0700 (and tightened to 0700 if it already exists)."""
    path = home_dir()
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def find_config(path: Optional[str] = None) -> str:
    """The config file to use: `path`, $CLAUDE_DB_CONFIG, ./config.json, ~/.databricks-claude-gateway/config.json."""
    explicit = path or os.environ.get("CLAUDE_DB_CONFIG")
    if explicit:
        if not os.path.isfile(explicit):
            source = "--config" if path else "$CLAUDE_DB_CONFIG"
            raise ConfigError("config file %s (from %s) does not exist; fix the path or create the file"
                              % (explicit, source))
        return explicit
    candidates = [os.path.abspath("config.json"), os.path.join(home_dir(), "config.json")]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise ConfigError("no config file found (looked at --config, $CLAUDE_DB_CONFIG, %s); create one "
                      "(see README) or pass --config PATH" % ", ".join(candidates))


def load_config(path: Optional[str] = None) -> Config:
    """Find, read and validate the config; ConfigError (exit 2) names the key and the file."""
    path = find_config(path)
    try:
        with open(path, "rb") as f:
            raw = json.loads(f.read().decode("utf-8"))
    except OSError as e:
        raise ConfigError("cannot read config file %s: %s" % (path, e.strerror or e))
    except UnicodeDecodeError:
        raise ConfigError("config file %s is not UTF-8 text; save it as UTF-8 JSON" % path)
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
        if spec.required and (value is None or value == ""):
            raise ConfigError("missing required key %s in config file %s; add it" % (name, path))
        if value is None and spec.kind != "object":
            out[key] = spec.default
            continue
        if spec.kind == "object":
            out[key] = _validated({} if value is None else value, spec.children, name + ".", path)
            continue
        if not _has_kind(value, spec.kind):
            raise ConfigError("key %s in config file %s must be a %s, got %s" % (name, path, spec.kind,
                                                                                 _json_type(value)))
        if spec.choices and value not in spec.choices:
            raise ConfigError("key %s in config file %s must be one of %s, got %s"
                              % (name, path, ", ".join(spec.choices), json.dumps(value)))
        out[key] = value
    return out


def _has_kind(value, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
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


def split_url(url: str):
    """(scheme, host, rest) of an absolute URL, without importing urllib (cached path)."""
    scheme, sep, remainder = url.partition("://")
    if not sep:
        return "", "", url
    end = min([i for i in (remainder.find(c) for c in "/?#") if i >= 0] or [len(remainder)])
    netloc, rest = remainder[:end], remainder[end:]
    host = netloc.rsplit("@", 1)[-1]
    if host.startswith("[") and "]" in host:
        host = host[:host.index("]") + 1]
    else:
        host = host.split(":", 1)[0]
    return scheme.lower(), host.lower(), rest


def _is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _workspace_url(url: str, path: str) -> str:
    """databricks_host without a trailing slash; https, or http only on a loopback host."""
    scheme, host, rest = split_url(url.strip())
    example = "e.g. https://adb-123.4.azuredatabricks.net"
    if scheme not in ("https", "http") or not host:
        raise ConfigError("key databricks_host in config file %s must be the workspace URL (%s), got %s"
                          % (path, example, json.dumps(url)))
    if scheme == "http" and not _is_loopback(host):
        raise ConfigError("key databricks_host in config file %s must use https:// (plain http is only allowed "
                          "for 127.0.0.1/localhost)" % path)
    if rest.strip("/"):
        raise ConfigError("key databricks_host in config file %s must be the workspace URL without a path or "
                          "query (%s), got %s" % (path, example, json.dumps(url)))
    return url.strip().rstrip("/")


def _authority(ad: dict, path: str) -> str:
    """azure_ad.authority, or Entra's authority for the tenant; always https (MSAL refuses anything else)."""
    authority = (ad["authority"] or MICROSOFT_LOGIN + ad["tenant_id"]).rstrip("/")
    scheme, host, rest = split_url(authority)
    if scheme != "https" or not host or not rest.strip("/"):
        raise ConfigError("key azure_ad.authority in config file %s must be an https URL with a path, "
                          "e.g. %s<tenant_id>; got %s" % (path, MICROSOFT_LOGIN, json.dumps(authority)))
    return authority


def _main_model(raw: dict, path: str) -> str:
    """The `model` of every request: the serving endpoint's name, or on ai-gateway the model service's full name.

    The two kinds of name cannot be swapped: /ai-gateway routes by model service and the legacy
    /serving-endpoints route by endpoint (facts/databricks-api.md E), so each route refuses the other's.
    """
    gateway = raw["route"] == "ai-gateway"
    main_key = "model" if gateway else "endpoint_name"
    named = [(main_key, raw[main_key])] + [("models." + slot, raw["models"][slot]) for slot in SLOTS]
    if gateway:
        if not raw["model"]:
            raise ConfigError("route ai-gateway in config file %s needs key model: the model service's full name "
                              "catalog.schema.name (e.g. system.ai.claude-sonnet-4-5); add it" % path)
        for key, name in named:
            if name is not None and not is_model_service_name(name):
                raise ConfigError("key %s in config file %s must be a model service's full name catalog.schema.name "
                                  "on route ai-gateway (e.g. system.ai.claude-sonnet-4-5), got %s; fix the name, or "
                                  "set route to serving-endpoints for a serving endpoint"
                                  % (key, path, json.dumps(name)))
        return raw["model"]
    if not raw["endpoint_name"]:
        raise ConfigError("missing required key endpoint_name in config file %s; add it" % path)
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
