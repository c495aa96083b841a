#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: federation_policy_info
short_description: Read Databricks OAuth token federation policies
version_added: 1.0.0
description:
  - Returns the account-wide OAuth federation policies, or those of one service principal.
  - Read-only; never changes anything.
author:
  - databricks_claude.gateway contributors (@databricks-claude)
extends_documentation_fragment:
  - databricks_claude.gateway.connection
  - databricks_claude.gateway.attributes
  - databricks_claude.gateway.attributes.action_group
  - databricks_claude.gateway.attributes.info_module
options:
  policy_id:
    description:
      - Return only this policy (an empty list if it does not exist).
    type: str
  service_principal_id:
    description:
      - Read the policies of this service principal (its numeric Databricks ID) instead of the account-wide ones.
    type: int
  issuer:
    description:
      - Return only policies whose issuer is exactly this.
    type: str
seealso:
  - module: databricks_claude.gateway.federation_policy
"""

EXAMPLES = r"""
- name: Which identity providers does the account trust?
  databricks_claude.gateway.federation_policy_info:
    profile: account-admin
  register: trusted

- name: Show their issuers
  ansible.builtin.debug:
    msg: "{{ trusted.policies | map(attribute='oidc_policy.issuer') | list }}"
"""

RETURN = r"""
policies:
  description: The matching policies, as the service returns them.
  returned: always
  type: list
  elements: dict
  sample:
    - name: accounts/acc-1/federationPolicies/entra-claude-gateway
      policy_id: entra-claude-gateway
      uid: 6f1c1c52-7a3b-4a39-9d0e-0d3c2f1a9b11
      create_time: "2026-11-28T17:00:00.000000Z"
      update_time: "2026-11-28T17:00:00.000000Z"
      oidc_policy:
        issuer: https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0
        audiences: [11111111-1111-1111-1111-111111111111]
        subject_claim: preferred_username
"""

from ansible_collections.databricks_claude.gateway.plugins.module_utils import federation
from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule


ARGUMENT_SPEC = dict(
    policy_id=dict(type="str"),
    service_principal_id=dict(type="int"),
    issuer=dict(type="str"),
)


def find(module):
    """The policies the options select."""
    params = module.params
    client = module.client(account=True)
    sp_id = params["service_principal_id"]
    if params["policy_id"]:
        with module.api_errors("get", "federation policy", params["policy_id"]):
            policy = client.get(federation.policy_path(client.account_id, params["policy_id"], sp_id), missing_ok=True)
        policies = [policy] if policy else []
    else:
        with module.api_errors("list", "federation policies of", "service principal %s" % sp_id if sp_id
                               else "account %s" % client.account_id):
            policies = federation.list_policies(client, sp_id)
    if params["issuer"]:
        policies = federation.with_issuer(policies, params["issuer"])
    return policies


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_result(False, policies=find(module))


if __name__ == "__main__":
    main()
