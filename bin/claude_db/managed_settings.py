"""Claude Code's managed settings for plain `claude` with claude-db-token as apiKeyHelper, and the rule for
putting them into a managed-settings.json the organisation may already have.

The settings are what claude-db's helper mode passes with --settings (launcher.claude_settings), so the two
cannot drift. The merge keeps every key the organisation set; taking ours out again (`without`) removes
only what we wrote: an object key by key, our items from a list, a value only while it is still ours.
Standard library only: the workstation role runs this on the controller, where there may be no venv.
"""

import shlex

from .config import HOME_DIR_NAME
from .launcher import claude_settings, token_deny_rules

_GONE = object()


def managed_settings(config, api_key_helper=None, service_port=None) -> dict:
    """The helper-mode settings, with another apiKeyHelper command if given; with `service_port`, the
    settings that point plain `claude` at the user's `claude-db-token serve` on that port instead.

    They are built on the controller and hold for every user of the machine, so the rules that keep the
    agent away from the token name the state directory as `~/...` and the tool the helper runs."""
    tool = shlex.split(api_key_helper)[0] if api_key_helper else None
    rules = token_deny_rules(["~/" + HOME_DIR_NAME], tool)
    mode = "helper" if service_port is None else "service"
    settings = claude_settings(config, mode, service_port or 0, "", None, token_rules=rules)
    if api_key_helper:
        settings["apiKeyHelper"] = api_key_helper
    return settings


def merged(current: dict, ours: dict, previous=None) -> dict:
    """`current` with `ours` merged in, after taking out what `previous` (ours last time) set and `ours` does not.

    Objects merge key by key, a list gets our items appended once, any other value is ours.
    """
    return _merge(without(current, _only_in(previous or {}, ours)), ours)


def without(current: dict, ours: dict) -> dict:
    """`current` minus `ours`; an object or list that only our keys or items filled goes too."""
    out = dict(current)
    for key, value in ours.items():
        if key not in out:
            continue
        have = out[key]
        if isinstance(have, dict) and isinstance(value, dict):
            kept = without(have, value)
        elif isinstance(have, list) and isinstance(value, list):
            kept = [item for item in have if item not in value]
        else:
            kept = have if have != value else _GONE
        if kept is _GONE or (not kept and have):
            del out[key]
        else:
            out[key] = kept
    return out


def _merge(base: dict, ours: dict) -> dict:
    out = dict(base)
    for key, value in ours.items():
        have = out.get(key)
        if isinstance(have, dict) and isinstance(value, dict):
            out[key] = _merge(have, value)
        elif isinstance(have, list) and isinstance(value, list):
            out[key] = have + [item for item in value if item not in have]
        else:
            out[key] = value
    return out


def _only_in(previous: dict, ours: dict) -> dict:
    """What `previous` sets that `ours` does not (a value `ours` also sets is overwritten, not removed)."""
    out = {}
    for key, value in previous.items():
        if key not in ours:
            out[key] = value
        elif isinstance(value, dict) and isinstance(ours[key], dict):
            rest = _only_in(value, ours[key])
            if rest:
                out[key] = rest
        elif isinstance(value, list) and isinstance(ours[key], list):
            rest = [item for item in value if item not in ours[key]]
            if rest:
                out[key] = rest
    return out
