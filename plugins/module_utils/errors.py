# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The errors the Databricks helpers raise, and how failures are worded for users.

- `DatabricksApiError`: the service answered with an error (status, error_code, message as it
  named them), or could not be reached.
- `DatabricksAuthError`: the SDK's unified auth found no usable configuration or credentials.
- `OperationFailed`: the calls worked but the outcome did not (an update ended UPDATE_FAILED,
  a wait timed out, a change the service cannot make in place).

How a module uses them: wrap each step in `with module.api_errors(action, resource, name):`
(module.py); any of these then fails the task with "<action> <resource> <name>: <message>"
plus `status` and `error_code`. Code that must react to one kind of failure tests
`error.status` / `error.error_code` (e.g. 409 RESOURCE_CONFLICT while an update runs).
"""

from __future__ import annotations

import json


class DatabricksApiError(Exception):
    """A Databricks REST call that failed: HTTP status, the service's error_code and message."""

    def __init__(self, status, error_code, message, method=None, path=None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.method = method
        self.path = path

    @classmethod
    def from_response(cls, status, body, method=None, path=None):
        """Parse Databricks' error body ({"error_code", "message"}, or OAuth's {"error", "error_description"})."""
        error_code, message = None, None
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = None
        if isinstance(data, dict):
            error_code = data.get("error_code") or data.get("errorCode") or data.get("error")
            message = data.get("message") or data.get("error_description") or data.get("errorSummary")
        if not message:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
            message = text.strip()[:500] or "HTTP %s with no error message" % status
        return cls(status, str(error_code) if error_code is not None else None, message, method, path)

    @property
    def not_found(self):
        return self.status == 404

    @property
    def conflict(self):
        return self.status == 409

    def details(self):
        """The fields a module returns beside `msg`."""
        return {"status": self.status, "error_code": self.error_code}


class DatabricksAuthError(Exception):
    """The SDK could not build a configuration (no host, conflicting credentials, bad profile...)."""

    def details(self):
        return {"status": None, "error_code": "AUTHENTICATION"}


class OperationFailed(Exception):
    """The API calls succeeded but what they started did not (failed update, timeout, impossible change)."""

    def __init__(self, message, error_code=None):
        super().__init__(message)
        self.message = message
        self.error_code = error_code

    def details(self):
        return {"status": None, "error_code": self.error_code}
