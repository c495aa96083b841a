# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The connection and authentication options every module takes, documented once."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
requirements:
  - databricks-sdk >= 0.40 (on the host that runs the module, usually the controller)
notes:
  - Authentication is the Databricks SDK's unified auth. Options given to the module win; an unset option
    falls back to the matching C(DATABRICKS_*) environment variable, then to the profile in
    C(~/.databrickscfg) (C(DATABRICKS_CONFIG_FILE) points elsewhere). The config file is read only when
    O(profile) or C(DATABRICKS_CONFIG_PROFILE) is set, or when neither a host nor credentials were given.
  - Set the options once for all modules of this collection with
    C(module_defaults) and the action group C(group/databricks_claude.gateway.databricks).
  - Calls answered with HTTP 429 or 503 are retried up to 6 times with jittered exponential backoff
    (honouring C(Retry-After)).
  - "Errors read C(<action> <resource> <name>: <service message>); the result also carries C(status)
    (HTTP status) and C(error_code) as Databricks named them."
options:
  host:
    description:
      - URL of the Databricks workspace (for workspace APIs such as serving endpoints), or of the account
        console such as C(https://accounts.cloud.databricks.com) (for account APIs such as federation policies).
      - If not set, C(DATABRICKS_HOST) or the profile's C(host) is used.
    type: str
  account_id:
    description:
      - The Databricks account ID. Needed by account APIs only.
      - If not set, C(DATABRICKS_ACCOUNT_ID) or the profile's C(account_id) is used.
    type: str
  workspace_id:
    description:
      - The workspace ID, sent with workspace API calls as C(X-Databricks-Workspace-Id) so that a unified host
        (one host serving several workspaces) routes them to the right workspace, as the Databricks SDK does.
      - If not set, C(DATABRICKS_WORKSPACE_ID), the profile's C(workspace_id), or the ID the host announces at
        C(/.well-known/databricks-config) is used. A unified host announces none, so there it is required.
    type: str
  profile:
    description:
      - Name of a profile in C(~/.databrickscfg) to take the host and credentials from.
      - If not set, C(DATABRICKS_CONFIG_PROFILE) is used, else the C(DEFAULT) profile when no other
        configuration was found.
    type: str
  token:
    description:
      - A Databricks OAuth access token or personal access token, sent as a bearer token.
      - If not set, C(DATABRICKS_TOKEN) or the profile's C(token) is used.
      - Prefer OAuth (O(client_id)/O(client_secret), a profile, or workload identity federation) to
        long-lived personal access tokens.
    type: str
  client_id:
    description:
      - Application (client) ID of a service principal, for OAuth machine-to-machine authentication.
      - If not set, C(DATABRICKS_CLIENT_ID) or the profile's C(client_id) is used.
    type: str
  client_secret:
    description:
      - OAuth secret of the service principal named by O(client_id).
      - If not set, C(DATABRICKS_CLIENT_SECRET) or the profile's C(client_secret) is used.
    type: str
  auth_type:
    description:
      - Forces one of the SDK's authentication methods, for example C(pat), C(oauth-m2m), C(databricks-cli),
        C(azure-cli), C(env-oidc) or C(file-oidc), when more than one is configured.
      - If not set, C(DATABRICKS_AUTH_TYPE) or the profile's C(auth_type) is used, else the SDK picks the
        first method whose settings are present.
    type: str
"""
