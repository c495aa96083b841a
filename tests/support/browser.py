"""A scripted browser for the local test IdP: it follows redirects and submits forms like a user.

Standard library only, because tests/support/scripted-browser runs it under whatever `python3`
the helper's $BROWSER lookup finds. It refuses every non-loopback URL, ignores proxy settings,
and trusts the CA named by REQUESTS_CA_BUNDLE (or SSL_CERT_FILE), which is the test CA in tests.
"""

import http.cookiejar
import ipaddress
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

LOOPBACK_NAMES = {"localhost"}
MAX_STEPS = 12
TIMEOUT = 10


class BrowserError(RuntimeError):
    """The page flow did not go where a user's browser would have gone."""


def is_loopback(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_loopback(url):
    if not is_loopback(url):
        raise BrowserError(f"scripted browser refuses non-loopback URL {urllib.parse.urlsplit(url).netloc!r}")
    return url


class _LoopbackRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        _require_loopback(urllib.parse.urljoin(req.full_url, newurl))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Forms(HTMLParser):
    """Collects each <form>'s action, method and named inputs (hidden, text, and button values)."""

    def __init__(self):
        super().__init__()
        self.forms, self.title, self._in_title = [], "", False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"id": a.get("id"), "action": a.get("action") or "",
                               "method": (a.get("method") or "get").lower(), "fields": {}, "buttons": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""
        elif tag == "button" and self.forms and a.get("name") and not a.get("form"):
            self.forms[-1]["buttons"][a["name"]] = a.get("value") or ""
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


class _Page:
    def __init__(self, url, status, body):
        self.url, self.status, self.body = url, status, body
        parser = _Forms()
        parser.feed(body)
        self.forms, self.title = parser.forms, parser.title.strip()

    def form_with(self, field):
        return next((f for f in self.forms if field in f["fields"]), None)


class _Session:
    def __init__(self):
        ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
        context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _LoopbackRedirects())

    def open(self, url, fields=None):
        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        request = urllib.request.Request(_require_loopback(url), data=data)
        try:
            with self._opener.open(request, timeout=TIMEOUT) as response:
                return _Page(response.geturl(), response.status, response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as error:  # form_post pages carrying an error are served as 400
            return _Page(error.geturl(), error.code, error.read().decode("utf-8", "replace"))

    def submit(self, page, form, extra=None):
        fields = dict(form["fields"], **(extra or {}))
        return self.open(urllib.parse.urljoin(page.url, form["action"]), fields)


def _is_redirect_back(page, form):
    """The form_post page: a form that posts to the app's http:// loopback redirect URI."""
    action = urllib.parse.urljoin(page.url, form["action"])
    return form["method"] == "post" and action.startswith("http://") and is_loopback(action)


def _log_in(session, page, username, action):
    """Submit the IdP's login form; returns the next page."""
    form = page.form_with("username")
    if action == "deny":
        return session.submit(page, form, {"abort": form["buttons"].get("abort", "1")})
    return session.submit(page, form, {"username": username} if username else None)


def sign_in(auth_url, username=None, action="approve"):
    """Run an authorization-code sign-in from `auth_url` to the app's loopback redirect.

    username None keeps the IdP's prefill (login_hint, else its first user). action "deny" presses
    Cancel, so the app receives error=access_denied. Returns the redirect target's status code.
    """
    if action not in ("approve", "deny"):
        raise ValueError(f"sign_in action must be approve or deny, not {action!r}")
    session = _Session()
    page = session.open(auth_url)
    for _step in range(MAX_STEPS):
        back = next((f for f in page.forms if _is_redirect_back(page, f)), None)
        if back is not None:
            return session.submit(page, back).status
        if page.form_with("username") is None:
            raise BrowserError(f"sign-in stopped at {page.title or page.url!r} (HTTP {page.status})")
        page = _log_in(session, page, username, action)
    raise BrowserError("sign-in did not reach the redirect URI")


def approve_device(verification_uri, user_code, username=None):
    """Approve a device-code sign-in as a user would: open verification_uri, type the code, log in."""
    session = _Session()
    page, typed = session.open(verification_uri), False
    for _step in range(MAX_STEPS):
        if page.title == "Sign-in Success":
            return
        user_code_form = page.form_with("user_code")
        if page.form_with("username") is not None:
            page = _log_in(session, page, username, "approve")
        elif user_code_form is not None and "confirm" in user_code_form["fields"]:
            page = session.submit(page, user_code_form)
        elif user_code_form is not None and not typed:
            page, typed = session.submit(page, user_code_form, {"user_code": user_code}), True
        else:
            raise BrowserError(f"device approval stopped at {page.title or page.url!r} (HTTP {page.status})")
    raise BrowserError("device approval did not finish")
