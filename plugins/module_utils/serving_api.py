# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Serving-endpoint calls that need more than one request: waiting for config updates.

A config update (and a create) runs in the background: `state.config_update` is IN_PROGRESS
until it ends NOT_UPDATING, UPDATE_FAILED or UPDATE_CANCELED, and while it runs the service
refuses another write with 409. Neither the status nor its error_code (RESOURCE_CONFLICT is
what it has been seen to send) is documented, so every 409 counts, and every writer checks
`config_update` before writing rather than relying on the 409 alone.

How a module uses it:

    endpoint = get_endpoint(client, name)                          # None when absent
    endpoint = wait_not_updating(client, name, timeout)            # OperationFailed on failure/timeout
    endpoint = settled(client, name, endpoint, timeout)            # waits first if an update runs
    when_not_updating(client, name, timeout, lambda: client.put(...))   # a 409 waits, then retries
"""

from __future__ import annotations

import random
import time

from urllib.parse import quote

from ansible_collections.databricks_claude.gateway.plugins.module_utils.errors import (
    DatabricksApiError,
    OperationFailed,
)
from ansible_collections.databricks_claude.gateway.plugins.module_utils.serving_config import config_update_state

FAILED_STATES = ("UPDATE_FAILED", "UPDATE_CANCELED")
POLL_CAP = 10.0  # seconds between polls, at most


def endpoint_path(name=None, suffix=""):
    """The path of the workspace's serving endpoints, of endpoint `name`, or of its `suffix` (/config, /tags...)."""
    if name is None:
        return "/api/2.0/serving-endpoints"
    return "%s/%s%s" % (endpoint_path(), quote(name, safe=""), suffix)


def permissions_path(endpoint_id):
    return "/api/2.0/permissions/serving-endpoints/%s" % quote(str(endpoint_id), safe="")


def get_endpoint(client, name):
    return client.get(endpoint_path(name), missing_ok=True)


def poll_delays(rand=random.random):
    """Like the SDK's waiter: attempt n sleeps min(n, POLL_CAP) / 2 seconds plus up to 0.5 s of jitter."""
    attempt = 0
    while True:
        attempt += 1
        yield min(attempt, POLL_CAP) / 2 + rand() / 2


def _failure_message(endpoint, state):
    reasons = []
    for config in (endpoint.get("pending_config"), endpoint.get("config")):
        for entity in (config or {}).get("served_entities") or []:
            message = (entity.get("state") or {}).get("deployment_state_message")
            if message and message not in reasons:
                reasons.append(message)
    return "config update ended %s%s" % (state, (": " + "; ".join(reasons)) if reasons else "")


def wait_not_updating(client, name, timeout, sleep=time.sleep, clock=time.monotonic, delays=poll_delays):
    """Poll GET until state.config_update is NOT_UPDATING; return the endpoint.

    Raises OperationFailed when the update ends UPDATE_FAILED / UPDATE_CANCELED, when the endpoint
    disappears, or after `timeout` seconds.
    """
    deadline = clock() + timeout
    waits = delays()
    while True:
        endpoint = get_endpoint(client, name)
        if endpoint is None:
            raise OperationFailed("the endpoint was deleted while waiting for its update", "RESOURCE_DOES_NOT_EXIST")
        state = config_update_state(endpoint)
        if state in FAILED_STATES:
            raise OperationFailed(_failure_message(endpoint, state), state)
        if state != "IN_PROGRESS":
            return endpoint
        remaining = deadline - clock()
        if remaining <= 0:
            raise OperationFailed("config update still IN_PROGRESS after wait_timeout=%ss" % timeout, "TIMEOUT")
        sleep(min(next(waits), remaining))


def settled(client, name, endpoint, timeout):
    """`endpoint` (as read) if no update runs, else the endpoint as that update leaves it."""
    if config_update_state(endpoint) != "IN_PROGRESS":
        return endpoint
    return wait_not_updating(client, name, timeout)


def when_not_updating(client, name, timeout, call, sleep=time.sleep, clock=time.monotonic):
    """Run `call()`; if the service answers 409 (any error_code) because an update is running, wait for
    that update to end and call again.

    Bounded by `timeout` seconds overall. A 409 while nothing is updating is retried twice (the
    update may have just ended), then raised; other errors propagate unchanged.
    """
    deadline = clock() + timeout
    stale_conflicts = 0
    while True:
        try:
            return call()
        except DatabricksApiError as e:
            if not e.conflict or clock() >= deadline:
                raise
            endpoint = get_endpoint(client, name)
            if config_update_state(endpoint) != "IN_PROGRESS":
                stale_conflicts += 1
                if stale_conflicts > 2:
                    raise
                sleep(1)
                continue
        wait_not_updating(client, name, max(deadline - clock(), 0), sleep=sleep, clock=clock)
