# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Generic desired-vs-actual helpers: drop unset options, subset comparison, secret-free diffs.

How a module uses it:

    desired = prune(dict((k, module.params[k]) for k in OPTIONS))   # options the user left unset vanish
    changed = not is_subset(desired, actual)                        # server-added keys in `actual` are ignored
    result["diff"] = sanitized_diff(before, after)                  # secrets removed from both sides

Resource-specific rules (ordering, server defaults, fields the server manages) live beside
the resource (serving_config.py, ai_gateway_config.py, ...); they produce plain dicts that
these functions then compare.
"""

from __future__ import annotations

import copy

# Option and field names whose values are secrets: never in a diff, a result or a message.
SECRET_KEYS = frozenset(("token", "client_secret", "password"))
SECRET_SUFFIXES = ("_plaintext",)


def is_secret_key(key):
    return key in SECRET_KEYS or any(str(key).endswith(s) for s in SECRET_SUFFIXES)


def prune(value):
    """A deep copy of `value` without None values (unset options) in dicts."""
    if isinstance(value, dict):
        return dict((k, prune(v)) for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return [prune(v) for v in value]
    return copy.deepcopy(value)


def drop_empty(value):
    """Also drop empty dicts/lists left behind (a disabled sub-config and an absent one mean the same)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = drop_empty(v)
            if v is None or v == {} or v == []:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


def is_subset(desired, actual, optional_keys=()):
    """True when everything in `desired` is also in `actual` (which may hold more keys).

    Lists must match item by item (callers sort them first); keys listed in `optional_keys`
    count as equal when `actual` lacks them (fields the service may not echo back).
    """
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        for key, value in desired.items():
            if key not in actual:
                if key in optional_keys:
                    continue
                return False
            if not is_subset(value, actual[key], optional_keys):
                return False
        return True
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(is_subset(d, a, optional_keys) for d, a in zip(desired, actual))
    return desired == actual


def overlay(base, top):
    """`base` with `top` laid over it, recursively for dicts (lists and scalars in `top` win)."""
    if not isinstance(base, dict) or not isinstance(top, dict):
        return copy.deepcopy(top)
    out = copy.deepcopy(base)
    for key, value in top.items():
        out[key] = overlay(base.get(key), value)
    return out


def sanitize(value):
    """A deep copy of `value` with every secret field removed."""
    if isinstance(value, dict):
        return dict((k, sanitize(v)) for k, v in value.items() if not is_secret_key(k))
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    return copy.deepcopy(value)


def sanitized_diff(before, after):
    """Ansible's `diff` result (before/after), secrets removed. None stands for 'does not exist'."""
    return {"before": sanitize(before) if before is not None else {},
            "after": sanitize(after) if after is not None else {}}
