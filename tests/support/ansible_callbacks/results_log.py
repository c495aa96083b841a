# -*- coding: utf-8 -*-
# Copyright (c) 2026, databricks_claude.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test-only callback: appends every task result (as Ansible hands it to callbacks) to a JSON-lines file.

The tests read results from here instead of scraping screen output, which stays the default
callback's (so -vvv assertions see exactly what a user would). Enabled by
tests/support/ansible_fixtures.py through ANSIBLE_CALLBACK_PLUGINS / ANSIBLE_CALLBACKS_ENABLED;
the file is named by the RESULTS_LOG environment variable.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: results_log
type: aggregate
short_description: Write task results and play stats as JSON lines to the file in RESULTS_LOG
description:
  - Test-only. One line per task result, and one line with the play recap stats.
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "results_log"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, record):
        path = os.environ.get("RESULTS_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, default=str) + "\n")

    def _task(self, result, status):
        self._write({"type": "task", "status": status, "task": result.task_name, "action": result.task.action,
                     "host": result.host.get_name(), "result": result.result})

    def v2_runner_on_ok(self, result):
        self._task(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._task(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._task(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._task(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        self._write({"type": "stats", "stats": dict((h, stats.summarize(h)) for h in hosts)})
