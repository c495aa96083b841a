#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: serving_endpoint_info
short_description: Read Databricks serving endpoints
version_added: 1.0.0
description:
  - Returns one serving endpoint in full (with O(name)) or a summary of every endpoint of the workspace.
  - Read-only; never changes anything.
extends_documentation_fragment:
  - databricks_claude.gateway.connection
  - databricks_claude.gateway.attributes
  - databricks_claude.gateway.attributes.action_group
  - databricks_claude.gateway.attributes.info_module
options:
  name:
    description:
      - Name of the endpoint to read. When unset, every endpoint is listed.
      - An endpoint that does not exist gives an empty RV(serving_endpoints), not a failure.
    type: str
  include_permissions:
    description:
      - Whether to add each returned endpoint's direct grants as C(access_control_list). Needs O(name).
    type: bool
    default: false
seealso:
  - module: databricks_claude.gateway.serving_endpoint
author:
  - databricks_claude.gateway contributors (@databricks-claude)
"""

EXAMPLES = r"""
- name: Read the Claude endpoint
  databricks_claude.gateway.serving_endpoint_info:
    name: claude-code-gateway
    include_permissions: true
  register: claude_endpoint

- name: Show whether it is ready
  ansible.builtin.debug:
    msg: "{{ claude_endpoint.serving_endpoints[0].state.ready | default('absent') }}"

- name: List every endpoint of the workspace
  databricks_claude.gateway.serving_endpoint_info:
  register: all_endpoints
"""

RETURN = r"""
serving_endpoints:
  description:
    - With O(name), a list of that one endpoint as the service returns it (empty when it does not exist);
      otherwise the summaries from the list API. Plaintext secrets never appear.
  returned: always
  type: list
  elements: dict
  sample:
    - name: claude-code-gateway
      id: 0c3b6b1e1b0a4c1f9f1e2d3c4b5a6978
      state:
        ready: READY
        config_update: NOT_UPDATING
      tags:
        - key: team
          value: platform
"""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule
from ansible_collections.databricks_claude.gateway.plugins.module_utils.permissions import acl_entries, direct_grants
from ansible_collections.databricks_claude.gateway.plugins.module_utils.serving_api import (
    endpoint_path,
    get_endpoint,
    permissions_path,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str"),
    include_permissions=dict(type="bool", default=False),
)


def find(module):
    """The named endpoint (with its direct grants if asked), or all endpoints of the workspace."""
    name = module.params["name"]
    client = module.client()
    if name is None:
        with module.api_errors("list", "serving endpoints", "of the workspace"):
            return client.get(endpoint_path()).get("endpoints") or []
    with module.api_errors("get", "serving endpoint", name):
        endpoint = get_endpoint(client, name)
    if endpoint is not None and module.params["include_permissions"]:
        with module.api_errors("get", "permissions of serving endpoint", name):
            endpoint["access_control_list"] = acl_entries(direct_grants(client.get(permissions_path(endpoint["id"]))))
    return [endpoint] if endpoint is not None else []


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                              required_if=[["include_permissions", True, ["name"]]])
    module.exit_result(False, serving_endpoints=find(module))


if __name__ == "__main__":
    main()
