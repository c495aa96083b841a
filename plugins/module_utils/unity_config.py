# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# Simplified BSD License (see https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

"""What model services and model provider services share: rate limits, inference tables, granular updates.

Both are updated through `update_mask` paths (`config.rate_limits`, `config.inference_table`, ...): a module
describes the desired and the current service as {mask path: canonical value}, and `mask_update` turns the
paths whose values differ into the PATCH (the paths, and a body holding just those values). A path the
user did not manage is simply absent from the desired side; a value of None clears it.

How a module uses it:

    desired = {"comment": "...", "config.rate_limits": rate_limits_body(params["rate_limits"])}
    actual = {"comment": read.get("comment"), "config.rate_limits": normalise_rate_limits(...)}
    paths, body = mask_update(desired, actual)        # ([], {}) when nothing differs
"""

from __future__ import annotations

import copy

from ansible_collections.databricks_claude.gateway.plugins.module_utils.comparison import prune

# The SDK's RateLimitRateLimitKey / RateLimitRateLimitRenewalPeriod, in the user's words.
RATE_LIMIT_KEYS = {
    "service": "RATE_LIMIT_KEY_SERVICE",  # everyone together
    "user_default": "RATE_LIMIT_KEY_USER_DEFAULT",  # each user that has no limit of their own
    "user": "RATE_LIMIT_KEY_USER",
    "user_group": "RATE_LIMIT_KEY_USER_GROUP",
    "service_principal": "RATE_LIMIT_KEY_SERVICE_PRINCIPAL",
}
NEEDS_PRINCIPAL = ("user", "user_group", "service_principal")
RENEWAL_PERIODS = {"minute": "RATE_LIMIT_RENEWAL_PERIOD_MINUTE", "hour": "RATE_LIMIT_RENEWAL_PERIOD_HOUR"}
RATE_LIMIT_FIELDS = ("key", "principal", "renewal_period", "requests", "tokens")


def rate_limit_problems(limits):
    """Messages for rate limits the service would refuse (principal given where it must, and only there)."""
    problems = []
    for n, limit in enumerate(limits or []):
        if (limit["key"] in NEEDS_PRINCIPAL) != bool(limit.get("principal")):
            problems.append("rate_limits[%d]: key %s %s" % (
                n, limit["key"], "needs a principal" if limit["key"] in NEEDS_PRINCIPAL else "takes no principal"))
    return problems


def _rate_limit_order(limit):
    return tuple(str(limit.get(k, "")) for k in RATE_LIMIT_FIELDS)


def normalise_rate_limits(limits):
    """API rate limits in one order (the service keeps them as a set), unset fields dropped."""
    return sorted((prune(dict((k, limit.get(k)) for k in RATE_LIMIT_FIELDS)) for limit in limits or []),
                  key=_rate_limit_order)


def rate_limits_body(options):
    """Module options (key: user, renewal_period: minute, ...) -> the API's rate limits, normalised."""
    return normalise_rate_limits([dict(limit, key=RATE_LIMIT_KEYS[limit["key"]],
                                       renewal_period=RENEWAL_PERIODS[limit["renewal_period"]])
                                  for limit in options or []])


def inference_table_body(options, service_id):
    """Module options (catalog_name, schema_name, table_name_prefix, enabled) -> InferenceTableConfig or None.

    The service names the table `<prefix>_payload`, the prefix defaulting to the service's own name, so an
    unset prefix is filled with that default and compares equal to what a read shows.
    """
    if not options or options.get("enabled") is False:
        return None
    return {"parent": "schemas/%s.%s" % (options["catalog_name"], options["schema_name"]),
            "table_name_prefix": options.get("table_name_prefix") or service_id}


def normalise_inference_table(table, service_id):
    """A read's inference table without what the server derives (`table`, `is_deleted`)."""
    if not table:
        return None
    return {"parent": table.get("parent"), "table_name_prefix": table.get("table_name_prefix") or service_id}


def inference_table_moves(desired, actual):
    """True when an existing inference table would get another parent or prefix (the service refuses that)."""
    return bool(desired and actual and desired != actual)


def _put(body, path, value):
    keys = path.split(".")
    node = body
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = copy.deepcopy(value)


def nest(values, locations=None):
    """{mask path: value} -> the request body holding each value at its place (None/empty values left out,
    which is how a granular update clears a field). `locations` maps a mask path to another body place
    (`config.provider` is written at `config.<provider>`)."""
    body = {}
    for path, value in sorted(values.items()):
        if value is None or value == []:
            continue
        _put(body, (locations or {}).get(path, path), value)
    return body


def changed_paths(desired, actual):
    """The mask paths whose desired value differs from the actual one ([] and None are the same)."""
    return sorted(path for path, value in desired.items()
                  if (value if value != [] else None) != (actual.get(path) if actual.get(path) != [] else None))


def mask_update(desired, actual, locations=None):
    """(update_mask paths, PATCH body) for what differs; ([], {}) when nothing does."""
    paths = changed_paths(desired, actual)
    return paths, nest(dict((p, desired[p]) for p in paths), locations)


def predicted(desired, actual):
    """What a read would show after the update: the actual values with the desired ones laid over them."""
    after = dict(actual)
    after.update(desired)
    return after


def service_argument_spec(**options):
    """The options every Unity AI Gateway service module takes (documented in the `unity` doc fragments)."""
    spec = dict(
        catalog=dict(type="str", required=True),
        schema=dict(type="str", required=True),
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        comment=dict(type="str"),
        rate_limits=dict(type="list", elements="dict", options=dict(
            key=dict(type="str", required=True, choices=sorted(RATE_LIMIT_KEYS)),
            principal=dict(type="str"),
            renewal_period=dict(type="str", default="minute", choices=sorted(RENEWAL_PERIODS)),
            requests=dict(type="int"),
            tokens=dict(type="int", no_log=False),
        )),
        inference_table=dict(type="dict", options=dict(
            enabled=dict(type="bool", default=True),
            catalog_name=dict(type="str"),
            schema_name=dict(type="str"),
            table_name_prefix=dict(type="str"),
        ), required_if=[["enabled", True, ["catalog_name", "schema_name"]]]),
    )
    spec.update(options)
    return spec
