# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Desired vs actual for an object's access control list (the Permissions API).

GET .../permissions/<type>/<id> lists, per principal, every level it holds: direct grants and
ones inherited (e.g. workspace admins' CAN_MANAGE). Only direct grants can be set, so only
they are compared. A principal is a user, a group or a service principal, named by
user_name / group_name / service_principal_name (an application ID).

How a module uses it:

    desired = desired_grants(module.params["access_control_list"])     # {(kind, name): level}
    actual = direct_grants(client.get(path))
    body = grants_patch(desired, actual)           # PATCH: only what differs; None if nothing
    body = grants_replacement(desired, actual)     # PUT (purge): the exact list; None if equal
    method, body, after = grants_update(desired, actual, purge)    # which of the two, and what it leaves
"""

from __future__ import annotations

PRINCIPAL_KINDS = ("user_name", "group_name", "service_principal_name")


def principal_of(entry):
    """(kind, name) of an ACL entry."""
    for kind in PRINCIPAL_KINDS:
        if entry.get(kind):
            return kind, entry[kind]
    return None


def desired_grants(acl):
    return dict((principal_of(e), e["permission_level"]) for e in acl or [])


def direct_grants(permissions):
    """{(kind, name): level} of the direct (not inherited) grants in a GET permissions response."""
    grants = {}
    for entry in (permissions or {}).get("access_control_list") or []:
        principal = principal_of(entry)
        levels = [p["permission_level"] for p in entry.get("all_permissions") or [] if not p.get("inherited")]
        if principal and levels:
            grants[principal] = levels[0] if len(levels) == 1 else sorted(levels)
    return grants


def acl_entries(grants):
    """{(kind, name): level} -> the API's access_control_list, in a stable order (also what diffs and results show)."""
    return [{kind: name, "permission_level": level} for (kind, name), level in sorted(grants.items())]


def grants_patch(desired, actual):
    """PATCH body adding or changing the grants that differ; None when all desired grants are in place."""
    todo = dict((p, level) for p, level in desired.items() if actual.get(p) != level)
    return {"access_control_list": acl_entries(todo)} if todo else None


def grants_replacement(desired, actual):
    """PUT body making the direct grants exactly `desired`; None when they already are."""
    return None if desired == actual else {"access_control_list": acl_entries(desired)}


def grants_update(desired, actual, purge=False):
    """(method, body or None when nothing differs, the direct grants a read shows after it: check mode's answer)."""
    if purge:
        return "PUT", grants_replacement(desired, actual), dict(desired)
    after = dict(actual)
    after.update(desired)
    return "PATCH", grants_patch(desired, actual), after
