#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: grants
short_description: Unity Catalog privileges on a catalog, schema, model service or other securable
version_added: 1.0.0
description:
  - Declares the privileges of the principals it names on one Unity Catalog securable - for Unity AI
    Gateway, C(EXECUTE) on a model service (to query it), C(USE_SCHEMA) on its schema and C(USE_CATALOG) on
    its catalog. Each named principal ends up with exactly the privileges listed for it; other principals
    are left alone unless O(exclusive=true).
  - Only direct grants are read and set; privileges inherited from the schema or catalog are granted there.
  - One read, and at most one C(PATCH) with the C(add) / C(remove) changes that differ.
extends_documentation_fragment:
  - databricks_claude.gateway.connection
  - databricks_claude.gateway.attributes
  - databricks_claude.gateway.attributes.action_group
attributes:
  check_mode:
    support: full
    details:
      - If the securable does not exist yet (an earlier task would create it), check mode reports the grants
        as changes and warns instead of failing.
  diff_mode:
    support: full
options:
  securable_type:
    description: The kind of securable, as the SDK's C(SecurableType) names it (any case).
    type: str
    required: true
  full_name:
    description: Full name of the securable - C(main), C(main.ai), C(main.ai.claude-sonnet).
    type: str
    required: true
  grants:
    description: The principals and their privileges (such as C(EXECUTE), C(USE_SCHEMA), C(USE_CATALOG), C(MANAGE)).
    type: list
    elements: dict
    required: true
    suboptions:
      principal:
        description: A user email, a group name or a service principal's application ID.
        type: str
        required: true
      privileges:
        description: Its privileges on the securable; an empty list removes all of them.
        type: list
        elements: str
        required: true
  exclusive:
    description: Also remove every direct privilege of the principals not named in O(grants).
    type: bool
    default: false
  state:
    description:
      - V(present) makes the named principals' privileges exactly the listed ones.
      - V(absent) removes only the listed privileges of the listed principals (and leaves their others).
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: databricks_claude.gateway.model_service
author:
  - databricks_claude.gateway contributors (@databricks-claude)
"""

EXAMPLES = r"""
- name: Developers may query the sonnet model service
  databricks_claude.gateway.grants:
    securable_type: model_service
    full_name: main.ai.claude-sonnet
    grants:
      - principal: claude-code-developers
        privileges: [EXECUTE]

- name: ... and see its schema and catalog
  databricks_claude.gateway.grants:
    securable_type: schema
    full_name: main.ai
    grants:
      - principal: claude-code-developers
        privileges: [USE_SCHEMA]

- name: Exactly these grants on the provider service, nobody else
  databricks_claude.gateway.grants:
    securable_type: model_provider_service
    full_name: main.ai.anthropic
    exclusive: true
    grants:
      - principal: platform-team
        privileges: [MANAGE, EXECUTE]
"""

RETURN = r"""
grants:
  description: The direct grants on the securable after the change (predicted, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - principal: claude-code-developers
      privileges: [EXECUTE]
changes:
  description: The C(changes) sent (that would be, in check mode) - per principal, the privileges added and removed.
  returned: always
  type: list
  elements: dict
  sample:
    - principal: claude-code-developers
      add: [EXECUTE]
msg:
  description: What the module did, in words.
  returned: always
  type: str
  sample: grants on model_service main.ai.claude-sonnet updated
status:
  description: HTTP status of the failed call.
  returned: failure
  type: int
  sample: 404
error_code:
  description: The service's error code of the failed call.
  returned: failure
  type: str
  sample: PRINCIPAL_DOES_NOT_EXIST
"""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.errors import DatabricksApiError
from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule
from ansible_collections.databricks_claude.gateway.plugins.module_utils.uc_grants import (
    apply_changes,
    desired_grants,
    grant_changes,
    grants_view,
    permissions_path,
    read_grants,
    revoke_changes,
)

ARGUMENT_SPEC = dict(
    securable_type=dict(type="str", required=True),
    full_name=dict(type="str", required=True),
    grants=dict(type="list", elements="dict", required=True, options=dict(
        principal=dict(type="str", required=True),
        privileges=dict(type="list", elements="str", required=True),
    )),
    exclusive=dict(type="bool", default=False),
    state=dict(type="str", default="present", choices=["present", "absent"]),
)


def securable(module):
    """(securable type as the API names it, full name, the resource words of messages)."""
    securable_type = module.params["securable_type"].lower()
    return securable_type, module.params["full_name"], "grants on %s" % securable_type


def find(module):
    """The direct grants; {} (with a warning) when the securable does not exist yet in check mode."""
    securable_type, name, what = securable(module)
    with module.api_errors("get", what, name):
        try:
            return read_grants(module.client(), securable_type, name)
        except DatabricksApiError as e:
            if not (module.check_mode and e.not_found):
                raise
    module.warn("%s %s does not exist (yet); its grants would be set once it does" % (securable_type, name))
    return {}


def ensure_present(module, actual):
    return apply(module, actual, grant_changes(desired_grants(module.params["grants"]), actual,
                                               module.params["exclusive"]))


def ensure_absent(module, actual):
    return apply(module, actual, revoke_changes(desired_grants(module.params["grants"]), actual))


def apply(module, actual, changes):
    """PATCH `changes` (not in check mode) and report the grants before and after."""
    securable_type, name, what = securable(module)
    if not changes:
        return dict(changed=False, before=grants_view(actual), after=grants_view(actual), grants=grants_view(actual),
                    changes=[], msg="%s %s are up to date" % (what, name))
    after = apply_changes(actual, changes)
    if not module.check_mode:
        with module.api_errors("update", what, name):
            module.client().patch(permissions_path(securable_type, name), {"changes": changes})
    return dict(changed=True, before=grants_view(actual), after=grants_view(after), grants=grants_view(after),
                changes=changes, msg="%s %s %s" % (what, name, "would be updated" if module.check_mode else "updated"))


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(find, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
