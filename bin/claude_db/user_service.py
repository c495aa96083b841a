"""This user's `claude-db-token serve`: where it listens, where its key is, what its files are called.

One owner for the facts the service, its client key, the files that start it (systemd user
units, the launchd agent) and the settings that point plain `claude` at it must agree on.
Standard library only: the workstation role asks these of the package on the controller.
"""

import os

from .config import home_dir

# A fixed port per user (settings files cannot look one up), below both Linux's (32768-60999) and
# macOS's (49152-65535) ephemeral ranges so no outgoing connection holds it; serve.port overrides.
PORT_BASE = 20000
PORT_SPAN = 10000
DEFAULT_IDLE_STOP = 3600.0
UNIT_NAME = "claude-db-token"  # claude-db-token.socket + claude-db-token.service, systemd --user
LAUNCHD_LABEL = "com.databricks.claude-db-token"
KEY_FILE = "service-key"


def port(config, uid=None) -> int:
    """serve.port, else PORT_BASE + uid mod PORT_SPAN (uid: this process's unless given)."""
    if config.service_port:
        return config.service_port
    return PORT_BASE + (os.getuid() if uid is None else uid) % PORT_SPAN


def idle_stop(config) -> float:
    """Seconds without a request after which the service exits (socket activation starts it again)."""
    return config.service_idle_stop or DEFAULT_IDLE_STOP


def key_path() -> str:
    """The per-user client key (0600 in the state directory): what apiKeyHelper prints in service mode."""
    return os.path.join(home_dir(), KEY_FILE)
