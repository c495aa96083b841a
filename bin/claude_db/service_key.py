"""The per-user service's client key: what plain `claude` shows `claude-db-token serve` instead of a token.

A random key, 0600 in the 0700 state directory (user_service.key_path()), read and written with the
token store's own file helpers: atomically, never through a symlink, never someone else's file. It
works only against this user's service on this machine; `logout` and `serve --rotate-key` replace it,
and a running service takes the new one at its next request without a restart.
"""

from __future__ import annotations

import base64
import hmac
import json
import os

from .store import _read_json, _write_private
from .user_service import key_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional

_WHAT = "service client key"


def read_key(path: Optional[str] = None) -> Optional[str]:
    """The key in the file, or None when there is none (a damaged or foreign file is warned about and ignored)."""
    data = _read_json(path or key_path(), _WHAT)
    key = data.get("key") if data else None
    return key if isinstance(key, str) and key else None


def ensure_key() -> str:
    """The key, made first when there is none."""
    return read_key() or rotate_key()


def rotate_key() -> str:
    """A new key in place of the old one (which stops working at the service's next request)."""
    key = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode("ascii")
    _write_private(key_path(), json.dumps({"key": key}))
    return key


class ClientKey:
    """The service's check of `Authorization: Bearer <key>`, following the key file as it is rotated.

    Each request head costs one lstat of the key file; the file is re-read only when it changed (inode,
    size or mtime), so the old key is refused from the first request after a rotation on. `changed`
    runs after a rotation (the service then drops the Databricks token it holds: a logout takes effect)."""

    def __init__(self, path: Optional[str] = None, changed: Optional[Callable[[], None]] = None):
        self.path = path or key_path()
        self.changed = changed
        self._stamp = None
        self._expected = None  # type: Optional[bytes]
        self._load()

    def accepts(self, authorization: bytes) -> bool:
        if self._file_stamp() != self._stamp:
            self._load()
            if self.changed is not None:
                self.changed()
        return self._expected is not None and hmac.compare_digest(authorization, self._expected)

    def _load(self) -> None:
        self._stamp = self._file_stamp()
        key = read_key(self.path)
        self._expected = None if key is None else b"Bearer " + key.encode("ascii")

    def _file_stamp(self):
        try:
            info = os.lstat(self.path)
        except OSError:
            return None
        return info.st_ino, info.st_size, info.st_mtime_ns
