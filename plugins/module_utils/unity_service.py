# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# Simplified BSD License (see https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

"""The present/absent flow both Unity AI Gateway service modules share.

One read; then nothing (up to date), a create, a granular PATCH of the paths that differ (with the read's
etag, re-read once on a conflict: unity_api.update_with_etag) or a delete. Check mode stops before any
write and returns what it would have written. `diff` and the result compare the services as
{mask path: value}, so server-managed fields (etag, timestamps, resolved names) never show as a change.

How a module uses it:

    ServiceTask(module, MODEL_SERVICE, desired, compare, create_body, locations=None).run()
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


class ServiceTask:
    """One model service / model provider service task."""

    def __init__(self, module, kind, desired, compare, create_body, locations=None):
        self.module = module
        self.kind = kind
        self.desired = desired
        self.compare = compare
        self.create_body = create_body
        self.locations = locations
        params = module.params
        self.catalog, self.schema, self.name = params["catalog"], params["schema"], params["name"]
        self.full_name = full_name(self.catalog, self.schema, self.name)
        self.what = describe(kind)
        self.client = module.client()

    def _exit(self, changed, verb, before, after, service, paths=()):
        self.module.exit_result(changed, before=before, after=after, full_name=self.full_name,
                                changes=list(paths), msg="%s %s %s" % (self.what, self.full_name, verb),
                                **{self.kind: service})

    def run(self):
        with self.module.api_errors("get", self.what, self.full_name):
            current = get_service(self.client, self.kind, self.full_name)
        if self.module.params["state"] == "absent":
            self.absent(current)
        if current is None:
            self.create()
        self.update(current)

    def absent(self, current):
        if current is None:
            self._exit(False, "does not exist", None, None, {})
        if not self.module.check_mode:
            with self.module.api_errors("delete", self.what, self.full_name):
                delete_service(self.client, self.kind, self.full_name)
        actual, _ = self.compare(current)
        self._exit(True, "would be deleted" if self.module.check_mode else "deleted", actual, None, {}, ["delete"])

    def create(self):
        body = self.create_body(self.desired)
        service = body
        if not self.module.check_mode:
            with self.module.api_errors("create", self.what, self.full_name):
                service = create_service(self.client, self.kind, self.catalog, self.schema, self.name, body)
        self._exit(True, "would be created" if self.module.check_mode else "created", None, self.desired,
                   service, ["create"])

    def _plan(self, current):
        actual, refusal = self.compare(current)
        if refusal:
            self.module.fail_json(msg="update %s %s: %s" % (self.what, self.full_name, refusal),
                                  status=None, error_code="INVALID_CHANGE")
        paths, body = mask_update(self.desired, actual, self.locations)
        return (paths, body) if paths else None

    def update(self, current):
        before, _ = self.compare(current)
        planned = self._plan(current)
        if planned is None:
            self._exit(False, "is up to date", before, before, current)
        if self.module.check_mode:
            self._exit(True, "would be updated", before, predicted(self.desired, before), current, planned[0])
        with self.module.api_errors("update", self.what, self.full_name):
            service, paths = update_with_etag(self.client, self.kind, self.full_name, current, self._plan)
        if not paths:  # someone else made it so meanwhile
            self._exit(False, "is up to date", before, before, service)
        self._exit(True, "updated", before, self.compare(service)[0], service, paths)
