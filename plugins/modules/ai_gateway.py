#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ai_gateway
short_description: Configure the AI Gateway of a Databricks serving endpoint
version_added: 1.0.0
description:
  - Sets the AI Gateway configuration of a serving endpoint - rate limits, guardrails, usage tracking,
    inference tables and fallback - including the preconfigured pay-per-token endpoints
    (C(databricks-claude-*)) that cannot be created.
  - The service replaces the whole configuration on every write, so this module manages the whole of it.
    A sub-configuration that is not given is removed (disabled). The desired and the current configuration
    are compared as a whole after normalising equal meanings (a disabled setting and an absent one, rate
    limits in any order, the default rate-limit key C(endpoint)).
  - While a config update of the endpoint runs, the service refuses this write with HTTP 409; the module waits
    for the update to end first (and retries a 409 of any error code).
  - Moving an enabled inference table (another catalog, schema or table prefix) needs the table disabled
    first; the module does that itself, with two writes, and says so in RV(changes).
  - This is the per-endpoint AI Gateway that Databricks now calls legacy; Unity Gateway is configured
    elsewhere.
extends_documentation_fragment:
  - databricks_claude.gateway.connection
  - databricks_claude.gateway.attributes
  - databricks_claude.gateway.attributes.action_group
attributes:
  check_mode:
    support: full
    details:
      - If the endpoint does not exist yet (for example because an earlier task would create it), check mode
        reports a change and a warning instead of failing.
  diff_mode:
    support: full
options:
  name:
    description: Name of the serving endpoint.
    type: str
    required: true
  state:
    description:
      - V(present) sets the configuration given by the other options (anything not given is removed).
      - V(absent) removes the whole AI Gateway configuration.
    type: str
    choices: [present, absent]
    default: present
  usage_tracking_config:
    description: Usage tracking into system tables.
    type: dict
    suboptions:
      enabled:
        description: Whether usage is tracked.
        type: bool
        required: true
  rate_limits:
    description: Rate limits. An empty list or none means no limits.
    type: list
    elements: dict
    suboptions:
      calls:
        description:
          - Requests allowed per renewal period.
          - V(0) disables the endpoint for O(rate_limits[].key) (queries are refused with 403 C(PERMISSION_DENIED)).
        type: int
      tokens:
        description: Tokens allowed per renewal period.
        type: int
      key:
        description:
          - What the limit applies to. V(user), V(user_group) and V(service_principal) limit the
            O(rate_limits[].principal) named (or each one, if none is named).
        type: str
        choices: [endpoint, user, user_group, service_principal]
        default: endpoint
      principal:
        description: A user email, a group name or a service principal's application ID.
        type: str
      renewal_period:
        description: The period the limit renews after.
        type: str
        choices: [minute]
        default: minute
  guardrails:
    description: Safety and PII rules for requests (O(guardrails.input)) and responses (O(guardrails.output)).
    type: dict
    suboptions:
      input:
        description: Rules for requests.
        type: dict
        suboptions: &guardrail
          pii:
            description: What to do with personally identifiable information.
            type: dict
            suboptions:
              behavior:
                description: V(BLOCK) refuses it, V(MASK) masks it, V(NONE) lets it through.
                type: str
                required: true
                choices: [BLOCK, MASK, NONE]
          safety:
            description: Whether the safety filter is on.
            type: bool
          invalid_keywords:
            description: Keywords that are refused. Deprecated by Databricks in favour of PII and safety.
            type: list
            elements: str
          valid_topics:
            description: The only topics allowed. Deprecated by Databricks in favour of PII and safety.
            type: list
            elements: str
      output:
        description: Rules for responses.
        type: dict
        suboptions: *guardrail
  inference_table_config:
    description: Logging of requests and responses to a Unity Catalog table.
    type: dict
    suboptions:
      enabled:
        description: Whether requests and responses are logged.
        type: bool
        required: true
      catalog_name:
        description: Catalog of the table. Required when enabled.
        type: str
      schema_name:
        description: Schema of the table. Required when enabled.
        type: str
      table_name_prefix:
        description: Prefix of the table name. When unset, the prefix the service chose is kept.
        type: str
  fallback_config:
    description: Retrying failed requests on the endpoint's other served entities (needs more than one).
    type: dict
    suboptions:
      enabled:
        description: Whether fallback is on.
        type: bool
        required: true
seealso:
  - module: databricks_claude.gateway.serving_endpoint
author:
  - databricks_claude.gateway contributors (@databricks-claude)
"""

EXAMPLES = r"""
- name: Rate limits, usage tracking and PII blocking for the Claude endpoint
  databricks_claude.gateway.ai_gateway:
    name: claude-code-gateway
    usage_tracking_config:
      enabled: true
    rate_limits:
      - calls: 100
        key: user
        renewal_period: minute
      - tokens: 2000000
        key: user_group
        principal: developers
    guardrails:
      input:
        pii:
          behavior: BLOCK
        safety: true

- name: Log requests of a pay-per-token Claude endpoint to an inference table
  databricks_claude.gateway.ai_gateway:
    name: databricks-claude-sonnet-4-5
    usage_tracking_config:
      enabled: true
    inference_table_config:
      enabled: true
      catalog_name: ml
      schema_name: ai_gateway
      table_name_prefix: claude

- name: Remove every AI Gateway setting
  databricks_claude.gateway.ai_gateway:
    name: claude-code-gateway
    state: absent
"""

RETURN = r"""
ai_gateway:
  description: The AI Gateway configuration after the change (before it, in check mode), as the service returns it.
  returned: when the endpoint exists
  type: dict
  sample:
    usage_tracking_config:
      enabled: true
    rate_limits:
      - calls: 100
        key: user
        renewal_period: minute
msg:
  description: What the module did, in words.
  returned: always
  type: str
  sample: AI gateway of serving endpoint claude-code-gateway updated
changes:
  description:
    - The writes done (or that would be done in check mode) -
      C(disable inference table) before a table move, then C(update).
  returned: always
  type: list
  elements: str
  sample: [update]
status:
  description: HTTP status of the failed call.
  returned: failure
  type: int
  sample: 400
error_code:
  description: The service's error code of the failed call.
  returned: failure
  type: str
  sample: INVALID_PARAMETER_VALUE
"""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.ai_gateway_config import (
    fill_server_defaults,
    inference_table_moves,
    normalise_ai_gateway,
    put_body,
    without_inference_table,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule
from ansible_collections.databricks_claude.gateway.plugins.module_utils.serving_api import (
    endpoint_path,
    get_endpoint,
    settled,
    when_not_updating,
)

RESOURCE = "AI gateway of serving endpoint"
CONFLICT_WAIT = 1200  # seconds to wait out an endpoint update that makes the service answer 409
CONFIG_OPTIONS = ("usage_tracking_config", "rate_limits", "guardrails", "inference_table_config", "fallback_config")

GUARDRAIL = dict(
    pii=dict(type="dict", options=dict(behavior=dict(type="str", required=True, choices=["BLOCK", "MASK", "NONE"]))),
    safety=dict(type="bool"),
    invalid_keywords=dict(type="list", elements="str", no_log=False),
    valid_topics=dict(type="list", elements="str"),
)
ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    usage_tracking_config=dict(type="dict", options=dict(enabled=dict(type="bool", required=True))),
    rate_limits=dict(type="list", elements="dict", options=dict(
        calls=dict(type="int"),
        tokens=dict(type="int", no_log=False),
        key=dict(type="str", default="endpoint", choices=["endpoint", "user", "user_group", "service_principal"]),
        principal=dict(type="str"),
        renewal_period=dict(type="str", default="minute", choices=["minute"]),
    ), required_one_of=[["calls", "tokens"]]),
    guardrails=dict(type="dict", options=dict(input=dict(type="dict", options=GUARDRAIL),
                                              output=dict(type="dict", options=GUARDRAIL))),
    inference_table_config=dict(type="dict", options=dict(
        enabled=dict(type="bool", required=True),
        catalog_name=dict(type="str"),
        schema_name=dict(type="str"),
        table_name_prefix=dict(type="str"),
    ), required_if=[["enabled", True, ["catalog_name", "schema_name"]]]),
    fallback_config=dict(type="dict", options=dict(enabled=dict(type="bool", required=True))),
)


def find(module):
    with module.api_errors("get", "serving endpoint", module.params["name"]):
        return get_endpoint(module.client(), module.params["name"])


def ensure_absent(module, endpoint):
    if endpoint is None:
        return dict(changed=False, changes=[],
                    msg="serving endpoint %s does not exist: nothing to remove" % module.params["name"])
    return configure(module, endpoint, {})


def ensure_present(module, endpoint):
    name = module.params["name"]
    if endpoint is None:
        if not module.check_mode:
            module.fail_json(msg="configure %s %s: the endpoint does not exist" % (RESOURCE, name),
                             status=404, error_code="RESOURCE_DOES_NOT_EXIST")
        module.warn("serving endpoint %s does not exist (yet); its AI gateway would be configured once it does"
                    % name)
        return dict(changed=True, changes=["update"], msg="%s %s would be configured" % (RESOURCE, name))
    return configure(module, endpoint, dict((k, module.params[k]) for k in CONFIG_OPTIONS))


def configure(module, endpoint, wanted):
    """Make the endpoint's whole AI Gateway configuration `wanted` (module options; {} removes it all)."""
    name = module.params["name"]
    client = module.client()
    actual = normalise_ai_gateway(endpoint.get("ai_gateway"))
    desired = fill_server_defaults(normalise_ai_gateway(wanted), actual)
    if desired != actual and not module.check_mode:
        # While an endpoint update runs the service refuses this write (409): let it end, as
        # serving_endpoint does before its config update, and compare with what it left.
        with module.api_errors("wait for the running update of", "serving endpoint", name):
            endpoint = settled(client, name, endpoint, CONFLICT_WAIT)
        actual = normalise_ai_gateway(endpoint.get("ai_gateway"))
        desired = fill_server_defaults(normalise_ai_gateway(wanted), actual)
    if desired == actual:
        return dict(changed=False, before=actual, after=actual, ai_gateway=endpoint.get("ai_gateway") or {},
                    changes=[], msg="%s %s is up to date" % (RESOURCE, name))

    moves_table = inference_table_moves(desired, actual)
    changes = (["disable inference table"] if moves_table else []) + ["update"]
    result = endpoint.get("ai_gateway") or {}
    if not module.check_mode:
        path = endpoint_path(name, "/ai-gateway")
        with module.api_errors("update", RESOURCE, name):
            if moves_table:
                first = without_inference_table(actual)
                when_not_updating(client, name, CONFLICT_WAIT, lambda: client.put(path, put_body(first, actual)))
                actual_now = normalise_ai_gateway(first)
            else:
                actual_now = actual
            result = when_not_updating(client, name, CONFLICT_WAIT, lambda: client.put(path, put_body(desired, actual_now)))
    verb = "would be updated" if module.check_mode else "updated"
    return dict(changed=True, before=actual, after=desired, ai_gateway=result, changes=changes,
                msg="%s %s %s%s" % (RESOURCE, name, verb, " (inference table disabled first to move it)"
                                    if moves_table else ""))


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(find, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
