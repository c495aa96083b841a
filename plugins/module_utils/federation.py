# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""OAuth federation policies: where they live, and what differs between desired and actual.

Shared by federation_policy and federation_policy_info. A policy is account-wide, or belongs
to one service principal (numeric id). `changed_paths` names the fields that differ, in the
API's path syntax. The PATCH itself replaces whole top-level fields, as the Terraform provider
does (update_mask=description,oidc_policy with the whole policy): the mask names `oidc_policy`
and the body carries all of it, so a field left out of it is cleared without relying on how the
service reads a sub-field path that is absent from the body.
Options the user leaves unset are not managed: the server's value (or its default, such as
audiences = [account id], subject_claim = sub) is kept and never reported as drift.
"""

from __future__ import annotations

import copy
import json

OIDC_FIELDS = ("issuer", "audiences", "subject_claim", "subject", "jwks_json", "jwks_uri")
# Every update_mask path, in the order the mask lists them.
PATHS = ("description",) + tuple("oidc_policy." + f for f in OIDC_FIELDS)
PAGE_SIZE = 100


def collection_path(account_id, service_principal_id=None):
    """The API path of the account's (or one service principal's) federation policies."""
    base = "/api/2.0/accounts/%s" % account_id
    if service_principal_id is not None:
        base += "/servicePrincipals/%s" % service_principal_id
    return base + "/federationPolicies"


def policy_path(account_id, policy_id, service_principal_id=None):
    return "%s/%s" % (collection_path(account_id, service_principal_id), policy_id)


def list_policies(client, service_principal_id=None):
    """All policies of the account (or SP), following next_page_token."""
    path = collection_path(client.account_id, service_principal_id)
    policies, query = [], {"page_size": PAGE_SIZE}
    while True:
        page = client.get(path, query=query)
        policies.extend(page.get("policies") or [])
        token = page.get("next_page_token")
        if not token:
            return policies
        query = {"page_size": PAGE_SIZE, "page_token": token}


def with_issuer(policies, issuer):
    return [p for p in policies if (p.get("oidc_policy") or {}).get("issuer") == issuer]


def desired_policy(params):
    """The managed part of the policy from module params: only the options the user set.

    Setting one of jwks_json / jwks_uri also manages the other as absent, because the
    service refuses a policy that has both.
    """
    oidc = dict((f, params[f]) for f in OIDC_FIELDS if params.get(f) is not None)
    if "jwks_json" in oidc:
        oidc["jwks_uri"] = None
    elif "jwks_uri" in oidc:
        oidc["jwks_json"] = None
    desired = {"oidc_policy": oidc}
    if params.get("description") is not None:
        desired["description"] = params["description"]
    return desired


def _value(policy, path):
    if path == "description":
        return policy.get("description")
    return (policy.get("oidc_policy") or {}).get(path.split(".", 1)[1])


def _managed(desired, path):
    if path == "description":
        return "description" in desired
    return path.split(".", 1)[1] in desired["oidc_policy"]


def _same(path, want, have):
    if path == "oidc_policy.audiences":
        return sorted(want or []) == sorted(have or [])
    if path == "oidc_policy.jwks_json" and want and have:
        try:
            return json.loads(want) == json.loads(have)
        except ValueError:
            pass
    if path == "description":  # the API treats an empty description as none
        return (want or None) == (have or None)
    return want == have


def changed_paths(desired, current):
    """The update_mask paths whose desired value differs from the current policy."""
    return [p for p in PATHS if _managed(desired, p) and not _same(p, _value(desired, p), _value(current, p))]


def update_mask(paths):
    """The top-level fields a PATCH replaces for the changed `paths`: description, oidc_policy."""
    return [f for f in ("description", "oidc_policy") if any(p.split(".", 1)[0] == f for p in paths)]


def _body(policy, fields):
    return dict((f, policy[f]) for f in fields if policy.get(f) not in (None, ""))


def update_body(desired, current, mask):
    """The PATCH body: each field of `mask` whole, the desired values over the current ones.

    A field managed as absent is left out of the body, which clears it.
    """
    return _body(predict(current, desired, changed_paths(desired, current)), mask)


def create_body(desired):
    """The POST body: the desired policy without the fields managed as absent."""
    return _body(predict({}, desired, [p for p in PATHS if _managed(desired, p)]), ("description", "oidc_policy"))


def comparable(policy):
    """The user-facing part of a policy (no ids or timestamps), for diffs and check-mode results."""
    if not policy:
        return {}
    result = {"oidc_policy": dict(policy.get("oidc_policy") or {})}
    if policy.get("description") is not None:
        result["description"] = policy["description"]
    return result


def predict(current, desired, paths):
    """The policy as it will read after a PATCH of `paths` (for check mode and --diff)."""
    after = copy.deepcopy(current)
    oidc = after.setdefault("oidc_policy", {})
    for path in paths:
        value = _value(desired, path)
        if path == "description":
            after["description"] = value
            if value is None:
                del after["description"]
        elif value is None:
            oidc.pop(path.split(".", 1)[1], None)
        else:
            oidc[path.split(".", 1)[1]] = value
    return after
