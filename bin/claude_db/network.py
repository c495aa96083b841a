"""How every outgoing connection leaves this machine: which egress proxy, which CA bundle, one answer for all.

The IdP (MSAL), the token exchange, `doctor` and the auth proxy's upstream pool
all ask here, so that `doctor` checks the path the prompts take.

Proxy: `network.proxy` in the config, else HTTPS_PROXY / HTTP_PROXY / ALL_PROXY
(lower case first), read with requests' own helpers, so NO_PROXY means what it
means to requests and curl (host suffixes, IPs, CIDR ranges, `*`); NO_PROXY also
exempts hosts from `network.proxy`. The config beats the environment, as git's
http.proxy and npm's proxy do: the platform team set it for the fleet, and a
stray HTTPS_PROXY exported for some other tool must not reroute the sign-in.
Only http:// proxies (CONNECT tunnels); `user:password@` is Basic proxy auth.

CA bundle: `network.ca_bundle`, else REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
SSL_CERT_FILE, else the default store; for TLS-inspecting proxies.

Nothing heavy is imported at module level: the launcher calls
`loopback_no_proxy` before Claude Code starts.
"""

from __future__ import annotations

import os

from .errors import AuthError, ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from typing import Optional, Tuple

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
# Claude Code must reach the loopback auth proxy directly, whatever proxy the user's environment names.
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class Route:
    """How connections to one host go out: directly, or through an HTTP proxy with CONNECT."""

    __slots__ = ("host", "port", "proxy", "source")

    def __init__(self, host: str, port: int, proxy: Optional[str] = None, source: str = ""):
        self.host = host
        self.port = port
        self.proxy = proxy  # the proxy URL, credentials included: never print it, print `shown`
        self.source = source  # where the proxy came from: "HTTPS_PROXY", "network.proxy in <file>"

    @property
    def target(self) -> str:
        """host:port as CONNECT names it (an IPv6 address in brackets)."""
        return ("[%s]:%d" if ":" in self.host else "%s:%d") % (self.host, self.port)

    @property
    def shown(self) -> str:
        """The proxy URL with its password replaced by ***."""
        return redact(self.proxy) if self.proxy else ""

    def proxy_address(self) -> Tuple[str, int]:
        from urllib.parse import urlsplit
        url = urlsplit(self.proxy)
        return url.hostname, url.port or 80

    def proxy_authorization(self) -> Optional[str]:
        """The Proxy-Authorization value for `user:password@` in the proxy URL (Basic), else None."""
        import base64
        from urllib.parse import unquote, urlsplit
        url = urlsplit(self.proxy)
        if url.username is None:
            return None
        pair = "%s:%s" % (unquote(url.username), unquote(url.password or ""))
        return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")

    def describe(self) -> str:
        return "via proxy %s (%s)" % (self.shown, self.source) if self.proxy else "direct"

    def refused(self, status: int, reason: str) -> str:
        """The proxy answered CONNECT with something other than 2xx: what it means and what to fix."""
        if status == 407:
            fix = "check the user and password in %s" % self.source
        elif status == 403:
            fix = "the proxy does not allow %s; ask your network team to allow it" % self.target
        else:
            fix = "the proxy could not reach %s; check the host name, or ask your network team" % self.target
        return "the proxy %s refused the tunnel to %s (HTTP %d%s); %s" % (
            self.shown, self.target, status, (" " + reason) if reason else "", fix)

    def unreachable(self, why: str) -> str:
        return "cannot connect to the proxy %s (%s); check %s" % (self.shown, why, self.source)


def route(config, url: str) -> Route:
    """The route for `url` (an http(s) URL). ConfigError for a proxy URL we cannot use."""
    from requests.utils import get_environ_proxies, select_proxy, should_bypass_proxies
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    configured = getattr(config, "network_proxy", None)
    if configured:
        if should_bypass_proxies(url, None):  # NO_PROXY from the environment
            return Route(parts.hostname, port)
        return Route(parts.hostname, port, checked_proxy(configured, "network.proxy in %s" % config.path),
                     "network.proxy in %s" % config.path)
    proxy = select_proxy(url, get_environ_proxies(url))
    if not proxy:
        return Route(parts.hostname, port)
    source = _environment_source(parts.scheme, proxy)
    return Route(parts.hostname, port, checked_proxy(proxy, source), source)


def redact(proxy_url: str) -> str:
    """The URL with any password replaced by ***, for messages and doctor."""
    scheme, sep, rest = proxy_url.partition("://")
    if not sep:
        scheme, rest = "", proxy_url
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = "%s:***@%s" % (user, host) if ":" in userinfo else "%s@%s" % (user, host)
    return "%s%s%s%s%s" % (scheme, sep, netloc, slash, path)


def ca_bundle(config) -> Tuple[Optional[str], str]:
    """(path or None, where it came from): network.ca_bundle, then the CA variables, else the default store."""
    configured = getattr(config, "network_ca_bundle", None)
    if configured:
        path, source = os.path.expanduser(configured), "network.ca_bundle in %s" % config.path
    else:
        name = next((n for n in CA_VARIABLES if os.environ.get(n)), None)
        if name is None:
            return None, "the default CA store"
        path, source = os.environ[name], name
    if not os.path.exists(path):
        raise ConfigError("the CA bundle %s (from %s) does not exist; fix the path or remove that setting"
                          % (path, source))
    return path, source


def ssl_context(config) -> ssl.SSLContext:
    """What the auth proxy's pool verifies the workspace with: the same CA bundle requests uses."""
    import ssl
    path = ca_bundle(config)[0]
    if path and os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def session(config, timeout=None):
    """A requests.Session whose every request takes route() and ca_bundle(), not requests' own env reading."""
    import requests
    http = requests.Session()
    http.trust_env = False  # no env proxies/CA/netrc behind our back: route() and ca_bundle() decide
    http.verify = ca_bundle(config)[0] or True
    send = http.request

    def request(method, url, **kwargs):
        chosen = route(config, url)
        if chosen.proxy:
            kwargs.setdefault("proxies", {"http": chosen.proxy, "https": chosen.proxy})
        if timeout is not None:
            kwargs.setdefault("timeout", timeout)
        return send(method, url, **kwargs)

    http.request = request
    return http


def request_failure(config, url: str, error: Exception, where: str) -> Optional[AuthError]:
    """A one-line AuthError for a requests error that the proxy or TLS caused; None for anything else."""
    import re
    import requests
    if isinstance(error, requests.exceptions.ProxyError):
        chosen = route(config, url)
        text = str(error)
        refused = re.search(r"Tunnel connection failed: (\d{3}) ?([A-Za-z -]*)", text)
        if refused:
            return AuthError(chosen.refused(int(refused.group(1)), refused.group(2).strip()))
        why = re.search(r"\[Errno -?\d+\] ([A-Za-z -]+)", text)
        return AuthError(chosen.unreachable(why.group(1).strip().lower() if why else type(error).__name__))
    if isinstance(error, requests.exceptions.SSLError):
        return AuthError(tls_failure(config, where))
    return None


def tls_failure(config, where: str) -> str:
    """Certificate verification failed: name the CA setting in force, and the one to set."""
    path, source = ca_bundle(config)
    config_path = getattr(config, "path", "the config file")
    if path:
        return ("TLS verification failed for %s with the CA bundle %s (from %s); if your network inspects TLS, "
                "that bundle must hold your company's CA" % (where, path, source))
    return ("TLS verification failed for %s; if your network inspects TLS, set network.ca_bundle in %s (or "
            "REQUESTS_CA_BUNDLE) to your company's CA bundle" % (where, config_path))


def loopback_no_proxy(env) -> str:
    """The user's NO_PROXY/no_proxy entries plus 127.0.0.1 and localhost, for Claude Code's environment."""
    entries = []
    for name in ("no_proxy", "NO_PROXY"):
        for entry in (env.get(name) or "").split(","):
            entry = entry.strip()
            if entry and entry not in entries:
                entries.append(entry)
    entries.extend(n for n in LOOPBACK_NAMES if n not in entries)
    return ",".join(entries)


def checked_proxy(proxy: str, source: str) -> str:
    """The proxy URL with its scheme; ConfigError unless it is an http:// proxy."""
    scheme, sep, rest = proxy.partition("://")
    if not sep:
        return "http://" + proxy  # host:port, as curl and requests read it
    if scheme.lower() != "http" or not rest.strip("/"):
        raise ConfigError("the proxy %s (from %s) must be an http:// proxy URL, e.g. http://proxy.example.com:3128 "
                          "or http://user:password@proxy.example.com:3128" % (redact(proxy), source))
    return proxy


def _environment_source(scheme: str, proxy: str) -> str:
    for name in (scheme + "_proxy", scheme.upper() + "_PROXY", "all_proxy", "ALL_PROXY"):
        if os.environ.get(name) == proxy:
            return name
    return "the system proxy settings"
