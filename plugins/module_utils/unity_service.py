# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# Simplified BSD License (see https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

"""The present/absent flow both Unity AI Gateway service modules share.

One read; then nothing (up to date), a create, a granular PATCH of the paths that differ (with the read's
etag, re-read once on a conflict: unity_api.update_with_etag) or a delete. Check mode stops before any
write and returns what it would have written. `diff` and the result compare the services as
{mask path: value}, so server-managed fields (etag, timestamps, resolved names) never show as a change.

How a module uses it (module.run is the flow every module has):

    task = ServiceTask(MODEL_SERVICE, desired, compare, create_body, locations=None)
    module.run(task.find, task.ensure_present, task.ensure_absent)
    # compare(read) -> (actual paths as compared with desired, a refusal message or None)
"""

from __future__ import annotations

from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_api import (
    create_service,
    delete_service,
    describe,
    full_name,
    get_service,
    update_with_etag,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.unity_config import mask_update, predicted


def service_name(module):
    return full_name(module.params["catalog"], module.params["schema"], module.params["name"])


class ServiceTask:
    """The find / ensure_present / ensure_absent steps for one model service or model provider service."""

    def __init__(self, kind, desired, compare, create_body, locations=None):
        self.kind = kind
        self.desired = desired
        self.compare = compare
        self.create_body = create_body
        self.locations = locations
        self.what = describe(kind)

    def _result(self, module, changed, verb, before, after, service, paths=()):
        name = service_name(module)
        return dict(changed=changed, before=before, after=after, full_name=name, changes=list(paths),
                    msg="%s %s %s" % (self.what, name, verb), **{self.kind: service})

    def find(self, module):
        with module.api_errors("get", self.what, service_name(module)):
            return get_service(module.client(), self.kind, service_name(module))

    def ensure_absent(self, module, current):
        if current is None:
            return self._result(module, False, "does not exist", None, None, {})
        if not module.check_mode:
            with module.api_errors("delete", self.what, service_name(module)):
                delete_service(module.client(), self.kind, service_name(module))
        actual = self.compare(current)[0]
        return self._result(module, True, "would be deleted" if module.check_mode else "deleted", actual, None, {},
                            ["delete"])

    def ensure_present(self, module, current):
        return self.create(module) if current is None else self.update(module, current)

    def create(self, module):
        params = module.params
        body = self.create_body(self.desired)
        service = body
        if not module.check_mode:
            with module.api_errors("create", self.what, service_name(module)):
                service = create_service(module.client(), self.kind, params["catalog"], params["schema"],
                                         params["name"], body)
        return self._result(module, True, "would be created" if module.check_mode else "created", None,
                            self.desired, service, ["create"])

    def _plan(self, module, current):
        actual, refusal = self.compare(current)
        if refusal:
            module.fail_json(msg="update %s %s: %s" % (self.what, service_name(module), refusal),
                             status=None, error_code="INVALID_CHANGE")
        paths, body = mask_update(self.desired, actual, self.locations)
        return (paths, body) if paths else None

    def update(self, module, current):
        before = self.compare(current)[0]
        planned = self._plan(module, current)
        if planned is None:
            return self._result(module, False, "is up to date", before, before, current)
        if module.check_mode:
            return self._result(module, True, "would be updated", before, predicted(self.desired, before), current,
                                planned[0])
        with module.api_errors("update", self.what, service_name(module)):
            service, paths = update_with_etag(module.client(), self.kind, service_name(module), current,
                                              lambda read: self._plan(module, read))
        if not paths:  # someone else made it so meanwhile
            return self._result(module, False, "is up to date", before, before, service)
        return self._result(module, True, "updated", before, self.compare(service)[0], service, paths)
