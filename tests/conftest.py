"""Shared pytest fixtures live in tests/support/*_fixtures.py, one module per part."""

pytest_plugins = [
    "tests.support.core_fixtures",
    "tests.support.ansible_fixtures",
    "tests.support.idp_fixtures",
    "tests.support.credential_fixtures",
    "tests.support.launcher_fixtures",
    "tests.support.forward_proxy_fixtures",
]
