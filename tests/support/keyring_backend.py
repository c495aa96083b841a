"""A keyring backend for tests: the `keyring` library's real API, with secrets in a JSON file.

No OS keyring (Secret Service, Keychain) runs on the test machine, so tests that check "the
MSAL cache goes to the keyring when a usable backend exists" select this one with
PYTHON_KEYRING_BACKEND=tests.support.keyring_backend.FileKeyring (PYTHONPATH = repo root) and
TEST_KEYRING_FILE=<path>. The file lets a test look inside the "keyring" afterwards.
"""

import json
import os

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1

    @property
    def _path(self):
        return os.environ["TEST_KEYRING_FILE"]

    def _load(self):
        try:
            with open(self._path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _dump(self, data):
        with open(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(data, f)

    def get_password(self, service, username):
        return self._load().get(service, {}).get(username)

    def set_password(self, service, username, password):
        data = self._load()
        data.setdefault(service, {})[username] = password
        self._dump(data)

    def delete_password(self, service, username):
        data = self._load()
        if username not in data.get(service, {}):
            raise PasswordDeleteError(username)
        del data[service][username]
        self._dump(data)
