#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: model_service_info
short_description: Read one or all Unity AI Gateway model services of a schema
version_added: 1.0.0
description:
  - Returns model services as the service shows them (the C(FULL) view - destinations, inference table,
    rate-limit principals), one by name or all of a schema, following the list's pages.
extends_documentation_fragment:
  - databricks_claude.gateway.connection
  - databricks_claude.gateway.attributes
  - databricks_claude.gateway.attributes.action_group
  - databricks_claude.gateway.attributes.info_module
options:
  catalog:
    description: Catalog of the schema.
    type: str
    required: true
  schema:
    description: The schema.
    type: str
    required: true
  name:
    description: One model service's name in the schema; all of them if not set.
    type: str
seealso:
  - module: databricks_claude.gateway.model_service
author:
  - databricks_claude.gateway contributors (@databricks-claude)
"""

EXAMPLES = r"""
- name: All model services of main.ai
  databricks_claude.gateway.model_service_info:
    catalog: main
    schema: ai
  register: services

- name: Their full names
  ansible.builtin.debug:
    msg: "{{ services.model_services | map(attribute='name') | list }}"
"""

RETURN = r"""
model_services:
  description: The model services found (none when O(name) does not exist).
  returned: always
  type: list
  elements: dict
  sample:
    - name: model-services/main.ai.claude-sonnet
      comment: Claude Code, sonnet slot
      config:
        rate_limits:
          - key: RATE_LIMIT_KEY_USER_DEFAULT
            renewal_period: RATE_LIMIT_RENEWAL_PERIOD_MINUTE
            requests: 60
status:
  description: HTTP status of the failed call.
  returned: failure
  type: int
  sample: 404
error_code:
  description: The service's error code of the failed call.
  returned: failure
  type: str
  sample: SCHEMA_DOES_NOT_EXIST
"""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_api import (
    MODEL_SERVICE,
    full_name,
    get_service,
    list_services,
)

ARGUMENT_SPEC = dict(
    catalog=dict(type="str", required=True),
    schema=dict(type="str", required=True),
    name=dict(type="str"),
)


def find(module):
    """The named model service, or all of the schema's."""
    params = module.params
    client = module.client()
    if params["name"]:
        name = full_name(params["catalog"], params["schema"], params["name"])
        with module.api_errors("get", "model service", name):
            service = get_service(client, MODEL_SERVICE, name)
        return [service] if service else []
    schema = "%s.%s" % (params["catalog"], params["schema"])
    with module.api_errors("list", "model services of schema", schema):
        return list_services(client, MODEL_SERVICE, params["catalog"], params["schema"])


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_result(False, model_services=find(module))


if __name__ == "__main__":
    main()
