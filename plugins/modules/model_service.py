#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: model_service
short_description: Create, update or delete a Unity AI Gateway model service
version_added: 1.0.0
description:
  - A model service is a Unity Catalog securable (C(<catalog>.<schema>.<name>)) that coding agents query at
    C(https://<workspace>/ai-gateway/anthropic) with C(model) set to its full name. It routes requests to
    destinations - a pay-per-token Databricks foundation model, an external model through a
    M(databricks_claude.gateway.model_provider_service), or a provisioned-throughput serving endpoint - split
    by traffic percentage, with ordered fallback destinations, rate limits and an inference table.
  - Updates are granular - only the C(update_mask) paths that differ are written (C(comment),
    C(config.routing.destinations), C(config.routing.fallback.destinations), C(config.rate_limits),
    C(config.inference_table)) - and conditional on the etag of the read; if someone changed the service
    in between, it is read again once and the update retried.
  - Fields the service manages (etag, timestamps, owner, C(is_deleted), a provisioned-throughput
    destination's resolved C(model), an inference table's C(table), C(native_api_types) defaulted from the
    provider's targets) never count as a difference.
  - Query access is a Unity Catalog privilege (C(EXECUTE), with C(USE_CATALOG) and C(USE_SCHEMA)); grant it
    with M(databricks_claude.gateway.grants).
extends_documentation_fragment:
  - databricks_claude.gateway.connection
  - databricks_claude.gateway.unity
  - databricks_claude.gateway.unity.rate_limits
  - databricks_claude.gateway.unity.inference_table
  - databricks_claude.gateway.attributes
  - databricks_claude.gateway.attributes.action_group
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  state:
    description:
      - V(present) creates the model service or updates what differs from the options given.
      - V(absent) deletes it (its grants go with it).
    type: str
    choices: [present, absent]
    default: present
  destinations:
    description:
      - Where requests go; required with O(state=present). At most 10. With more than one, every destination
        needs O(destinations[].traffic_percentage) and they add up to 100.
      - Compared in any order.
    type: list
    elements: dict
    suboptions: &destination
      name:
        description:
          - Label of the destination. Defaults to the last part of O(destinations[].model), or the serving
            endpoint's name.
        type: str
      type:
        description:
          - V(pay_per_token) - a Databricks foundation model, O(destinations[].model) naming its Unity Catalog
            model (C(system.ai.databricks-claude-sonnet-4-5)).
          - V(external_model) - O(destinations[].model) is the provider's model ID (C(claude-sonnet-4-5))
            reached through O(destinations[].model_provider_service).
          - V(provisioned_throughput) - the provisioned-throughput serving endpoint
            O(destinations[].serving_endpoint).
          - Defaults to the type the other fields imply.
        type: str
        choices: [pay_per_token, external_model, provisioned_throughput]
      model:
        description: The Unity Catalog model (pay-per-token) or the provider's model ID (external model).
        type: str
      model_provider_service:
        description: Full name C(<catalog>.<schema>.<name>) of the model provider service of an external model.
        type: str
      native_api_types:
        description:
          - API types of an external model, such as C(anthropic/v1/messages). Unset takes the matching
            target's types of the model provider service.
        type: list
        elements: str
      serving_endpoint:
        description: Name of the provisioned-throughput serving endpoint; it must exist.
        type: str
      traffic_percentage:
        description: Share of the requests, 0 to 100. Not for fallback destinations.
        type: int
  fallback_destinations:
    description:
      - Destinations tried, in this order, when a primary one fails; at most 5. Not set means left as they
        are; an empty list removes them.
    type: list
    elements: dict
    suboptions: *destination
seealso:
  - module: databricks_claude.gateway.model_provider_service
  - module: databricks_claude.gateway.grants
  - module: databricks_claude.gateway.model_service_info
author:
  - databricks_claude.gateway contributors (@databricks-claude)
"""

EXAMPLES = r"""
- name: Claude Sonnet for Claude Code, 80 % pay-per-token, 20 % through Anthropic directly
  databricks_claude.gateway.model_service:
    catalog: main
    schema: ai
    name: claude-sonnet
    comment: Claude Code, sonnet slot
    destinations:
      - model: system.ai.databricks-claude-sonnet-4-5
        traffic_percentage: 80
      - model_provider_service: main.ai.anthropic
        model: claude-sonnet-4-5
        traffic_percentage: 20
    fallback_destinations:
      - model_provider_service: main.ai.anthropic
        model: claude-haiku-4-5
    rate_limits:
      - key: user_default
        requests: 60
        tokens: 400000
      - key: service
        requests: 1000
      - key: user_group
        principal: claude-code-developers
        tokens: 50000000
        renewal_period: hour
    inference_table:
      catalog_name: main
      schema_name: ai

- name: A provisioned-throughput endpoint behind a model service
  databricks_claude.gateway.model_service:
    catalog: main
    schema: ai
    name: claude-opus
    destinations:
      - serving_endpoint: claude-opus-pt

- name: Remove it
  databricks_claude.gateway.model_service:
    catalog: main
    schema: ai
    name: claude-opus
    state: absent
"""

RETURN = r"""
model_service:
  description:
    - The model service as the service returned it after the change (as read before it, in check mode; the
      create body when check mode would create it; empty when deleted).
  returned: always
  type: dict
  sample:
    name: model-services/main.ai.claude-sonnet
    etag: 3q2+7wAAAAA=
    config:
      routing:
        destinations:
          - name: databricks-claude-sonnet-4-5
            destination_type: DESTINATION_TYPE_PAY_PER_TOKEN_FOUNDATION_MODEL
            pay_per_token_config:
              model: models/system.ai.databricks-claude-sonnet-4-5
full_name:
  description: The model service's full name, the C(model) clients send.
  returned: always
  type: str
  sample: main.ai.claude-sonnet
changes:
  description: C(create), C(delete), or the update_mask paths written (that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [config.rate_limits]
msg:
  description: What the module did, in words.
  returned: always
  type: str
  sample: model service main.ai.claude-sonnet updated
status:
  description: HTTP status of the failed call.
  returned: failure
  type: int
  sample: 409
error_code:
  description: The service's error code of the failed call.
  returned: failure
  type: str
  sample: ABORTED
"""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.model_service_config import (
    actual_paths,
    create_body,
    desired_paths,
    destination_problems,
    fill_server_defaults,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_api import MODEL_SERVICE
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_config import (
    inference_table_refusal,
    rate_limit_problems,
    service_argument_spec,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_service import ServiceTask

DESTINATION = dict(
    name=dict(type="str"),
    type=dict(type="str", choices=["pay_per_token", "external_model", "provisioned_throughput"]),
    model=dict(type="str"),
    model_provider_service=dict(type="str"),
    native_api_types=dict(type="list", elements="str"),
    serving_endpoint=dict(type="str"),
    traffic_percentage=dict(type="int"),
)
ARGUMENT_SPEC = service_argument_spec(
    destinations=dict(type="list", elements="dict", options=DESTINATION),
    fallback_destinations=dict(type="list", elements="dict", options=DESTINATION),
)


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                              required_if=[["state", "present", ["destinations"]]])
    params = module.params
    desired = {}
    if params["state"] == "present":
        problems = (destination_problems(params["destinations"], "destinations")
                    + destination_problems(params["fallback_destinations"], "fallback_destinations")
                    + rate_limit_problems(params["rate_limits"]))
        if problems:
            module.fail_json(msg="invalid options: %s" % "; ".join(problems))
        desired = desired_paths(params, params["name"])

    def compare(service):
        actual = fill_server_defaults(desired, actual_paths(service, params["name"]))
        return actual, inference_table_refusal(desired, actual)

    task = ServiceTask(MODEL_SERVICE, desired, compare, create_body)
    module.run(task.find, task.ensure_present, task.ensure_absent)


if __name__ == "__main__":
    main()
