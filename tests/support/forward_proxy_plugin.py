"""A proxy.py plugin for the tests' forward proxy: its DNS for the proxy-only name, and a log of its upstreams.

Loaded by proxy.py itself (`--plugins tests.support.forward_proxy_plugin.ProxyOnlyDns`), so it imports
nothing from the test suite. FORWARD_PROXY_HOSTS: `name=ip,...` only this proxy resolves;
FORWARD_PROXY_LOG: a file that gets one JSON line [host, port] per upstream connection the proxy opens.
"""

import json
import os

from proxy.http.proxy import HttpProxyBasePlugin


class ProxyOnlyDns(HttpProxyBasePlugin):
    def resolve_dns(self, host, port):
        with open(os.environ["FORWARD_PROXY_LOG"], "a") as f:  # O_APPEND: whole lines from every worker
            f.write(json.dumps([host, port]) + "\n")
        names = dict(entry.split("=", 1) for entry in os.environ.get("FORWARD_PROXY_HOSTS", "").split(",") if entry)
        return names.get(host), None
