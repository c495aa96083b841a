# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Options the Unity AI Gateway modules share: where a service lives, its rate limits and inference table."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  catalog:
    description: Unity Catalog catalog of the service's schema.
    type: str
    required: true
  schema:
    description: Schema the service lives in; it must exist.
    type: str
    required: true
  name:
    description:
      - Name of the service in the schema; its full name is C(<catalog>.<schema>.<name>).
    type: str
    required: true
  comment:
    description:
      - Description of the service. Not set means left as it is; an empty string removes it.
    type: str
notes:
  - Unity AI Gateway is in Beta (databricks-sdk 0.162 C(AiGatewayAPI)); it is not available on GovCloud or
    Azure Government.
"""

    RATE_LIMITS = r"""
options:
  rate_limits:
    description:
      - Rate limits. Not set means left as they are; an empty list removes them all.
      - Compared as a set, in any order.
    type: list
    elements: dict
    suboptions:
      key:
        description:
          - Who the limit applies to. V(service) is everyone together, V(user_default) each user without a
            limit of their own; V(user), V(user_group) and V(service_principal) the O(rate_limits[].principal)
            named.
        type: str
        required: true
        choices: [service, service_principal, user, user_default, user_group]
      principal:
        description: A user email, a group name or a service principal's application ID (only with the keys that name one).
        type: str
      renewal_period:
        description: The period the limit renews after.
        type: str
        choices: [hour, minute]
        default: minute
      requests:
        description: Requests allowed per period; V(0) refuses every request. Unset means no request limit.
        type: int
      tokens:
        description: Tokens allowed per period; V(0) refuses every request. Unset means no token limit.
        type: int
"""

    INFERENCE_TABLE = r"""
options:
  inference_table:
    description:
      - Logging of requests and responses to the Unity Catalog table C(<catalog_name>.<schema_name>.<table_name_prefix>_payload).
        Not set means left as it is; O(inference_table.enabled=false) removes it.
      - The service refuses to move an existing table to another schema or prefix.
    type: dict
    suboptions:
      enabled:
        description: Whether payloads are logged.
        type: bool
        default: true
      catalog_name:
        description: Catalog of the table.
        type: str
      schema_name:
        description: Schema of the table.
        type: str
      table_name_prefix:
        description: Prefix of the table name; defaults to the service's O(name), as the service does.
        type: str
"""
