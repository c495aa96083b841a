"""Where the secrets of one config live on this machine.

- The MSAL token cache (it holds the IdP refresh token): the OS keyring when the
  config asks for it (token_cache.method "keyring", the default) and a usable
  backend exists; else a 0600 file in ~/.databricks-claude-gateway (0700), unless
  token_cache.fallback is "none".
- The short-lived Databricks token: always a 0600 file there, so that the cached
  path needs no keyring (importing keyring costs ~10x starting Python).

Files are written atomically (temp file + rename) so a reader never sees half a
file; a corrupt or truncated file is reported with a warning and treated as missing.
Secrets of different configs never mix: names carry a checksum of Config.identity
and the token file repeats the identity, checked on read.
"""

from __future__ import annotations

import binascii
import errno
import json
import os

from .config import check_state_dir, home_dir, state_dir
from .errors import AuthError, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

KEYRING_SERVICE = "databricks-claude-gateway"
_reported = set()  # (file, warning) pairs already said in this process (get_token reads twice)


class Store:
    """The token file, the MSAL cache and the refresh lock file of one config."""

    def __init__(self, config):
        self.config = config
        key = "%08x" % (binascii.crc32(config.identity.encode("utf-8")) & 0xFFFFFFFF)
        directory = home_dir()
        self.token_path = os.path.join(directory, "token-%s.json" % key)
        self.msal_path = os.path.join(directory, "msal-cache-%s.json" % key)
        self.lock_path = os.path.join(directory, "refresh-%s.lock" % key)
        self.keyring_user = "msal-cache-%s" % key
        self.save_failed = False  # a write failed in this process and the user was told (one warning is enough)

    def refresh_lock(self, waiting_for: Optional[str] = None):
        """The cross-process lock every refresh of this config's tokens happens under.

        waiting_for: what to say on stderr when another process holds it (None: wait silently, as the
        proxy's threads do, so that nothing lands on Claude Code's terminal)."""
        from .refresh_lock import refresh_lock  # only refreshes need it: keep the cached path lean
        state_dir()
        return refresh_lock(self.lock_path, waiting_for)

    # -- the Databricks token ------------------------------------------------
    def read_token(self) -> Optional[dict]:
        """{"access_token", "expires_at"} of this config's cached token, or None."""
        data = _read_json(self.token_path, "cached Databricks token")
        if data is None:
            return None
        if data.get("identity") != self.config.identity:
            return None  # another config's token (checksum collision): not ours
        if not isinstance(data.get("access_token"), str) or not _is_time(data.get("expires_at")):
            _warn_once(self.token_path, "ignoring the damaged cached Databricks token %s; it will be replaced"
                       % self.token_path)
            return None
        return data

    def write_token(self, access_token: str, expires_at: float) -> None:
        """Save the token (OSError when it cannot be written: the caller still has the token)."""
        _write_private(self.token_path, json.dumps({"identity": self.config.identity, "access_token": access_token,
                                                    "expires_at": expires_at}))

    # -- the MSAL cache (refresh token) --------------------------------------
    def read_msal_cache(self) -> Optional[str]:
        """The serialized MSAL cache, from the keyring or the file; None when there is none."""
        keyring = self._keyring()
        if keyring is not None:
            try:
                data = keyring.get_password(KEYRING_SERVICE, self.keyring_user)
            except Exception as e:  # any backend failure (locked, no D-Bus, ...) means "not usable now"
                self._keyring_failed(e)
            else:
                if data is not None:
                    if _is_json_object(data):
                        return data
                    warn("ignoring the unreadable MSAL cache in the OS keyring; you will be asked to sign in")
                    return None
        data = _read_json(self.msal_path, "MSAL token cache")
        return None if data is None else json.dumps(data)

    def write_msal_cache(self, data: str) -> None:
        """Save the sign-in; the previous one stays in place until the new one is written in full (OSError)."""
        keyring = self._keyring()
        if keyring is not None:
            try:
                keyring.set_password(KEYRING_SERVICE, self.keyring_user, data)
            except Exception as e:
                self._keyring_failed(e)
            else:
                _remove(self.msal_path)  # a refresh token never lingers on disk once the keyring has it
                return
        _write_private(self.msal_path, data)

    # -- everything ------------------------------------------------------------
    def make_private(self) -> list:
        """chmod 600 the secret files that group or others could read; returns them (for `doctor`)."""
        fixed = []
        for path in (self.token_path, self.msal_path):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue  # missing, or a symlink: reading ignores it and writing replaces it
            try:
                info = os.fstat(fd)
                if info.st_mode & 0o077 and info.st_uid == os.geteuid():
                    os.fchmod(fd, 0o600)
                    fixed.append("%s was %o" % (path, info.st_mode & 0o777))
            finally:
                os.close(fd)
        return fixed

    def forget(self) -> list:
        """Delete every cached secret of this config; returns where they were (for `logout`)."""
        removed = [path for path in (self.token_path, self.msal_path) if _remove(path)]
        keyring = self._keyring()
        if keyring is not None:
            try:
                if keyring.get_password(KEYRING_SERVICE, self.keyring_user) is not None:
                    keyring.delete_password(KEYRING_SERVICE, self.keyring_user)
                    removed.append("OS keyring entry %s/%s" % (KEYRING_SERVICE, self.keyring_user))
            except Exception as e:
                self._keyring_failed(e)
        return removed

    def msal_cache_location(self) -> str:
        """Where the MSAL cache goes, in words (for `status` and `doctor`)."""
        keyring = self._keyring()
        if keyring is not None:
            return "OS keyring (%s)" % type(keyring.get_keyring()).__module__
        return self.msal_path

    def _keyring(self):
        """The keyring module when the config wants it and a usable backend exists, else None."""
        if self.config.token_cache_method != "keyring":
            return None
        try:
            import keyring
            from keyring.backends import fail, null
            backend = keyring.get_keyring()
            usable = not isinstance(backend, (fail.Keyring, null.Keyring))
        except Exception as e:
            return self._keyring_failed(e)
        if not usable:
            return self._keyring_failed(None)
        return keyring

    def _keyring_failed(self, error: Optional[Exception]):
        """Fall back to the file (None), or stop when the config forbids it."""
        reason = "no usable OS keyring backend" if error is None else "the OS keyring failed (%s)" % (
            type(error).__name__)
        if self.config.token_cache_fallback == "none":
            raise AuthError("%s and token_cache.fallback is \"none\" in %s; unlock or install a keyring, or set "
                            "token_cache.fallback to \"file\"" % (reason, self.config.path))
        if error is not None:
            warn("%s; keeping the sign-in in %s instead" % (reason, self.msal_path))
        return None


def _read_json(path: str, what: str) -> Optional[dict]:
    """The JSON object in `path`; None (with a warning when it is damaged) otherwise.

    Never through a symlink, never from a FIFO or device (O_NOFOLLOW, O_NONBLOCK, regular files only);
    a file that group or others can read is tightened to 0600 first."""
    check_state_dir(os.path.dirname(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        reason = "it is a symbolic link" if e.errno == errno.ELOOP else e.strerror or e
        _warn_once(path, "cannot read the %s %s (%s); ignoring it" % (what, path, reason))
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if (info.st_mode & 0o170000) != 0o100000:
            _warn_once(path, "ignoring the %s %s: it is not a regular file" % (what, path))
            return None
        if info.st_uid != os.geteuid():
            _warn_once(path, "ignoring the %s %s: it belongs to another user" % (what, path))
            return None
        if info.st_mode & 0o077:
            _make_private(fd, path, what, info.st_mode)
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        _warn_once(path, "ignoring the damaged %s %s; it will be replaced" % (what, path))
        return None
    return data


def _make_private(fd: int, path: str, what: str, mode: int) -> None:
    try:
        os.fchmod(fd, 0o600)
    except OSError as e:
        _warn_once(path, "the %s %s can be read by other users (mode %o) and could not be made 0600 (%s); "
                         "fix: chmod 600 %s" % (what, path, mode & 0o777, e.strerror or e, path))
    else:
        _warn_once(path, "the %s %s could be read by other users (mode %o); made it 0600" % (what, path, mode & 0o777))


def _warn_once(path: str, message: str) -> None:
    if (path, message) not in _reported:
        _reported.add((path, message))
        warn(message)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def _is_time(value) -> bool:
    """An epoch time a token can expire at: a finite number (NaN would never count as expired)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -1e12 < value < 1e12


def _write_private(path: str, text: str) -> None:
    """Write `text` to `path` with mode 0600, atomically, in the 0700 state directory."""
    state_dir()
    tmp = "%s.%d.%s.tmp" % (path, os.getpid(), binascii.hexlify(os.urandom(4)).decode())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except FileNotFoundError:
        return False
