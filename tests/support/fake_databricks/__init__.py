"""A stateful fake of Databricks (workspace + account) for tests and the sandbox.

`make_fake()` builds one with every API area registered. Each area is a module
here with a `register(fake)` function; add new ones to AREAS.
"""

from . import accounts, serving
from . import messages
from . import oidc
from . import scim
from . import unity
from .server import ApiError, DropConnection, FakeDatabricks, Request, Response, TokenInfo

AREAS = [accounts, serving, messages, oidc, unity, scim]


def make_fake(**kwargs) -> FakeDatabricks:
    fake = FakeDatabricks(**kwargs)
    for area in AREAS:
        area.register(fake)
    return fake


__all__ = ["ApiError", "DropConnection", "FakeDatabricks", "Request", "Response", "TokenInfo", "make_fake"]
