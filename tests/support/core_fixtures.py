"""Fixtures every part of the suite shares: the test CA and the fake Databricks."""

import pytest

from tests.support.fake_databricks import make_fake
from tests.support.pki import make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def fake_databricks(pki):
    """A fresh fake workspace + account over HTTPS (the test CA), stopped after the test."""
    fake = make_fake()
    fake.start(tls=pki.server_context())
    yield fake
    fake.stop()
