# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# Simplified BSD License (see https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

"""Unity AI Gateway calls: where model (provider) services live, and updates guarded by their etag.

The paths are those of the SDK's `AiGatewayAPI` (databricks-sdk 0.162): a service is created with
POST /api/2.1/unity-catalog/<collection>?parent=schemas/{c}.{s}&<id param>=ID and then addressed by its
resource name `<collection>/{c}.{s}.{id}` under /api/2.1/unity-catalog/. PATCH takes the comma-separated
`update_mask` and, optionally, the `etag` of the read it is based on; a service that changed since
answers 409 ABORTED (the API follows Google's AIP-154 for etags).

How a module uses it:

    service = get_service(client, MODEL_SERVICE, "main.ai.claude_code")       # None when absent
    result = update_with_etag(client, MODEL_SERVICE, full_name, service, plan)
    # plan(current) -> (update_mask paths, body) or None when nothing is left to change; on a stale
    # etag the service is read again once and `plan` asked again.
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.databricks_claude.gateway.plugins.module_utils.errors import (
    DatabricksApiError,
    OperationFailed,
)

BASE = "/api/2.1/unity-catalog"
MODEL_SERVICE = "model_service"
MODEL_PROVIDER_SERVICE = "model_provider_service"
# kind -> (URL collection, create query parameter, list response key, words for messages)
KINDS = {
    MODEL_SERVICE: ("model-services", "model_service_id", "model_services", "model service"),
    MODEL_PROVIDER_SERVICE: ("model-provider-services", "model_provider_service_id", "model_provider_services",
                             "model provider service"),
}
LIST_PAGE_SIZE = 200  # the most a FULL list page may hold


def full_name(catalog, schema, name):
    return "%s.%s.%s" % (catalog, schema, name)


def resource_name(kind, name):
    """`model-services/{c}.{s}.{id}` for a full name (given with or without the prefix)."""
    collection = KINDS[kind][0]
    return name if name.startswith(collection + "/") else "%s/%s" % (collection, name)


def schema_resource(schema_full_name):
    """`schemas/{c}.{s}` for `c.s` (given with or without the prefix)."""
    return schema_full_name if schema_full_name.startswith("schemas/") else "schemas/" + schema_full_name


def service_path(kind, name):
    return "%s/%s" % (BASE, quote(resource_name(kind, name), safe="/."))


def describe(kind):
    return KINDS[kind][3]


def get_service(client, kind, name):
    return client.get(service_path(kind, name), missing_ok=True)


def create_service(client, kind, catalog, schema, name, body):
    collection, id_param = KINDS[kind][0], KINDS[kind][1]
    return client.post("%s/%s" % (BASE, collection), body,
                       query={"parent": schema_resource("%s.%s" % (catalog, schema)), id_param: name})


def delete_service(client, kind, name, etag=None):
    client.delete(service_path(kind, name), query={"etag": etag} if etag else None)


def list_services(client, kind, catalog, schema):
    """Every service of the schema (FULL view: destinations, inference tables, rate-limit principals)."""
    collection, key = KINDS[kind][0], KINDS[kind][2]
    query = {"parent": schema_resource("%s.%s" % (catalog, schema)), "view": "FULL", "page_size": LIST_PAGE_SIZE}
    services = []
    while True:
        page = client.get("%s/%s" % (BASE, collection), query=query)
        services.extend(page.get(key) or [])
        if not page.get("next_page_token"):
            return services
        query = dict(query, page_token=page["next_page_token"])


def is_stale_etag(error):
    return isinstance(error, DatabricksApiError) and error.status == 409 and error.error_code == "ABORTED"


def update_with_etag(client, kind, name, current, plan):
    """PATCH what `plan(current)` asks for, conditional on `current["etag"]`.

    Returns (service after the write or as re-read, paths written). A stale etag means someone changed the
    service since it was read: read it again once, plan again (maybe nothing is left to do) and retry; a
    second conflict fails with OperationFailed.
    """
    retried = False
    while True:
        planned = plan(current)
        if planned is None:
            return current, []
        paths, body = planned
        query = {"update_mask": ",".join(paths)}
        if current.get("etag"):
            query["etag"] = current["etag"]
        try:
            return client.patch(service_path(kind, name), body, query=query), paths
        except DatabricksApiError as e:
            if not is_stale_etag(e):
                raise
            if retried:
                raise OperationFailed("%s %s changed again while it was being updated (a second etag conflict); "
                                      "run the task again" % (describe(kind), name), e.error_code)
        retried = True
        current = get_service(client, kind, name)
        if current is None:
            raise OperationFailed("%s %s was deleted while it was being updated" % (describe(kind), name),
                                  "RESOURCE_DOES_NOT_EXIST")
