"""claude_db: Claude Code on Databricks, signed in with the company IdP (no PATs).

The workstation package behind `claude-db-token` (credentials) and `claude-db`
(launcher + loopback proxy). Runs on Python >= 3.9; modules on the cached-token
path import only the standard library so that `claude-db-token --raw` stays fast.
"""
