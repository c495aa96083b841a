# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The AnsibleModule every module of this collection runs as, and the shared connection options.

How a module uses it (every managing module has this shape; info modules find and exit_result):

    from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule

    ARGUMENT_SPEC = dict(name=dict(type="str", required=True), state=dict(...))

    def find(module):                       # what exists now; None when nothing does
        with module.api_errors("get", "serving endpoint", module.params["name"]):
            return module.client().get(path, missing_ok=True)   # or module.client(account=True)

    def ensure_present(module, current):    # and ensure_absent: write what differs (not in check mode)
        return dict(changed=True, before=current, after=desired, msg="... updated", serving_endpoint=...)

    def main():
        module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
        module.run(find, ensure_present, ensure_absent)

`argument_spec` holds only the module's own options: the connection/auth options of
`common_argument_spec()` (documented once in the `databricks_claude.gateway.connection` doc
fragment) are merged in. `api_errors()` turns any client failure into
"<action> <resource> <name>: <message>" with `status` and `error_code`; `exit_result()` adds a
secret-free `diff` when --diff is on.
"""

from __future__ import annotations

from contextlib import contextmanager

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.databricks_claude.gateway.plugins.module_utils.client import (
    AUTH_OPTIONS,
    DATABRICKS_SDK_IMPORT_ERROR,
    HAS_DATABRICKS_SDK,
    DatabricksClient,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.comparison import is_secret_key, sanitize, sanitized_diff
from ansible_collections.databricks_claude.gateway.plugins.module_utils.errors import (
    DatabricksApiError,
    DatabricksAuthError,
    OperationFailed,
)


def common_argument_spec():
    """The connection and authentication options (client.AUTH_OPTIONS); unset ones are left to the SDK's unified auth."""
    return dict((name, dict(type="str", no_log=is_secret_key(name))) for name in AUTH_OPTIONS)


class DatabricksModule(AnsibleModule):
    """An AnsibleModule with the connection options, a lazily built client and uniform failures."""

    def __init__(self, argument_spec, **kwargs):
        super().__init__(argument_spec=dict(common_argument_spec(), **argument_spec), **kwargs)
        self._clients = {}

    def client(self, account=False):
        """The client for the workspace (default) or the account console; fails the task if impossible."""
        if account not in self._clients:
            if not HAS_DATABRICKS_SDK:
                self.fail_json(msg=missing_required_lib("databricks-sdk"), exception=DATABRICKS_SDK_IMPORT_ERROR)
            try:
                self._clients[account] = DatabricksClient(self.params, account=account)
            except DatabricksAuthError as e:
                self.fail_json(msg="configure Databricks authentication: %s" % e, **e.details())
        return self._clients[account]

    @contextmanager
    def api_errors(self, action, resource, name):
        """Fail the task with '<action> <resource> <name>: <message>' on any Databricks failure inside."""
        try:
            yield
        except (DatabricksApiError, OperationFailed) as e:
            self.fail_json(msg="%s %s %s: %s" % (action, resource, name, e.message), **e.details())
        except DatabricksAuthError as e:
            self.fail_json(msg="%s %s %s: authentication failed: %s" % (action, resource, name, e), **e.details())

    def run(self, find, ensure_present, ensure_absent=None):
        """Find what exists, make it present (or, with state=absent, absent) and exit with that step's result.

        `find(module)` returns the current object (None when absent); `ensure_present(module, current)` and
        `ensure_absent(module, current)` return exit_result's arguments: changed, msg, before/after, values.
        """
        current = find(self)
        ensure = ensure_absent if self.params.get("state") == "absent" else ensure_present
        self.exit_result(**ensure(self, current))

    def exit_result(self, changed, before=None, after=None, **result):
        """exit_json with `changed`, a secret-free diff under --diff, and secret-free result values."""
        if self._diff:
            result["diff"] = sanitized_diff(before, after)
        self.exit_json(changed=changed, **sanitize(result))
