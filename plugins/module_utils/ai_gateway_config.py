# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One canonical form for an endpoint's AI Gateway config, so the whole object can be compared.

PUT .../ai-gateway replaces the whole object, so the module compares the whole normalised
object, not a subset: a sub-config the user dropped must be seen as a change. Normalising makes
equal meanings equal: a disabled sub-config and an absent one, PII behaviour NONE and no PII
rule, `safety: false` and no safety rule, empty lists and none; rate limits sorted with the
default key (`endpoint`) and renewal period (`minute`) filled in; keyword and topic lists sorted.

How a module uses it:

    desired = normalise_ai_gateway(prune(module_options))
    desired = fill_server_defaults(desired, actual)          # e.g. the table prefix the server chose
    if desired != normalise_ai_gateway(endpoint.get("ai_gateway")): ... PUT desired
    if inference_table_moves(desired, actual): PUT without_inference_table(actual) first
    client.put(path, put_body(desired, actual))
"""

from __future__ import annotations

from ansible_collections.databricks_claude.gateway.plugins.module_utils.comparison import drop_empty, prune

TABLE_LOCATION = ("catalog_name", "schema_name", "table_name_prefix")
RATE_LIMIT_FIELDS = ("calls", "tokens", "key", "principal", "renewal_period")
# The sub-configs that are an `enabled` switch (plus settings that matter only when it is on).
SWITCHES = ("usage_tracking_config", "inference_table_config", "fallback_config")


def _enabled_only(config):
    """A sub-config that only matters when enabled: {} when disabled or absent."""
    if not config or not config.get("enabled"):
        return {}
    return config


def _guardrail(params):
    params = dict(params or {})
    if (params.get("pii") or {}).get("behavior") in (None, "NONE"):
        params.pop("pii", None)
    if not params.get("safety"):
        params.pop("safety", None)
    for key in ("invalid_keywords", "valid_topics"):
        if params.get(key):
            params[key] = sorted(params[key])
    return params


def _rate_limit(limit):
    limit = dict((k, limit.get(k)) for k in RATE_LIMIT_FIELDS)
    limit["key"] = limit["key"] or "endpoint"
    limit["renewal_period"] = limit["renewal_period"] or "minute"
    return prune(limit)


def _rate_limit_order(limit):
    return tuple(str(limit.get(k, "")) for k in ("key", "principal", "renewal_period", "calls", "tokens"))


def normalise_ai_gateway(config):
    """The canonical form of an ai_gateway object (from GET, or built from module options)."""
    config = prune(config or {})
    out = {
        "guardrails": dict((side, _guardrail(params)) for side, params in (config.get("guardrails") or {}).items()
                           if side in ("input", "output")),
        "rate_limits": sorted((_rate_limit(limit) for limit in config.get("rate_limits") or []),
                              key=_rate_limit_order),
    }
    out.update((key, _enabled_only(config.get(key))) for key in SWITCHES)
    return drop_empty(out)


def fill_server_defaults(desired, actual):
    """Copy what the server chose where the user left the choice to it (today: the table name prefix)."""
    table = desired.get("inference_table_config")
    current = actual.get("inference_table_config")
    if table and current and "table_name_prefix" not in table and "table_name_prefix" in current:
        same_place = all(table.get(k) == current.get(k) for k in ("catalog_name", "schema_name"))
        if same_place:
            desired = dict(desired, inference_table_config=dict(table, table_name_prefix=current["table_name_prefix"]))
    return desired


def inference_table_moves(desired, actual):
    """True when an enabled inference table would change catalog, schema or prefix.

    The service refuses that while the table is enabled; it must be disabled first.
    """
    new = desired.get("inference_table_config")
    old = actual.get("inference_table_config")
    if not new or not old:
        return False
    return any(new.get(k) != old.get(k) for k in TABLE_LOCATION)


def put_body(desired, actual):
    """The PUT body: `desired`, plus an explicit `enabled: false` for each switch that is on now but not wanted.

    Omitted sub-configs are assumed cleared by the service (full replacement), but saying so costs nothing.
    """
    body = dict(desired)
    for key in SWITCHES:
        if key in actual and key not in desired:
            body[key] = {"enabled": False}
    return body


def without_inference_table(actual):
    """`actual` (normalised) with its inference table disabled: the first of the two PUTs of a move."""
    return put_body(dict((k, v) for k, v in actual.items() if k != "inference_table_config"), actual)
