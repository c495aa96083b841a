# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# Simplified BSD License (see https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

"""Unity Catalog privileges on one securable: read the direct grants, plan the `changes` that make them so.

GET /api/2.1/unity-catalog/permissions/{type}/{full_name} lists only direct grants (inherited ones come
from the schema and catalog and are set there); PATCH takes `changes: [{principal, add, remove}]` (SDK
`GrantsAPI`). Reads are paged with `max_results=0` (a server-sized page; the SDK says unpaged reads will
be deprecated) until no `next_page_token` is left.

How a module uses it:

    actual = read_grants(client, "model_service", "main.ai.claude_code")     # {principal: set}
    changes = grant_changes({"developers": {"EXECUTE"}}, actual, exclusive=False)
    changes = revoke_changes({"developers": {"EXECUTE"}}, actual)             # state=absent
    if changes: client.patch(permissions_path(...), {"changes": changes})
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_api import BASE


def permissions_path(securable_type, securable_full_name):
    return "%s/permissions/%s/%s" % (BASE, quote(securable_type.lower(), safe=""),
                                     quote(securable_full_name, safe="."))


def direct_grants(response):
    """{principal: set of privileges} of a permissions response (or the page of one)."""
    grants = {}
    for assignment in (response or {}).get("privilege_assignments") or []:
        privileges = set(assignment.get("privileges") or [])
        if privileges:
            grants.setdefault(assignment["principal"], set()).update(privileges)
    return grants


def read_grants(client, securable_type, securable_full_name):
    path = permissions_path(securable_type, securable_full_name)
    query = {"max_results": 0}
    grants = {}
    while True:
        page = client.get(path, query=query)
        for principal, privileges in direct_grants(page).items():
            grants.setdefault(principal, set()).update(privileges)
        if not page.get("next_page_token"):
            return grants
        query = {"max_results": 0, "page_token": page["next_page_token"]}


def desired_grants(entries):
    """The module's `grants` list -> {principal: set}; a principal listed twice gets the union."""
    desired = {}
    for entry in entries or []:
        desired.setdefault(entry["principal"], set()).update(p.upper() for p in entry.get("privileges") or [])
    return desired


def _change(principal, add, remove):
    change = {"principal": principal}
    if add:
        change["add"] = sorted(add)
    if remove:
        change["remove"] = sorted(remove)
    return change if add or remove else None


def grant_changes(desired, actual, exclusive=False):
    """Changes giving each named principal exactly its listed privileges (and, if exclusive, nobody else any)."""
    changes = []
    principals = set(desired) | (set(actual) if exclusive else set())
    for principal in sorted(principals):
        want, have = desired.get(principal, set()), actual.get(principal, set())
        change = _change(principal, want - have, have - want)
        if change:
            changes.append(change)
    return changes


def revoke_changes(listed, actual):
    """Changes removing the listed privileges of the listed principals (the ones they hold)."""
    changes = []
    for principal in sorted(listed):
        change = _change(principal, set(), listed[principal] & actual.get(principal, set()))
        if change:
            changes.append(change)
    return changes


def apply_changes(actual, changes):
    """The grants a read would show after `changes` (for check mode and diffs)."""
    after = dict((p, set(privs)) for p, privs in actual.items())
    for change in changes:
        held = after.setdefault(change["principal"], set())
        held.update(change.get("add") or [])
        held.difference_update(change.get("remove") or [])
    return dict((p, privs) for p, privs in after.items() if privs)


def grants_view(grants):
    """{principal: set} -> a JSON-friendly list for results and diffs."""
    return [{"principal": p, "privileges": sorted(privs)} for p, privs in sorted(grants.items())]
