#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: federation_policy
short_description: Manage Databricks OAuth token federation policies
version_added: 1.0.0
description:
  - Create, update or delete an account-wide OAuth federation policy, or a federation policy of one service
    principal. A policy tells Databricks which identity provider's tokens it accepts in an RFC 8693 token
    exchange, and which token claim names the Databricks user.
  - Updates are a single C(PATCH) that replaces each top-level field with a difference (C(description),
    C(oidc_policy)) as a whole, as the Databricks Terraform provider does; a field the policy should no longer
    have (for example C(jwks_uri) after switching to O(jwks_json)) is left out, which clears it.
  - Options left unset are not managed; the policy keeps its current value (or the service's default,
    such as O(audiences=[<account id>]) and O(subject_claim=sub)).
  - The policy is identified by O(policy_id) when it is given. Without O(policy_id) it is the one policy
    (of the account, or of O(service_principal_id)) whose issuer is O(issuer); the task fails if several
    match, and a new policy gets an ID chosen by Databricks. Give O(policy_id) to manage several policies
    for one issuer and to spare a list call per run.
  - Needs the account host (for example C(https://accounts.cloud.databricks.com)) and O(account_id),
    and an account admin's credentials.
author:
  - databricks_claude.gateway contributors (@databricks-claude)
extends_documentation_fragment:
  - databricks_claude.gateway.connection
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
      - V(present) creates the policy or updates it to match; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  policy_id:
    description:
      - The policy's ID, 2 to 63 lowercase letters, digits, C(-) or C(/). Chosen by Databricks when not set.
    type: str
  service_principal_id:
    description:
      - Manage a federation policy of this service principal instead of an account-wide one.
      - The numeric Databricks ID of the service principal, not its application ID.
    type: int
  issuer:
    description:
      - The token issuer, exactly as in the C(iss) claim, an https URL. For Microsoft Entra ID v2.0 tokens
        C(https://login.microsoftonline.com/<tenant id>/v2.0).
      - Required with O(state=present), and to find the policy when O(policy_id) is not set.
    type: str
  audiences:
    description:
      - Accepted token audiences (C(aud) claim); a token matches if it names at least one. Order does not matter.
      - For Entra ID v2.0 tokens this is the client ID of the app registration the tokens are issued for.
    type: list
    elements: str
  subject_claim:
    description:
      - The token claim that holds the subject. For account-wide policies its value must be the Databricks
        username, for example C(preferred_username) or C(email) for Entra ID (C(sub) and C(oid) are GUIDs).
    type: str
  subject:
    description:
      - The required subject (value of O(subject_claim)) of a service principal's tokens.
      - Required for service principal policies, and not allowed for account-wide policies.
    type: str
  jwks_json:
    description:
      - The issuer's public keys as a JWKS JSON document. Leave unset (recommended) to let Databricks fetch
        them from the issuer's well-known endpoint. Setting it clears O(jwks_uri).
    type: str
  jwks_uri:
    description:
      - URL of the issuer's JWKS. Leave unset (recommended) to use the issuer's well-known endpoint.
        Setting it clears O(jwks_json).
    type: str
  description:
    description:
      - A description of the policy.
    type: str
notes:
  - The account allows at most 20 account-wide policies, and 20 per service principal.
seealso:
  - module: databricks_claude.gateway.federation_policy_info
"""

EXAMPLES = r"""
- name: Trust Entra ID tokens issued for the gateway's app registration, as Databricks users
  databricks_claude.gateway.federation_policy:
    host: https://accounts.cloud.databricks.com
    account_id: "{{ databricks_account_id }}"
    policy_id: entra-claude-gateway
    issuer: https://login.microsoftonline.com/{{ entra_tenant_id }}/v2.0
    audiences:
      - "{{ entra_client_id }}"
    subject_claim: preferred_username
    description: Claude Code gateway sign-in

- name: Let a CI workload act as a service principal
  databricks_claude.gateway.federation_policy:
    profile: account-admin
    service_principal_id: 1234567
    policy_id: github-deploy
    issuer: https://token.actions.githubusercontent.com
    audiences: [databricks]
    subject: repo:example/deploy:environment:prod

- name: Remove the policy
  databricks_claude.gateway.federation_policy:
    profile: account-admin
    policy_id: entra-claude-gateway
    state: absent
"""

RETURN = r"""
policy:
  description: The policy as the service returns it after the task (predicted in check mode); empty when absent.
  returned: always
  type: dict
  sample:
    name: accounts/acc-1/federationPolicies/entra-claude-gateway
    policy_id: entra-claude-gateway
    uid: 6f1c1c52-7a3b-4a39-9d0e-0d3c2f1a9b11
    description: Claude Code gateway sign-in
    create_time: "2026-11-28T17:00:00.000000Z"
    update_time: "2026-11-28T17:00:00.000000Z"
    oidc_policy:
      issuer: https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0
      audiences: [11111111-1111-1111-1111-111111111111]
      subject_claim: preferred_username
update_mask:
  description:
    - The top-level fields a PATCH replaced as a whole (or would replace in check mode); empty when nothing was
      updated. The diff shows which values inside them changed.
  returned: always
  type: list
  elements: str
  sample: [oidc_policy]
msg:
  description: What the task did.
  returned: always
  type: str
  sample: federation policy entra-claude-gateway updated
"""

from ansible_collections.databricks_claude.gateway.plugins.module_utils import federation
from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule

RESOURCE = "federation policy"


ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["present", "absent"], default="present"),
    policy_id=dict(type="str"),
    service_principal_id=dict(type="int"),
    issuer=dict(type="str"),
    audiences=dict(type="list", elements="str"),
    subject_claim=dict(type="str"),
    subject=dict(type="str"),
    jwks_json=dict(type="str"),
    jwks_uri=dict(type="str"),
    description=dict(type="str"),
)


def policy_name(module, policy=None):
    """The name messages use: the policy's id when known, else how the task looks for it."""
    if policy:
        return policy["policy_id"]
    return module.params["policy_id"] or "for issuer %s" % module.params["issuer"]


def find(module):
    """The current policy, None if absent."""
    params = module.params
    client = module.client(account=True)
    sp_id = params["service_principal_id"]
    name = policy_name(module)
    if params["policy_id"]:
        with module.api_errors("get", RESOURCE, name):
            return client.get(federation.policy_path(client.account_id, name, sp_id), missing_ok=True)
    with module.api_errors("list", RESOURCE, name):
        matches = federation.with_issuer(federation.list_policies(client, sp_id), params["issuer"])
    if len(matches) > 1:
        module.fail_json(msg="find %s %s: %d policies match (%s); set policy_id to choose one" % (
            RESOURCE, name, len(matches), ", ".join(p["policy_id"] for p in matches)))
    return matches[0] if matches else None


def validate(module):
    params = module.params
    if params["state"] == "present" and not params["issuer"]:
        module.fail_json(msg="issuer is required with state=present")
    if not params["policy_id"] and not params["issuer"]:
        module.fail_json(msg="set policy_id or issuer to identify the federation policy")
    if params["service_principal_id"] is None and params["subject"] is not None:
        module.fail_json(msg="subject applies to service principal policies only: "
                             "set service_principal_id, or remove subject (use subject_claim for account-wide policies)")
    if params["state"] == "present" and params["service_principal_id"] is not None and not params["subject"]:
        module.fail_json(msg="subject is required for a service principal federation policy")


def ensure_absent(module, current):
    name = policy_name(module, current)
    if current is None:
        return dict(changed=False, policy={}, update_mask=[], msg="%s %s already absent" % (RESOURCE, name))
    if not module.check_mode:
        client = module.client(account=True)
        path = federation.policy_path(client.account_id, current["policy_id"], module.params["service_principal_id"])
        with module.api_errors("delete", RESOURCE, name):
            client.delete(path)
    return dict(changed=True, before=federation.comparable(current), after=None, policy={}, update_mask=[],
                msg="%s %s deleted" % (RESOURCE, name))


def ensure_present(module, current):
    params = module.params
    client = module.client(account=True)
    sp_id = params["service_principal_id"]
    name = policy_name(module, current)
    desired = federation.desired_policy(params)
    if current is None:
        after = federation.predict({}, desired, federation.changed_paths(desired, {}))
        if not module.check_mode:
            query = {"policy_id": params["policy_id"]} if params["policy_id"] else None
            with module.api_errors("create", RESOURCE, name):
                after = client.post(federation.collection_path(client.account_id, sp_id),
                                    federation.create_body(desired), query=query)
        return dict(changed=True, before=None, after=federation.comparable(after), policy=after, update_mask=[],
                    msg="%s %s created" % (RESOURCE, after.get("policy_id", name)))
    paths = federation.changed_paths(desired, current)
    if not paths:
        return dict(changed=False, before=federation.comparable(current), after=federation.comparable(current),
                    policy=current, update_mask=[], msg="%s %s is up to date" % (RESOURCE, name))
    after = federation.predict(current, desired, paths)
    mask = federation.update_mask(paths)
    if not module.check_mode:
        with module.api_errors("update", RESOURCE, name):
            after = client.patch(federation.policy_path(client.account_id, current["policy_id"], sp_id),
                                 federation.update_body(desired, current, mask), query={"update_mask": ",".join(mask)})
    return dict(changed=True, before=federation.comparable(current), after=federation.comparable(after),
                policy=after, update_mask=mask, msg="%s %s updated" % (RESOURCE, name))


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=[("jwks_json", "jwks_uri")],
                              supports_check_mode=True)
    validate(module)
    module.run(find, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
