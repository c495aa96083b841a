# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# Simplified BSD License (see https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

"""A model service as {update_mask path: canonical value}, from module options or from a read.

The granular paths are the ones the SDK's `update_model_service` documents: `comment`,
`config.routing.destinations`, `config.routing.fallback.destinations`, `config.rate_limits`,
`config.inference_table` (intermediate paths such as `config.routing` are refused by the service).
Canonical means equal meanings compare equal and server-managed fields never count:
- primary destinations in name order (traffic is split by percentage, not by position); fallback
  destinations keep their order (they are tried in it);
- a lone primary destination without a traffic percentage is the same as one with 100;
- `is_deleted`, a provisioned-throughput destination's `model` (resolved by the service from its serving
  endpoint) and an inference table's `table` are dropped; an external destination's `native_api_types`
  left unset by the user takes what the service shows (it defaults them from the provider's targets).

How a module uses it:

    desired = desired_paths(params)                 # only the parts the user manages
    actual = fill_server_defaults(desired, actual_paths(read, service_id))
    paths, body = mask_update(desired, actual)      # unity_config
    create_body(desired)                            # POST body of a new service
"""

from __future__ import annotations

from ansible_collections.databricks_claude.gateway.plugins.module_utils.comparison import prune
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_api import (
    MODEL_PROVIDER_SERVICE,
    resource_name,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_config import (
    inference_table_body,
    nest,
    normalise_inference_table,
    normalise_rate_limits,
    rate_limits_body,
)

DESTINATIONS = "config.routing.destinations"
FALLBACKS = "config.routing.fallback.destinations"
RATE_LIMITS = "config.rate_limits"
INFERENCE_TABLE = "config.inference_table"
# module option value -> (the SDK's destination_type, its type-specific config key)
DESTINATION_TYPES = {
    "pay_per_token": ("DESTINATION_TYPE_PAY_PER_TOKEN_FOUNDATION_MODEL", "pay_per_token_config"),
    "external_model": ("DESTINATION_TYPE_EXTERNAL_FOUNDATION_MODEL", "external_model_config"),
    "provisioned_throughput": ("DESTINATION_TYPE_PROVISIONED_THROUGHPUT_FOUNDATION_MODEL",
                               "provisioned_throughput_config"),
}
TYPE_CONFIG_KEYS = tuple(key for _, key in DESTINATION_TYPES.values())


def destination_type(option):
    """The destination's type: given, or implied by the fields it has."""
    if option.get("type"):
        return option["type"]
    if option.get("model_provider_service"):
        return "external_model"
    if option.get("serving_endpoint"):
        return "provisioned_throughput"
    return "pay_per_token"


def destination_problems(options, role):
    """Messages for destination options that cannot make a destination."""
    problems = []
    for n, option in enumerate(options or []):
        kind = destination_type(option)
        where = "%s[%d]" % (role, n)
        needs = {"pay_per_token": ["model"], "external_model": ["model_provider_service", "model"],
                 "provisioned_throughput": ["serving_endpoint"]}[kind]
        missing = [k for k in needs if not option.get(k)]
        if missing:
            problems.append("%s (type %s) needs %s" % (where, kind, " and ".join(missing)))
        if role == "fallback_destinations" and option.get("traffic_percentage") is not None:
            problems.append("%s: fallback destinations are tried in order and take no traffic_percentage" % where)
    return problems


def _default_name(kind, option):
    if kind == "provisioned_throughput":
        return option["serving_endpoint"]
    return option["model"].split(".")[-1]


def destination_body(option):
    """One destination option -> the API's ModelServiceConfigDestinationConfig."""
    kind = destination_type(option)
    api_type, config_key = DESTINATION_TYPES[kind]
    if kind == "pay_per_token":
        config = {"model": option["model"] if option["model"].startswith("models/") else "models/" + option["model"]}
    elif kind == "external_model":
        target = prune({"model": option["model"], "native_api_types": option.get("native_api_types")})
        config = {"model_provider_service": resource_name(MODEL_PROVIDER_SERVICE, option["model_provider_service"]),
                  "target": target}
    else:
        endpoint = option["serving_endpoint"]
        config = {"model_serving_endpoint": endpoint if endpoint.startswith("serving-endpoints/")
                  else "serving-endpoints/" + endpoint}
    return prune({"name": option.get("name") or _default_name(kind, option), "destination_type": api_type,
                  config_key: config, "traffic_percentage": option.get("traffic_percentage")})


def normalise_destination(destination):
    """A destination without the fields the service manages."""
    out = prune(dict((k, destination.get(k)) for k in ("name", "destination_type", "traffic_percentage")
                     + TYPE_CONFIG_KEYS))
    throughput = out.get("provisioned_throughput_config")
    if throughput:
        out["provisioned_throughput_config"] = {"model_serving_endpoint": throughput.get("model_serving_endpoint")}
    external = out.get("external_model_config")
    if external:
        external["target"] = prune(dict((k, (external.get("target") or {}).get(k))
                                        for k in ("model", "native_api_types")))
    return out


def normalise_destinations(destinations, primary):
    """Destinations in canonical form: primaries by name, a lone primary's 100 % implied; fallbacks in order."""
    out = [normalise_destination(d) for d in destinations or []]
    if not primary:
        return out
    if len(out) == 1 and out[0].get("traffic_percentage") in (None, 100):
        out[0].pop("traffic_percentage", None)
    return sorted(out, key=lambda d: d.get("name") or "")


def desired_paths(params, service_id):
    """The parts of the model service the options manage, as {mask path: canonical value}."""
    desired = {DESTINATIONS: normalise_destinations([destination_body(d) for d in params["destinations"]], True)}
    if params.get("comment") is not None:
        desired["comment"] = params["comment"] or None
    if params.get("fallback_destinations") is not None:
        desired[FALLBACKS] = normalise_destinations(
            [destination_body(d) for d in params["fallback_destinations"]], False)
    if params.get("rate_limits") is not None:
        desired[RATE_LIMITS] = rate_limits_body(params["rate_limits"])
    if params.get("inference_table") is not None:
        desired[INFERENCE_TABLE] = inference_table_body(params["inference_table"], service_id)
    return desired


def actual_paths(service, service_id):
    """A read model service as {mask path: canonical value}."""
    config = service.get("config") or {}
    routing = config.get("routing") or {}
    return {
        "comment": service.get("comment") or None,
        DESTINATIONS: normalise_destinations(routing.get("destinations"), True),
        FALLBACKS: normalise_destinations((routing.get("fallback") or {}).get("destinations"), False),
        RATE_LIMITS: normalise_rate_limits(config.get("rate_limits")),
        INFERENCE_TABLE: normalise_inference_table(config.get("inference_table"), service_id),
    }


def _without_api_types(destinations, defaults):
    """`defaults` (actual destinations) with native_api_types dropped where the desired ones leave it unset."""
    unset = set(d["name"] for d in destinations
                if "external_model_config" in d and "native_api_types" not in d["external_model_config"]["target"])
    out = []
    for destination in defaults or []:
        external = destination.get("external_model_config")
        if destination.get("name") in unset and external:
            target = dict((k, v) for k, v in external["target"].items() if k != "native_api_types")
            destination = dict(destination, external_model_config=dict(external, target=target))
        out.append(destination)
    return out


def fill_server_defaults(desired, actual):
    """`actual` as compared with `desired`: native_api_types the user left to the service do not count."""
    actual = dict(actual)
    for path in (DESTINATIONS, FALLBACKS):
        if path in desired:
            actual[path] = _without_api_types(desired[path], actual.get(path))
    return actual


def create_body(desired):
    """The POST body of a new model service from its desired paths."""
    return nest(desired)
