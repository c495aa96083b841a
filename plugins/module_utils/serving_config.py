# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Desired vs actual for a serving endpoint: what GET adds, reorders or hides, normalised away.

GET returns more than was sent and in another shape (docs/design.md "Service behaviours we rely on"):
server-managed fields (ids, timestamps, per-entity state, foundation_model), entities and tags
in arbitrary order, routes naming the entity twice (served_model_name and served_entity_name),
a `served_models` mirror of `served_entities`, server defaults (entity names, workload size and
type, a computed traffic_config), and never the `*_plaintext` secrets. The functions here turn
both sides into the same plain shape so that comparing them means something.

How a module uses it:

    desired = desired_entities(module.params["served_entities"])       # pruned, default names, sorted
    actual = actual_config(endpoint)                                   # effective config, normalised
    reason = external_model_lock_in(desired, actual["served_entities"])   # str -> fail_json
    if not config_matches(desired, traffic_routes(...), actual): ... PUT config_body(...)
    add, delete = tags_patch(module.params["tags"], endpoint.get("tags"), purge)
    after = updated_view(endpoint, desired, routes, module.params["tags"], purge)   # check mode's diff
"""

from __future__ import annotations

from ansible_collections.databricks_claude.gateway.plugins.module_utils.comparison import (
    drop_empty,
    is_subset,
    overlay,
    prune,
    sanitize,
)

# Per served entity, fields only the server sets.
SERVER_ENTITY_FIELDS = ("creation_timestamp", "creator", "state", "foundation_model")
# Secret *references* ({{secrets/scope/key}}) the service may or may not echo back: compared when echoed.
SECRET_REFERENCE_KEYS = ("anthropic_api_key", "aws_access_key_id", "aws_secret_access_key")
# Served entities per endpoint: 15, not the 10 of the SDK docstring (docs/design.md "Service behaviours we rely on").
MAX_SERVED_ENTITIES = 15
# Endpoint fields the service sets only on create (an update cannot change them).
SET_ONCE = ("description", "route_optimized")


def default_entity_name(entity):
    """The name the service gives an unnamed entity (SDK ServedEntityInput.name docstring), None if unknown.

    An external model: its model name with '.' and ':' replaced by '-'; another entity:
    `<entity_name>-<entity_version>`.
    """
    model = (entity.get("external_model") or {}).get("name")
    if entity.get("name"):
        return entity["name"]
    if model:
        return model.replace(".", "-").replace(":", "-")
    if entity.get("entity_name") and entity.get("entity_version"):
        return "%s-%s" % (entity["entity_name"], entity["entity_version"])
    return None


def desired_entities(served_entities):
    """The user's served entities: unset options dropped, default names filled in, sorted by name."""
    entities = []
    for entity in served_entities or []:
        entity = prune(entity)
        if "environment_vars" in entity:
            entity["environment_vars"] = as_strings(entity["environment_vars"])
        name = default_entity_name(entity)
        if name:
            entity["name"] = name
        entities.append(entity)
    return sorted(entities, key=lambda e: e.get("name") or "")


def traffic_routes(traffic_config):
    """Routes as a sorted list of {served_entity_name, traffic_percentage}; None when not managed.

    Accepts the legacy `served_model_name` too: the service returns both names with the same value.
    """
    if not traffic_config or traffic_config.get("routes") is None:
        return None
    routes = []
    for route in traffic_config["routes"]:
        routes.append({"served_entity_name": route.get("served_entity_name") or route.get("served_model_name"),
                       "traffic_percentage": route.get("traffic_percentage")})
    return sorted(routes, key=lambda r: r["served_entity_name"] or "")


def effective_config(endpoint):
    """The config an endpoint is converging to: the pending one while an update runs, else the current one."""
    if config_update_state(endpoint) == "IN_PROGRESS" and endpoint.get("pending_config"):
        return endpoint["pending_config"]
    return endpoint.get("config") or endpoint.get("pending_config") or {}


def config_update_state(endpoint):
    return ((endpoint or {}).get("state") or {}).get("config_update")


def actual_entity(entity):
    """A served entity from GET without the fields only the server manages."""
    return dict((k, v) for k, v in entity.items() if k not in SERVER_ENTITY_FIELDS)


def actual_config(endpoint):
    """{served_entities (sorted, server fields dropped), routes} of an endpoint from GET.

    `served_models` (the deprecated mirror) is ignored: this collection always sends served_entities.
    """
    config = effective_config(endpoint)
    entities = [actual_entity(e) for e in config.get("served_entities") or []]
    return {"served_entities": sorted(entities, key=lambda e: e.get("name") or ""),
            "routes": traffic_routes(config.get("traffic_config"))}


def comparable_entity(entity):
    """A desired entity as it can be compared: plaintext secrets removed (GET never returns them)."""
    return drop_empty(sanitize(entity))


def config_matches(desired, routes, actual):
    """True when the served entities (by name) and, if managed, the routes already are as desired.

    Options the user left unset are not compared (the server fills its defaults for them).
    """
    actual_entities = dict((e.get("name"), e) for e in actual["served_entities"])
    if set(actual_entities) != set(e["name"] for e in desired):
        return False
    for entity in desired:
        if not is_subset(comparable_entity(entity), actual_entities[entity["name"]], SECRET_REFERENCE_KEYS):
            return False
    return routes is None or routes == actual["routes"]


def predicted_entities(desired, actual_entities):
    """What GET would show after the update: each desired entity over the current one of that name.

    Keeps the server's defaults (workload size and type...) out of a check-mode diff's removals.
    """
    current = dict((e.get("name"), e) for e in actual_entities)
    return [overlay(current.get(e["name"], {}), comparable_entity(e)) for e in desired]


def external_model_lock_in(desired, actual_entities):
    """Why the change is impossible in place (a message), or None.

    An endpoint created with an external model can never drop it; one created without can never add one.
    """
    had = any(e.get("external_model") for e in actual_entities)
    wants = any(e.get("external_model") for e in desired)
    if had and not wants:
        return ("the endpoint serves an external model and the service cannot remove it in place; "
                "delete the endpoint (state: absent) and create it again")
    if wants and not had and actual_entities:
        return ("the endpoint does not serve an external model and the service cannot add one in place; "
                "delete the endpoint (state: absent) and create it again, or use a new endpoint name")
    return None


def config_body(desired, routes):
    """The PUT .../config body (and the create `config`): every desired entity, secrets included."""
    body = {"served_entities": desired}
    if routes is not None:
        body["traffic_config"] = {"routes": routes}
    return body


def as_strings(mapping):
    """Tag and environment values are strings to the service; YAML may have made them numbers or booleans."""
    return dict((k, v if v is None or isinstance(v, str) else str(v)) for k, v in (mapping or {}).items())


def tags_dict(tags):
    """[{key, value}] from GET (any order) -> {key: value}."""
    return dict((t["key"], t.get("value")) for t in tags or [])


def tags_list(tags):
    """{key: value} -> [{key, value}] sorted by key, as the API takes them (a value may be absent)."""
    tags = as_strings(tags)
    return [prune({"key": k, "value": tags[k]}) for k in sorted(tags)]


def tags_patch(desired, actual_tags, purge):
    """(add_tags, delete_tags) for one PATCH .../tags; both empty when nothing changes.

    `desired` None means tags are not managed. With `purge`, keys not in `desired` are deleted.
    """
    if desired is None:
        return [], []
    desired = as_strings(desired)
    actual = tags_dict(actual_tags)
    add = dict((k, v) for k, v in desired.items() if k not in actual or actual[k] != v)
    delete = sorted(k for k in actual if k not in desired) if purge else []
    return tags_list(add), delete


def endpoint_view(endpoint):
    """The part of an endpoint this collection manages, in a stable shape: for diffs and results."""
    if endpoint is None:
        return None
    config = actual_config(endpoint)
    view = {"name": endpoint.get("name"),
            "served_entities": config["served_entities"],
            "tags": tags_dict(endpoint.get("tags"))}
    if config["routes"] is not None:
        view["routes"] = config["routes"]
    for key in SET_ONCE:
        if endpoint.get(key) is not None:
            view[key] = endpoint[key]
    return view


def created_view(name, set_once, entities, routes, tags):
    """endpoint_view of the endpoint a create would make (check mode's answer)."""
    view = dict(set_once, name=name, served_entities=entities, tags=as_strings(tags))
    if routes is not None:
        view["routes"] = routes
    return view


def updated_view(current, entities, routes, tags, purge_tags):
    """endpoint_view of `current` after the update (check mode's answer).

    `entities` None: the config is not rewritten; `tags` None: tags are not managed.
    """
    view = endpoint_view(current)
    if entities is not None:
        view["served_entities"] = predicted_entities(entities, view["served_entities"])
        if routes is not None:
            view["routes"] = routes
    if tags is not None:
        kept = {} if purge_tags else tags_dict(current.get("tags"))
        kept.update(as_strings(tags))
        view["tags"] = kept
    return view
