#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: serving_endpoint_permissions
short_description: Grant users, groups and service principals access to a Databricks serving endpoint
version_added: 1.0.0
description:
  - Sets who may query, view or manage a serving endpoint (C(CAN_QUERY), C(CAN_VIEW), C(CAN_MANAGE)),
    including the preconfigured pay-per-token endpoints (C(databricks-claude-*)).
  - The endpoint is named by its name; the module looks up the id the Permissions API needs, unless
    O(endpoint_id) gives it.
  - Only direct grants are compared and set; inherited ones (such as the workspace admins' C(CAN_MANAGE))
    are left alone.
extends_documentation_fragment:
  - databricks_claude.gateway.connection
  - databricks_claude.gateway.attributes
  - databricks_claude.gateway.attributes.action_group
attributes:
  check_mode:
    support: full
    details:
      - If the endpoint does not exist yet, check mode reports a change and a warning instead of failing.
  diff_mode:
    support: full
options:
  name:
    description: Name of the serving endpoint.
    type: str
    required: true
  endpoint_id:
    description:
      - The endpoint's id when it is known already, for example C(serving_endpoint.id) as returned by a
        M(databricks_claude.gateway.serving_endpoint) task; saves looking it up by O(name), which is then
        used only in messages.
    type: str
  access_control_list:
    description:
      - The grants, one per principal. Give exactly one of O(access_control_list[].user_name),
        O(access_control_list[].group_name) and O(access_control_list[].service_principal_name) per entry.
    type: list
    elements: dict
    required: true
    suboptions:
      user_name:
        description: A user, by user name (usually the email address).
        type: str
      group_name:
        description: A workspace or account group, by name.
        type: str
      service_principal_name:
        description: A service principal, by application ID.
        type: str
      permission_level:
        description: The level granted.
        type: str
        required: true
        choices: [CAN_QUERY, CAN_VIEW, CAN_MANAGE]
  purge:
    description:
      - If V(false), the listed grants are added or changed and other direct grants are kept (one C(PATCH)).
      - If V(true), the direct grants become exactly the list (one C(PUT)); this also removes the endpoint
        creator's own C(CAN_MANAGE) unless it is listed.
    type: bool
    default: false
seealso:
  - module: databricks_claude.gateway.serving_endpoint
author:
  - databricks_claude.gateway contributors (@databricks-claude)
"""

EXAMPLES = r"""
- name: Developers may query the Claude endpoint
  databricks_claude.gateway.serving_endpoint_permissions:
    name: claude-code-gateway
    access_control_list:
      - group_name: developers
        permission_level: CAN_QUERY

- name: Exactly these grants on a pay-per-token endpoint
  databricks_claude.gateway.serving_endpoint_permissions:
    name: databricks-claude-sonnet-4-5
    purge: true
    access_control_list:
      - group_name: developers
        permission_level: CAN_QUERY
      - service_principal_name: 6f2a9c1e-0000-4000-8000-000000000000
        permission_level: CAN_MANAGE
"""

RETURN = r"""
endpoint_id:
  description: The endpoint's id, which the Permissions API is addressed by.
  returned: when the endpoint exists
  type: str
  sample: 0c3b6b1e1b0a4c1f9f1e2d3c4b5a6978
access_control_list:
  description: The direct grants after the change (before it, in check mode).
  returned: when the endpoint exists
  type: list
  elements: dict
  sample:
    - group_name: developers
      permission_level: CAN_QUERY
msg:
  description: What the module did, in words.
  returned: always
  type: str
  sample: permissions of serving endpoint claude-code-gateway updated
status:
  description: HTTP status of the failed call.
  returned: failure
  type: int
  sample: 404
error_code:
  description: The service's error code of the failed call.
  returned: failure
  type: str
  sample: RESOURCE_DOES_NOT_EXIST
"""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule
from ansible_collections.databricks_claude.gateway.plugins.module_utils.permissions import (
    PRINCIPAL_KINDS,
    acl_entries,
    desired_grants,
    direct_grants,
    grants_update,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.serving_api import (
    get_endpoint,
    permissions_path,
)

RESOURCE = "permissions of serving endpoint"

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    endpoint_id=dict(type="str"),
    access_control_list=dict(type="list", elements="dict", required=True, options=dict(
        user_name=dict(type="str"),
        group_name=dict(type="str"),
        service_principal_name=dict(type="str"),
        permission_level=dict(type="str", required=True, choices=["CAN_QUERY", "CAN_VIEW", "CAN_MANAGE"]),
    ), mutually_exclusive=[list(PRINCIPAL_KINDS)], required_one_of=[list(PRINCIPAL_KINDS)]),
    purge=dict(type="bool", default=False),
)


def find(module):
    """The endpoint ({"id": endpoint_id} when given), None if it does not exist."""
    if module.params["endpoint_id"]:
        return {"id": module.params["endpoint_id"]}
    with module.api_errors("get", "serving endpoint", module.params["name"]):
        return get_endpoint(module.client(), module.params["name"])


def ensure_present(module, endpoint):
    name = module.params["name"]
    client = module.client()
    if endpoint is None:
        if not module.check_mode:
            module.fail_json(msg="set %s %s: the endpoint does not exist" % (RESOURCE, name),
                             status=404, error_code="RESOURCE_DOES_NOT_EXIST")
        module.warn("serving endpoint %s does not exist (yet); its permissions would be set once it does" % name)
        return dict(changed=True, msg="%s %s would be set" % (RESOURCE, name))

    path = permissions_path(endpoint["id"])
    with module.api_errors("get", RESOURCE, name):
        actual = direct_grants(client.get(path))
    method, body, after = grants_update(desired_grants(module.params["access_control_list"]), actual,
                                        module.params["purge"])
    if body is None:
        return dict(changed=False, before=acl_entries(actual), after=acl_entries(actual), endpoint_id=endpoint["id"],
                    access_control_list=acl_entries(actual), msg="%s %s are up to date" % (RESOURCE, name))
    if not module.check_mode:
        with module.api_errors("update", RESOURCE, name):
            after = direct_grants(client.request(method, path, body))
    return dict(changed=True, before=acl_entries(actual), after=acl_entries(after), endpoint_id=endpoint["id"],
                access_control_list=acl_entries(after),
                msg="%s %s %s" % (RESOURCE, name, "would be updated" if module.check_mode else "updated"))


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(find, ensure_present)


if __name__ == "__main__":
    main()
