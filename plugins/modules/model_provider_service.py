#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: model_provider_service
short_description: Create, update or delete a Unity AI Gateway model provider service
version_added: 1.0.0
description:
  - A model provider service is a Unity Catalog securable (C(<catalog>.<schema>.<name>)) holding how to
    reach an external model provider - Anthropic, Amazon Bedrock, OpenAI and the others the API knows - and
    which of its models may be routed to. M(databricks_claude.gateway.model_service) destinations refer to it.
  - Credentials are given by reference only - a Unity Catalog secret (O(api_key_secret)) or a Unity Catalog
    service credential (O(service_credential)) - so no secret passes through the task and every field can be
    compared with what the service shows.
  - Updates are granular (C(update_mask) paths C(comment), C(config.provider), C(config.targets),
    C(config.allow_all_targets), C(config.rate_limits), C(config.inference_table)) and conditional on the
    etag of the read, re-read once on a conflict. The provider cannot change; delete and create instead.
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
      - V(present) creates the model provider service or updates what differs from the options given.
      - V(absent) deletes it; model services still routing to it keep the destination, marked deleted.
    type: str
    choices: [present, absent]
    default: present
  provider:
    description: The external model provider. Cannot change once the service exists.
    type: str
    choices: [amazon_bedrock, anthropic, azure_openai, bedrock_mantle, custom, gemini_enterprise, microsoft_foundry, openai]
    default: anthropic
  api_key_secret:
    description:
      - The Unity Catalog secret holding the provider's API key, C(<catalog>.<schema>.<secret>) (or
        C(secrets/<catalog>.<schema>.<secret>)). Read at request time under the service owner's access, so
        rotating the secret needs no change here.
      - For V(anthropic), V(openai), V(custom), V(azure_openai), V(gemini_enterprise), V(microsoft_foundry).
    type: str
  service_credential:
    description:
      - Name of the Unity Catalog service credential to authenticate with (C(<name>) or C(credentials/<name>)),
        for example an IAM role for V(amazon_bedrock).
      - For V(amazon_bedrock), V(bedrock_mantle), V(azure_openai), V(gemini_enterprise), V(microsoft_foundry).
    type: str
  region:
    description: Cloud region of V(amazon_bedrock), V(bedrock_mantle) or V(gemini_enterprise), such as C(us-east-1).
    type: str
  provider_config:
    description:
      - The provider's config object in the API's own shape (for example C(direct.base_url) for V(openai), or
        C(direct.aws_access_key) for V(amazon_bedrock)), laid over what O(api_key_secret),
        O(service_credential) and O(region) build. Secrets in it must be secret references, not plaintext.
    type: dict
  targets:
    description:
      - The provider's models that model services may route to. Not set means left as they are.
    type: list
    elements: dict
    suboptions:
      model:
        description: The provider's model ID, such as C(claude-sonnet-4-5).
        type: str
        required: true
      native_api_types:
        description: The API types the model speaks, such as C(anthropic/v1/messages).
        type: list
        elements: str
        required: true
      endpoint_route:
        description: Path appended to a V(custom) provider's base URL for this model.
        type: str
  allow_all_targets:
    description: Also allow every model of the provider's own catalog, not only O(targets). Not for V(custom).
    type: bool
seealso:
  - module: databricks_claude.gateway.model_service
  - module: databricks_claude.gateway.grants
author:
  - databricks_claude.gateway contributors (@databricks-claude)
"""

EXAMPLES = r"""
- name: Anthropic with the API key in a Unity Catalog secret
  databricks_claude.gateway.model_provider_service:
    catalog: main
    schema: ai
    name: anthropic
    provider: anthropic
    api_key_secret: main.ai.anthropic_api_key
    targets:
      - model: claude-sonnet-4-5
        native_api_types: [anthropic/v1/messages]
      - model: claude-haiku-4-5
        native_api_types: [anthropic/v1/messages]

- name: Amazon Bedrock through a Unity Catalog service credential
  databricks_claude.gateway.model_provider_service:
    catalog: main
    schema: ai
    name: bedrock
    provider: amazon_bedrock
    service_credential: bedrock-invoke-role
    region: us-east-1
    allow_all_targets: true
"""

RETURN = r"""
model_provider_service:
  description:
    - The model provider service as the service returned it after the change (as read before it, in check
      mode; the create body when check mode would create it; empty when deleted).
  returned: always
  type: dict
  sample:
    name: model-provider-services/main.ai.anthropic
    config:
      provider_type: EXTERNAL_MODEL_PROVIDER_TYPE_ANTHROPIC
      anthropic:
        direct:
          api_key:
            secret_reference:
              name: secrets/main.ai.anthropic_api_key
full_name:
  description: The model provider service's full name, as model service destinations name it.
  returned: always
  type: str
  sample: main.ai.anthropic
changes:
  description: C(create), C(delete), or the update_mask paths written (that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [config.targets]
msg:
  description: What the module did, in words.
  returned: always
  type: str
  sample: model provider service main.ai.anthropic created
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

from ansible_collections.databricks_claude.gateway.plugins.module_utils.model_provider_config import (
    LOCATIONS,
    PROVIDERS,
    actual_paths,
    create_body,
    desired_paths,
    fill_provider,
    provider_of,
    provider_problems,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_api import MODEL_PROVIDER_SERVICE
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_config import (
    inference_table_refusal,
    rate_limit_problems,
    service_argument_spec,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_service import ServiceTask

ARGUMENT_SPEC = service_argument_spec(
    provider=dict(type="str", default="anthropic", choices=list(PROVIDERS)),
    api_key_secret=dict(type="str", no_log=False),
    service_credential=dict(type="str"),
    region=dict(type="str"),
    provider_config=dict(type="dict"),
    targets=dict(type="list", elements="dict", options=dict(
        model=dict(type="str", required=True),
        native_api_types=dict(type="list", elements="str", required=True),
        endpoint_route=dict(type="str"),
    )),
    allow_all_targets=dict(type="bool"),
)


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    provider = params["provider"]
    desired = {}
    if params["state"] == "present":
        problems = provider_problems(params) + rate_limit_problems(params["rate_limits"])
        if problems:
            module.fail_json(msg="invalid options: %s" % "; ".join(problems))
        desired = desired_paths(params, params["name"])

    def compare(service):
        actual = fill_provider(desired, actual_paths(service, params["name"]))
        now = provider_of((service.get("config") or {}).get("provider_type"))
        if desired and now != provider:
            return actual, ("its provider is %s and cannot change to %s; delete it (state: absent) and create it "
                            "again" % (now, provider))
        return actual, inference_table_refusal(desired, actual)

    task = ServiceTask(MODEL_PROVIDER_SERVICE, desired, compare, lambda d: create_body(d, provider), LOCATIONS[provider])
    module.run(task.find, task.ensure_present, task.ensure_absent)


if __name__ == "__main__":
    main()
