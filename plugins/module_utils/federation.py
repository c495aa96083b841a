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

from collections import namedtuple

OIDC_FIELDS = ("issuer", "audiences", "subject_claim", "subject", "jwks_json", "jwks_uri")
# A managed field: its update_mask path, the top-level field a PATCH replaces, and its key inside
# oidc_policy (None for the top-level description).
Field = namedtuple("Field", "path top key")
FIELDS = (Field("description", "description", None),) + tuple(
    Field("oidc_policy." + f, "oidc_policy", f) for f in OIDC_FIELDS)
BY_PATH = dict((f.path, f) for f in FIELDS)
TOP_FIELDS = ("description", "oidc_policy")  # what a PATCH replaces whole, in update_mask order
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


def _holder(policy, field):
    """The dict of `policy` that holds `field`, and the field's key in it."""
    return (policy, field.top) if field.key is None else (policy.get(field.top) or {}, field.key)


def _value(policy, field):
    holder, key = _holder(policy, field)
    return holder.get(key)


def _managed(desired, field):
    holder, key = _holder(desired, field)
    return key in holder


def _same(field, want, have):
    if field.key == "audiences":
        return sorted(want or []) == sorted(have or [])
    if field.key == "jwks_json" and want and have:
        try:
            return json.loads(want) == json.loads(have)
        except ValueError:
            pass
    if field.top == "description":  # the API treats an empty description as none
        return (want or None) == (have or None)
    return want == have


def changed_paths(desired, current):
    """The update_mask paths whose desired value differs from the current policy."""
    return [f.path for f in FIELDS if _managed(desired, f) and not _same(f, _value(desired, f), _value(current, f))]


def update_mask(paths):
    """The top-level fields a PATCH replaces for the changed `paths`: description, oidc_policy."""
    tops = set(BY_PATH[p].top for p in paths)
    return [f for f in TOP_FIELDS if f in tops]


def _body(policy, fields):
    return dict((f, policy[f]) for f in fields if policy.get(f) not in (None, ""))


def update_body(desired, current, mask):
    """The PATCH body: each field of `mask` whole, the desired values over the current ones.

    A field managed as absent is left out of the body, which clears it.
    """
    return _body(predict(current, desired, changed_paths(desired, current)), mask)


def create_body(desired):
    """The POST body: the desired policy without the fields managed as absent."""
    return _body(predict({}, desired, [f.path for f in FIELDS if _managed(desired, f)]), TOP_FIELDS)


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
    for field in (BY_PATH[p] for p in paths):
        value = _value(desired, field)
        holder, key = (after, field.top) if field.key is None else (oidc, field.key)
        if value is None:
            holder.pop(key, None)
        else:
            holder[key] = value
    return after
