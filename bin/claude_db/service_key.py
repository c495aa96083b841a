"""The per-user service's client key: what plain `claude` shows `claude-db-token serve` instead of a token.

A random key, 0600 in the 0700 state directory (user_service.key_path()), read and written with the
token store's own file helpers: atomically, never through a symlink, never someone else's file. It
works only against this user's service on this machine; `logout` and `serve --rotate-key` replace it,
and a running service takes the new one at its next request without a restart (service.ClientKey).
Standard library only, and light: `--service-key` (an apiKeyHelper, run often) imports it.
"""

from __future__ import annotations

import json
import os

from .store import _read_json, _write_private
from .user_service import key_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

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
    key = os.urandom(32).hex()
    _write_private(key_path(), json.dumps({"key": key}))
    return key
