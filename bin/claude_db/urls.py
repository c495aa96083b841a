"""URLs that a secret is sent to: one strict grammar, so every parser on the way reads the same host.

The ID token goes to databricks_host and the refresh token to the IdP's
endpoints. A URL that two parsers read differently (`http://127.0.0.1@evil`,
`http://evil\\@127.0.0.1`, `%2e` in a host) could pass a loopback check and still
be sent elsewhere, so `parse` accepts only `scheme://host[:port][/path]` with
a plain host name, a dotted IPv4 address or a bracketed IPv6 address: no
userinfo, backslash, percent sign, whitespace or control character in the host
part. Within that grammar urllib.parse and urllib3 (what requests sends with)
agree, and `check_sendable` re-reads each URL with urllib3 right before a
secret goes out, and follows redirects only to URLs that pass the same test.

Plain http only to this machine: literal 127.0.0.0/8, ::1 and `localhost`.
Imports only `re` (already loaded by json): config.py is on the cached-token path.
"""

import re

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
                  r"(?::(?P<port>[0-9]{1,5}))?(?P<rest>[/?#][\x21-\x7e]*)?\Z")
_IPV4 = re.compile(r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}\Z")


class UnsafeUrl(ValueError):
    """A URL a secret must not be sent to; the text says why, without the secret."""


def parse(url: str):
    """(scheme, host, port, rest) of `url` in the strict grammar above, scheme and host lowercased.

    port is the text after the colon ("" when absent); rest is path, query and fragment.
    UnsafeUrl when the URL is outside the grammar.
    """
    match = _URL.match(url) if isinstance(url, str) else None
    if match is None:
        raise UnsafeUrl(_why_not(url))
    port = match.group("port") or ""
    if port and not 0 < int(port) < 65536:
        raise UnsafeUrl("the port must be 1-65535")
    host = match.group("host").lower()
    if ".." in host or host.startswith(".") or host.startswith("-"):
        raise UnsafeUrl("%s is not a valid host name" % host)
    rest = match.group("rest") or ""
    if "\\" in rest:
        raise UnsafeUrl("it contains a backslash")
    return match.group("scheme").lower(), host, port, rest


def is_loopback(host: str) -> bool:
    """True for literal loopback addresses and `localhost`: never a name that merely starts like one."""
    host = host.lower()
    if host in ("localhost", "[::1]", "::1"):
        return True
    return _IPV4.match(host) is not None and host.split(".", 1)[0] == "127"


def cleartext_allowed(scheme: str, host: str) -> bool:
    """A secret may go to this scheme and host: https anywhere, http only to this machine."""
    return scheme == "https" or (scheme == "http" and is_loopback(host))


def check_sendable(url: str, what: str) -> None:
    """Before a secret goes to `url`: the sender's own parser (urllib3) must agree and the scheme be safe.

    Imported lazily (urllib3 comes with requests, which the caller has loaded already).
    """
    from urllib3.util import parse_url

    try:
        scheme, host, port = parse(url)[:3]
        sent = parse_url(url)
    except (UnsafeUrl, ValueError) as e:
        raise UnsafeUrl("%s %s is not a URL a secret may be sent to (%s)" % (what, _shown(url), e))
    if ((sent.scheme or "").lower(), (sent.host or "").lower(), sent.port) != (scheme, host, int(port or 0) or None) \
            or sent.auth:
        raise UnsafeUrl("%s %s is read differently by different URL parsers; refusing to send a secret to it"
                        % (what, _shown(url)))
    if not cleartext_allowed(scheme, host):
        raise UnsafeUrl("%s %s uses plain http to a host that is not this machine; a secret may only go there "
                        "over https" % (what, _shown(url)))


def _why_not(url) -> str:
    if not isinstance(url, str) or "://" not in url:
        return "it is not an absolute URL"
    netloc = re.split(r"[/?#]", url.split("://", 1)[1], 1)[0]
    if "\\" in url:
        return "it contains a backslash"
    if "@" in netloc:
        return "it contains user info (@); remove it"
    if "%" in netloc:
        return "its host is percent-encoded"
    if re.search(r"[\x00-\x20\x7f-\uffff]", url):
        return "it contains whitespace, a control character or a non-ASCII character (use the punycode name)"
    return "it is not scheme://host[:port][/path] with a plain host name or IP address"


def _shown(url) -> str:
    """The URL for a message: bounded, one line (a URL from a server could be anything)."""
    text = " ".join(str(url).split())
    return text if len(text) <= 200 else text[:197] + "..."
