# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# Simplified BSD License (see https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

"""A model provider service as {update_mask path: canonical value}, from module options or from a read.

The provider-specific object (`config.anthropic`, `config.amazon_bedrock`, ...) is written through the
mask path `config.provider` (SDK `update_model_provider_service`); the provider type itself is immutable.
Credentials are references only - a Unity Catalog secret (`secrets/{c}.{s}.{name}`) or service credential
(`credentials/{name}`) - so nothing secret passes through a task and a read shows everything there is to
compare. The provider object compares as "what the user gave is contained in what the service shows", so
fields the service adds do not count. Which provider takes which credential follows the SDK 0.162 shapes:
an API key (anthropic, openai, custom, azure_openai, gemini_enterprise, microsoft_foundry); a service
credential (amazon_bedrock, bedrock_mantle, azure_openai, gemini_enterprise, microsoft_foundry).

How a module uses it:

    desired = desired_paths(params)
    actual = fill_provider(desired, actual_paths(read, service_id))
    paths, body = mask_update(desired, actual, LOCATIONS[params["provider"]])
"""

from __future__ import annotations

from ansible_collections.databricks_claude.gateway.plugins.module_utils.comparison import is_subset, overlay, prune
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_config import (
    inference_table_body,
    nest,
    normalise_inference_table,
    normalise_rate_limits,
    rate_limits_body,
)

PROVIDER = "config.provider"
TARGETS = "config.targets"
ALLOW_ALL_TARGETS = "config.allow_all_targets"
RATE_LIMITS = "config.rate_limits"
INFERENCE_TABLE = "config.inference_table"
PROVIDERS = ("amazon_bedrock", "anthropic", "azure_openai", "bedrock_mantle", "custom", "gemini_enterprise",
             "microsoft_foundry", "openai")
API_KEY_PROVIDERS = ("anthropic", "openai", "custom", "azure_openai", "gemini_enterprise", "microsoft_foundry")
CREDENTIAL_PROVIDERS = ("amazon_bedrock", "bedrock_mantle", "azure_openai", "gemini_enterprise", "microsoft_foundry")
REGION_PROVIDERS = ("amazon_bedrock", "bedrock_mantle", "gemini_enterprise")
LOCATIONS = dict((p, {PROVIDER: "config." + p}) for p in PROVIDERS)


def provider_type(provider):
    return "EXTERNAL_MODEL_PROVIDER_TYPE_" + provider.upper()


def provider_of(provider_type_value):
    """`anthropic` for EXTERNAL_MODEL_PROVIDER_TYPE_ANTHROPIC."""
    return (provider_type_value or "").replace("EXTERNAL_MODEL_PROVIDER_TYPE_", "").lower()


def _has_plaintext(node):
    if isinstance(node, dict):
        return "plaintext" in node or any(_has_plaintext(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_plaintext(v) for v in node)
    return False


def provider_problems(params):
    """Messages for options that do not fit the provider."""
    provider = params["provider"]
    problems = []
    if params.get("api_key_secret") and provider not in API_KEY_PROVIDERS:
        problems.append("api_key_secret: provider %s takes no API key (use service_credential or provider_config)"
                        % provider)
    if params.get("service_credential") and provider not in CREDENTIAL_PROVIDERS:
        problems.append("service_credential: provider %s takes no service credential; give its API key as "
                        "api_key_secret" % provider)
    if params.get("region") and provider not in REGION_PROVIDERS:
        problems.append("region: provider %s takes no region" % provider)
    if _has_plaintext(params.get("provider_config")):
        problems.append("provider_config: give credentials as a Unity Catalog secret reference "
                        "(secret_reference.name: secrets/<catalog>.<schema>.<secret>), not as plaintext")
    return problems


def _prefixed(value, prefix):
    return value if value.startswith(prefix) else prefix + value


def provider_block(params):
    """The provider-specific config object: the shortcut options, with provider_config laid over them."""
    direct = {}
    if params.get("api_key_secret"):
        direct["api_key"] = {"secret_reference": {"name": _prefixed(params["api_key_secret"], "secrets/")}}
    if params.get("service_credential"):
        direct["service_credential"] = {"name": _prefixed(params["service_credential"], "credentials/")}
    if params.get("region"):
        direct["region"] = params["region"]
    block = {"direct": direct} if direct else {}
    return prune(overlay(block, params.get("provider_config") or {}))


def _targets(targets):
    return sorted((prune({"model": t.get("model"), "native_api_types": sorted(t.get("native_api_types") or [])
                          or None, "endpoint_route": t.get("endpoint_route") or None})
                   for t in targets or []), key=lambda t: t["model"])


def desired_paths(params, service_id):
    desired = {PROVIDER: provider_block(params)}
    if params.get("comment") is not None:
        desired["comment"] = params["comment"] or None
    if params.get("targets") is not None:
        desired[TARGETS] = _targets(params["targets"])
    if params.get("allow_all_targets") is not None:
        desired[ALLOW_ALL_TARGETS] = params["allow_all_targets"] or None
    if params.get("rate_limits") is not None:
        desired[RATE_LIMITS] = rate_limits_body(params["rate_limits"])
    if params.get("inference_table") is not None:
        desired[INFERENCE_TABLE] = inference_table_body(params["inference_table"], service_id)
    return desired


def actual_paths(service, service_id):
    config = service.get("config") or {}
    return {
        "comment": service.get("comment") or None,
        PROVIDER: config.get(provider_of(config.get("provider_type"))) or {},
        TARGETS: _targets(config.get("targets")),
        ALLOW_ALL_TARGETS: config.get("allow_all_targets") or None,
        RATE_LIMITS: normalise_rate_limits(config.get("rate_limits")),
        INFERENCE_TABLE: normalise_inference_table(config.get("inference_table"), service_id),
    }


def fill_provider(desired, actual):
    """`actual` as compared with `desired`: a provider object containing everything desired counts as equal."""
    if is_subset(desired.get(PROVIDER), actual.get(PROVIDER)):
        actual = dict(actual, **{PROVIDER: desired.get(PROVIDER)})
    return actual


def create_body(desired, provider):
    body = nest(desired, LOCATIONS[provider])
    body.setdefault("config", {})["provider_type"] = provider_type(provider)
    return body
