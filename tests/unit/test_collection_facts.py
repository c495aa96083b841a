"""Facts the collection must write twice (the code on the target cannot read the file that owns them), held equal."""

import re
from pathlib import Path

import yaml

from ansible_collections.databricks_claude.gateway.plugins.doc_fragments.connection import ModuleDocFragment
from ansible_collections.databricks_claude.gateway.plugins.module_utils import client

ROOT = Path(__file__).resolve().parents[2]


def test_user_agent_version_is_the_galaxy_version():
    """galaxy.yml owns the version; module_utils runs on the target, where galaxy.yml does not go."""
    assert client.USER_AGENT_VERSION == yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def test_connection_docs_state_the_retries_the_client_makes():
    """client.py owns the retry policy; the doc fragment is plain text that ansible-doc shows."""
    notes = " ".join(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["notes"])
    said = re.search(r"HTTP (\d+) or (\d+) are retried up to (\d+) times", notes)
    assert said, "the connection doc fragment no longer says which answers are retried how often"
    assert tuple(int(n) for n in said.groups()) == client.RETRY_STATUSES + (client.RETRIES,)
