"""Who may use an endpoint rigtui serves: the API key.

Every user of a machine can connect to 127.0.0.1, so loopback alone keeps out other machines,
not other users. So an endpoint rigtui starts always asks for `Authorization: Bearer KEY`
(the openai client's `api_key`), unless the launch says `--no-key` (loopback only). The key is:

- the value of the environment variable the profile names (`api_key_env = "NAME"`), or else
- this user's key file, `$XDG_CONFIG_HOME/rigtui/api-key` (else ~/.config/rigtui/api-key),
  made on first use with 32 random bytes and mode 0600, and refused when another user owns it
  or others may read it. It stays the same across launches, so a frontend is told it once.

The key reaches the engine child through its environment (`KEY_VAR`; /proc/PID/environ is
readable only by the same user), never through its argv (/proc/PID/cmdline is world-readable).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from rigtui.model.engine import key_hint

KEY_VAR = "RIGTUI_ENDPOINT_KEY"  # the child's copy of the key (environment, never argv)
_MAX_KEY_FILE = 4096


class AccessError(ValueError):
    """The key cannot be had safely (unset variable, a key file others can read, ...)."""


@dataclass(frozen=True)
class EndpointKey:
    key: str | None  # None: anyone who can connect may use the endpoint
    source: str  # "env:NAME", "file:PATH" or "none"

    def check(self, header: str | None) -> bool:
        """Whether an `Authorization` header value grants access (constant-time compare)."""
        if self.key is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.key.encode())

    def describe(self) -> str:
        """Where a client finds the key, for the `serving ...` line."""
        return key_hint(self.source)


def key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "rigtui" / "api-key"


def _valid(key: str) -> bool:
    return 16 <= len(key) <= 512 and key.isascii() and key.isprintable() and " " not in key


def read_key_file(path: Path) -> str:
    """The key in `path`, which must be a regular file of ours that nobody else can read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise AccessError(f"cannot read the API key file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise AccessError(f"the API key file {path} is not a regular file")
        if st.st_uid != os.geteuid():
            raise AccessError(f"the API key file {path} belongs to uid {st.st_uid}, not to you "
                              f"(uid {os.geteuid()}); remove it and rigtui makes a new one")  # fmt: skip
        if st.st_mode & 0o077:
            raise AccessError(f"the API key file {path} can be read by others (mode "
                              f"{stat.S_IMODE(st.st_mode):04o}): chmod 600 {path}, and change the "
                              "key if it may have been seen")  # fmt: skip
        raw = f.read(_MAX_KEY_FILE + 1)
    key = raw.decode("ascii", "replace").strip()
    if len(raw) > _MAX_KEY_FILE or not _valid(key):
        raise AccessError(f"the API key file {path} does not hold one key (16-512 printable "
                          "ASCII characters, no spaces); remove it and rigtui makes a new one")  # fmt: skip
    return key


def load_or_create_key(path: Path | None = None) -> str:
    """This user's key: read from `path` (default `key_file()`), made there first if absent.
    Two launches racing to make it agree on one key (the file appears whole or not at all)."""
    path = path or key_file()
    if not os.path.lexists(path):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
            with contextlib.suppress(FileExistsError):  # another launch made it first: use theirs
                os.link(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return read_key_file(path)


def endpoint_key(api_key_env: str | None, *, no_key: bool = False) -> EndpointKey:
    """The key an endpoint asks for. Raises AccessError when it cannot be had safely."""
    if api_key_env:
        value = os.environ.get(api_key_env, "")
        if not value:
            raise AccessError(f"api_key_env = {api_key_env!r}, but the environment variable "
                              f"{api_key_env} is empty or not set; export it before launching")  # fmt: skip
        if not _valid(value):
            raise AccessError(f"the key in ${api_key_env} must be 16-512 printable ASCII "
                              "characters with no spaces")  # fmt: skip
        return EndpointKey(value, f"env:{api_key_env}")
    if no_key:
        return EndpointKey(None, "none")
    path = key_file()
    return EndpointKey(load_or_create_key(path), f"file:{path}")


def client_key(env: str = "RIGTUI_API_KEY") -> str | None:
    """The key a rigtui client sends to an endpoint it did not start (`sample --engine URL`):
    `$RIGTUI_API_KEY`, else this user's key file when there is one, else none."""
    value = os.environ.get(env)
    if value:
        return value
    path = key_file()
    if not os.path.lexists(path):
        return None
    return read_key_file(path)
