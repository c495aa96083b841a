#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: serving_endpoint
short_description: Create, update or delete a Databricks model serving endpoint (for example one serving Claude)
version_added: 1.0.0
description:
  - Creates, updates or deletes a Databricks model serving endpoint, typically one that serves Claude as an
    external model of provider C(anthropic), with its traffic config, tags and description.
  - Reads the endpoint first and writes only what differs, each change through its own API
    (C(PUT .../config) for served entities and traffic, one C(PATCH .../tags) for tags), then waits until
    C(state.config_update) is C(NOT_UPDATING).
  - If another config update is running, the module waits for it to end before changing the config or the
    tags (the service refuses both with HTTP 409 meanwhile), and retries a 409 of any error code.
  - Served entities are matched by name, tags compared as a set, and fields the service manages or fills
    in (ids, timestamps, states, default workload size and type, a computed traffic config) are ignored.
    Options left unset are not compared.
  - The AI Gateway config and the permissions of an endpoint have their own modules,
    M(databricks_claude.gateway.ai_gateway) and M(databricks_claude.gateway.serving_endpoint_permissions).
extends_documentation_fragment:
  - databricks_claude.gateway.connection
  - databricks_claude.gateway.attributes
  - databricks_claude.gateway.attributes.action_group
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Before and after show the managed part of the endpoint (served entities, routes, tags, description),
        with plaintext secrets removed.
options:
  name:
    description:
      - Name of the serving endpoint. Letters, digits, C(-) and C(_); unique in the workspace.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the endpoint, V(absent) deletes it.
      - The preconfigured pay-per-token endpoints (C(databricks-claude-*)) cannot be created or deleted;
        configure them with M(databricks_claude.gateway.ai_gateway) and
        M(databricks_claude.gateway.serving_endpoint_permissions).
    type: str
    choices: [present, absent]
    default: present
  served_entities:
    description:
      - What the endpoint serves. Required to create an endpoint; when updating, the full list
        (entities not listed are removed).
      - At most 15 entities; the module refuses more before sending anything.
      - An endpoint created with an external model must keep serving one, and one created without can never
        add one; such a change fails with a message saying so, as the service cannot make it in place.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the served entity, used in O(traffic_config) routes.
          - Defaults to O(served_entities[].external_model.name) with C(.) and C(:) replaced by C(-) for an
            external model, and to C(<entity_name>-<entity_version>) for other entities (as the service names
            them).
        type: str
      external_model:
        description:
          - A model served by an outside provider through Databricks, for example Claude from Anthropic.
        type: dict
        suboptions:
          provider:
            description: The provider.
            type: str
            required: true
            choices: [anthropic, amazon-bedrock]
          name:
            description: The provider's model name, for example C(claude-sonnet-4-5).
            type: str
            required: true
          task:
            description: The task the model serves.
            type: str
            default: llm/v1/chat
          anthropic_config:
            description:
              - Credentials for provider V(anthropic). Give exactly one of the two keys.
            type: dict
            suboptions:
              anthropic_api_key:
                description:
                  - The Anthropic API key as a Databricks secret reference, C({{secrets/<scope>/<key>}}).
                  - Ansible templates C({{ }}) itself, so write the reference as C(!unsafe '{{secrets/scope/key}}')
                    in YAML (or C("{{ '{{secrets/scope/key}}' }}")); plain quotes fail with
                    C('secrets' is undefined).
                type: str
              anthropic_api_key_plaintext:
                description:
                  - The Anthropic API key itself. Prefer O(served_entities[].external_model.anthropic_config.anthropic_api_key).
                  - Sent when the endpoint is created or its config is updated for another reason, but never
                    compared, since the service never returns it. Changing only this value is not detected.
                type: str
          amazon_bedrock_config:
            description:
              - Settings for provider V(amazon-bedrock) (Claude through Amazon Bedrock).
            type: dict
            suboptions:
              aws_region:
                description: The AWS region of Bedrock.
                type: str
                required: true
              bedrock_provider:
                description: The model family on Bedrock.
                type: str
                required: true
                choices: [anthropic, ai21labs, amazon, cohere]
              aws_access_key_id:
                description: The AWS access key ID as a Databricks secret reference.
                type: str
              aws_secret_access_key:
                description: The AWS secret access key as a Databricks secret reference.
                type: str
              aws_access_key_id_plaintext:
                description: The AWS access key ID itself; sent but never compared.
                type: str
              aws_secret_access_key_plaintext:
                description: The AWS secret access key itself; sent but never compared.
                type: str
              instance_profile_arn:
                description: An instance profile to use instead of access keys.
                type: str
      entity_name:
        description:
          - A Unity Catalog model or foundation model to serve, for example C(system.ai.<model>).
        type: str
      entity_version:
        description: Version of O(served_entities[].entity_name).
        type: str
      workload_size:
        description: Compute size, for example C(Small). The service picks one when unset.
        type: str
      workload_type:
        description: Compute type, for example C(CPU) or C(GPU_SMALL). The service picks one when unset.
        type: str
      scale_to_zero_enabled:
        description: Whether the entity scales to zero when idle.
        type: bool
      min_provisioned_throughput:
        description: Minimum provisioned throughput (tokens per second), for provisioned throughput models.
        type: int
      max_provisioned_throughput:
        description: Maximum provisioned throughput (tokens per second), for provisioned throughput models.
        type: int
      provisioned_model_units:
        description: Provisioned model units, for provisioned throughput models.
        type: int
      environment_vars:
        description: Environment variables of the served entity; values may be secret references.
        type: dict
      instance_profile_arn:
        description: AWS instance profile the entity runs with.
        type: str
  traffic_config:
    description:
      - How requests are split between served entities. When unset, the service computes a split and it is
        not compared.
    type: dict
    suboptions:
      routes:
        description: One route per served entity; percentages add up to 100.
        type: list
        elements: dict
        required: true
        suboptions:
          served_entity_name:
            description: Name of a served entity.
            type: str
            required: true
          traffic_percentage:
            description: Share of the traffic, 0 to 100.
            type: int
            required: true
  tags:
    description:
      - Tags of the endpoint, as a mapping of key to value. Changed with one C(PATCH .../tags) call.
      - When unset, tags are not managed.
    type: dict
  purge_tags:
    description:
      - Whether tags not in O(tags) are removed. Only with O(tags).
    type: bool
    default: true
  description:
    description:
      - Description of the endpoint. The service sets it only at creation; asking for another description on an
        existing endpoint fails with a message saying so.
    type: str
  route_optimized:
    description:
      - Whether the endpoint is route optimized. Set only at creation, like O(description).
      - Only a route-optimized endpoint gets its own URL (C(endpoint_url) in RV(serving_endpoint)); others are
        queried on the workspace host.
    type: bool
  wait:
    description:
      - Whether to wait until a create or config update has finished (C(state.config_update) is
        C(NOT_UPDATING)). An update that ends C(UPDATE_FAILED) or C(UPDATE_CANCELED) fails the task.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait, for this module's own update and for one already running.
    type: int
    default: 1200
seealso:
  - module: databricks_claude.gateway.serving_endpoint_info
  - module: databricks_claude.gateway.ai_gateway
  - module: databricks_claude.gateway.serving_endpoint_permissions
author:
  - databricks_claude.gateway contributors (@databricks-claude)
"""

EXAMPLES = r"""
- name: Serve Claude Sonnet from Anthropic, the key kept in a Databricks secret scope
  databricks_claude.gateway.serving_endpoint:
    name: claude-code-gateway
    served_entities:
      - name: claude-sonnet
        external_model:
          provider: anthropic
          name: claude-sonnet-4-5
          task: llm/v1/chat
          anthropic_config:
            # !unsafe stops Ansible from templating the Databricks secret reference itself.
            anthropic_api_key: !unsafe "{{secrets/claude/anthropic_api_key}}"
    tags:
      team: platform
      cost-center: "4711"
    description: Claude Code for developers

- name: Two Claude models, traffic split between them
  databricks_claude.gateway.serving_endpoint:
    name: claude-code-gateway
    served_entities:
      - name: claude-sonnet
        external_model:
          provider: anthropic
          name: claude-sonnet-4-5
          anthropic_config:
            anthropic_api_key: "{{ anthropic_secret_reference }}"  # a var defined with !unsafe
      - name: claude-haiku
        external_model:
          provider: anthropic
          name: claude-haiku-4-5
          anthropic_config:
            anthropic_api_key: "{{ anthropic_secret_reference }}"
    traffic_config:
      routes:
        - served_entity_name: claude-sonnet
          traffic_percentage: 80
        - served_entity_name: claude-haiku
          traffic_percentage: 20

- name: Connection options once for every module of the collection
  module_defaults:
    group/databricks_claude.gateway.databricks:
      profile: admin
  block:
    - name: Delete an endpoint
      databricks_claude.gateway.serving_endpoint:
        name: old-endpoint
        state: absent
"""

RETURN = r"""
serving_endpoint:
  description:
    - The endpoint as the service returns it after the change (before it, in check mode), plaintext secrets
      removed. Absent when the endpoint does not exist.
  returned: when the endpoint exists
  type: dict
  sample:
    name: claude-code-gateway
    id: 0c3b6b1e1b0a4c1f9f1e2d3c4b5a6978
    state:
      ready: READY
      config_update: NOT_UPDATING
    config:
      served_entities:
        - name: claude-sonnet
          external_model:
            provider: anthropic
            name: claude-sonnet-4-5
            task: llm/v1/chat
            anthropic_config:
              anthropic_api_key: "{{secrets/claude/anthropic_api_key}}"
    tags:
      - key: team
        value: platform
msg:
  description: What the module did, in words.
  returned: always
  type: str
  sample: serving endpoint claude-code-gateway updated (config, tags)
changes:
  description: The parts that changed (or would change in check mode) - C(create), C(delete), C(config), C(tags).
  returned: always
  type: list
  elements: str
  sample: [config, tags]
status:
  description: HTTP status of the failed call.
  returned: failure
  type: int
  sample: 409
error_code:
  description: The service's error code of the failed call, or the failed update state.
  returned: failure
  type: str
  sample: RESOURCE_CONFLICT
"""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.module import DatabricksModule
from ansible_collections.databricks_claude.gateway.plugins.module_utils.serving_api import (
    endpoint_path,
    get_endpoint,
    settled,
    wait_not_updating,
    when_not_updating,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.serving_config import (
    MAX_SERVED_ENTITIES,
    SET_ONCE,
    actual_config,
    config_body,
    config_matches,
    created_view,
    desired_entities,
    endpoint_view,
    external_model_lock_in,
    tags_list,
    tags_patch,
    traffic_routes,
    updated_view,
)

RESOURCE = "serving endpoint"

ANTHROPIC_CONFIG = dict(
    anthropic_api_key=dict(type="str", no_log=False),
    anthropic_api_key_plaintext=dict(type="str", no_log=True),
)
BEDROCK_CONFIG = dict(
    aws_region=dict(type="str", required=True),
    bedrock_provider=dict(type="str", required=True, choices=["anthropic", "ai21labs", "amazon", "cohere"]),
    aws_access_key_id=dict(type="str", no_log=False),
    aws_secret_access_key=dict(type="str", no_log=False),
    aws_access_key_id_plaintext=dict(type="str", no_log=True),
    aws_secret_access_key_plaintext=dict(type="str", no_log=True),
    instance_profile_arn=dict(type="str"),
)
EXTERNAL_MODEL = dict(
    provider=dict(type="str", required=True, choices=["anthropic", "amazon-bedrock"]),
    name=dict(type="str", required=True),
    task=dict(type="str", default="llm/v1/chat"),
    anthropic_config=dict(type="dict", options=ANTHROPIC_CONFIG,
                          mutually_exclusive=[["anthropic_api_key", "anthropic_api_key_plaintext"]],
                          required_one_of=[["anthropic_api_key", "anthropic_api_key_plaintext"]]),
    amazon_bedrock_config=dict(type="dict", options=BEDROCK_CONFIG),
)
SERVED_ENTITY = dict(
    name=dict(type="str"),
    external_model=dict(type="dict", options=EXTERNAL_MODEL,
                        required_if=[["provider", "anthropic", ["anthropic_config"]],
                                     ["provider", "amazon-bedrock", ["amazon_bedrock_config"]]]),
    entity_name=dict(type="str"),
    entity_version=dict(type="str"),
    workload_size=dict(type="str"),
    workload_type=dict(type="str"),
    scale_to_zero_enabled=dict(type="bool"),
    min_provisioned_throughput=dict(type="int"),
    max_provisioned_throughput=dict(type="int"),
    provisioned_model_units=dict(type="int"),
    environment_vars=dict(type="dict"),
    instance_profile_arn=dict(type="str"),
)
ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    served_entities=dict(type="list", elements="dict", options=SERVED_ENTITY,
                         mutually_exclusive=[["external_model", "entity_name"]],
                         required_one_of=[["external_model", "entity_name"]]),
    traffic_config=dict(type="dict", options=dict(routes=dict(
        type="list", elements="dict", required=True,
        options=dict(served_entity_name=dict(type="str", required=True),
                     traffic_percentage=dict(type="int", required=True))))),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=True),
    description=dict(type="str"),
    route_optimized=dict(type="bool"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=1200),
)


def call(module, action, fn):
    """fn() with its failures worded '<action> serving endpoint <name>: ...'."""
    with module.api_errors(action, RESOURCE, module.params["name"]):
        return fn()


def find(module):
    return call(module, "get", lambda: get_endpoint(module.client(), module.params["name"]))


def wait(module, action):
    return call(module, action, lambda: wait_not_updating(module.client(), module.params["name"],
                                                          module.params["wait_timeout"]))


def desired(module):
    """(served entities, routes) as the options ask for them; fails on what the service would refuse."""
    params = module.params
    entities = desired_entities(params["served_entities"])
    if len(entities) > MAX_SERVED_ENTITIES:
        module.fail_json(msg="served_entities: %d entities given, but an endpoint serves at most %d; "
                             "split them over several endpoints" % (len(entities), MAX_SERVED_ENTITIES))
    unnamed = [e for e in entities if not e.get("name")]
    if unnamed:
        module.fail_json(msg="served_entities: entity_name %s needs a name or an entity_version (the "
                             "service names it <entity_name>-<entity_version>)" % unnamed[0].get("entity_name"))
    return entities, traffic_routes(params["traffic_config"])


def ensure_absent(module, current):
    name = module.params["name"]
    if current is None:
        return dict(changed=False, msg="%s %s does not exist" % (RESOURCE, name), changes=[])
    if not module.check_mode:
        call(module, "delete", lambda: module.client().delete(endpoint_path(name)))
    return dict(changed=True, before=endpoint_view(current), after=None, changes=["delete"],
                msg="%s %s deleted" % (RESOURCE, name))


def ensure_present(module, current):
    return create(module) if current is None else update(module, current)


def create(module):
    params = module.params
    name = params["name"]
    entities, routes = desired(module)
    if not entities:
        module.fail_json(msg="create %s %s: served_entities is required to create an endpoint" % (RESOURCE, name))
    set_once = {k: params[k] for k in SET_ONCE if params[k] is not None}
    if module.check_mode:
        return dict(changed=True, before=None, after=created_view(name, set_once, entities, routes, params["tags"]),
                    changes=["create"], msg="%s %s would be created" % (RESOURCE, name))
    body = dict(set_once, name=name, config=config_body(entities, routes))
    if params["tags"]:
        body["tags"] = tags_list(params["tags"])
    endpoint = call(module, "create", lambda: module.client().post(endpoint_path(), body))
    if params["wait"]:
        endpoint = wait(module, "create")
    return dict(changed=True, before=None, after=endpoint_view(endpoint), serving_endpoint=endpoint,
                changes=["create"], msg="%s %s created" % (RESOURCE, name))


def refuse_in_place_changes(module, current, entities):
    params = module.params
    for key in SET_ONCE:
        if params[key] is not None and params[key] != current.get(key):
            module.fail_json(
                msg="update %s %s: %s is %r and the service sets it only when the endpoint is created; "
                    "delete the endpoint (state: absent) and create it again to change it"
                    % (RESOURCE, params["name"], key, current.get(key)), error_code="CANNOT_CHANGE_IN_PLACE")
    if entities:
        reason = external_model_lock_in(entities, actual_config(current)["served_entities"])
        if reason:
            module.fail_json(msg="update %s %s: %s" % (RESOURCE, params["name"], reason),
                             error_code="CANNOT_CHANGE_IN_PLACE")


def update(module, current):
    params = module.params
    name, client, timeout = params["name"], module.client(), params["wait_timeout"]
    entities, routes = desired(module)
    refuse_in_place_changes(module, current, entities)
    config_changed = bool(entities) and not config_matches(entities, routes, actual_config(current))
    add_tags, delete_tags = tags_patch(params["tags"], current.get("tags"), params["purge_tags"])
    if (config_changed or add_tags or delete_tags) and not module.check_mode:
        # While someone else's update runs the service refuses config and tag writes (409): let it
        # end, then decide again on what it left behind.
        current = call(module, "wait for the running update of", lambda: settled(client, name, current, timeout))
        config_changed = bool(entities) and not config_matches(entities, routes, actual_config(current))
        add_tags, delete_tags = tags_patch(params["tags"], current.get("tags"), params["purge_tags"])
    changes = (["config"] if config_changed else []) + (["tags"] if add_tags or delete_tags else [])
    before = endpoint_view(current)
    if not changes:
        return dict(changed=False, before=before, after=before, serving_endpoint=current, changes=[],
                    msg="%s %s is up to date" % (RESOURCE, name))
    if module.check_mode:
        after = updated_view(current, entities if config_changed else None, routes, params["tags"],
                             params["purge_tags"])
        return dict(changed=True, before=before, after=after, serving_endpoint=current, changes=changes,
                    msg="%s %s would be updated (%s)" % (RESOURCE, name, ", ".join(changes)))
    if add_tags or delete_tags:  # before the config: once that update runs, a tags PATCH would be refused
        call(module, "update tags of", lambda: when_not_updating(
            client, name, timeout, lambda: client.patch(
                endpoint_path(name, "/tags"), {"add_tags": add_tags, "delete_tags": delete_tags})))
    if config_changed:
        update_config(module, entities, routes)
    endpoint = find(module)
    return dict(changed=True, before=before, after=endpoint_view(endpoint), serving_endpoint=endpoint,
                changes=changes, msg="%s %s updated (%s)" % (RESOURCE, name, ", ".join(changes)))


def update_config(module, entities, routes):
    """PUT the config; a 409 because an update started meanwhile waits for it and tries again."""
    name, client = module.params["name"], module.client()
    call(module, "update", lambda: when_not_updating(
        client, name, module.params["wait_timeout"],
        lambda: client.put(endpoint_path(name, "/config"), config_body(entities, routes))))
    if module.params["wait"]:
        wait(module, "update")


def main():
    module = DatabricksModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(find, ensure_present, ensure_absent)


if __name__ == "__main__":
    main()
