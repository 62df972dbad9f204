"""Where profiles live, and writing them: atomic, comment-keeping (tomlkit).

Lookup order for a name: the user's directory (`$XDG_CONFIG_HOME/rigtui/profiles` or
`~/.config/rigtui/profiles`), then the examples shipped with rigtui (`rigtui/profiles/examples`,
also the repository's `profiles/`).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from rigtui.model.profile import ProfileRef

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
SUFFIX = ".toml"


def user_profile_dir() -> Path:
    """`$XDG_CONFIG_HOME/rigtui/profiles` or `~/.config/rigtui/profiles` (may not exist yet)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "rigtui" / "profiles"


def example_dir() -> Path:
    return EXAMPLES_DIR


def list_profiles() -> list[ProfileRef]:
    """User profiles, then examples not shadowed by a user profile of the same name."""
    refs: list[ProfileRef] = []
    seen: set[str] = set()
    for origin, directory in (("user", user_profile_dir()), ("example", example_dir())):
        if not directory.is_dir():
            continue
        for p in sorted(directory.glob(f"*{SUFFIX}")):
            name = p.name[: -len(SUFFIX)]
            if name in seen or name.startswith("."):
                continue
            seen.add(name)
            refs.append(ProfileRef(name=name, path=str(p), origin=origin))
    return refs


def find_profile(name_or_path: str | os.PathLike[str], *, near: str | None = None) -> Path | None:
    """A path (anything with a slash or ending .toml that exists), else a name looked up in the
    directory `near` (for `extends`), the user directory, then the examples. A relative path
    is relative to `near` when given (an `extends` is the profile's, not the working dir's)."""
    text = os.fspath(name_or_path)
    p = Path(os.path.expanduser(text))
    if near and not p.is_absolute():
        p = Path(near) / p
    # exists(), not is_file(): a FIFO or a directory is found, and reading it says what it is
    if ("/" in text or text.endswith(SUFFIX)) and p.exists():
        return p
    name = text[: -len(SUFFIX)] if text.endswith(SUFFIX) else text
    if "/" in name:
        return None
    dirs = [Path(near)] if near else []
    dirs += [user_profile_dir(), example_dir()]
    for d in dirs:
        candidate = d / f"{name}{SUFFIX}"
        if candidate.exists():
            return candidate
    return None


MAX_PROFILE_BYTES = 1 << 20  # the examples are ~3 KB; a larger file is not a launch profile


def read_profile_file(path: str | os.PathLike[str], errors: str = "strict") -> str:
    """A profile's text, read with a bound: OSError for what is not a regular file (a FIFO
    would block, /dev/zero never end) or is over MAX_PROFILE_BYTES; UnicodeDecodeError for
    what is not UTF-8 (unless `errors` says how to decode it anyway, e.g. "replace")."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait for a writer
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a directory)")
        data = f.read(MAX_PROFILE_BYTES + 1)
    if len(data) > MAX_PROFILE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_PROFILE_BYTES >> 10} KiB: not a launch profile")
    return data.decode("utf-8", errors)


def save_profile_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` atomically (temp file in the same directory, fsync, rename): a
    crash never leaves a half-written profile. A symlinked profile is written through the link
    (the temp file sits beside the target, so the rename stays on one filesystem)."""
    path = Path(os.path.realpath(path))
    refuse_read_only(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes 0600; keep an existing file's mode, else what open() would give
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def refuse_read_only(path: Path) -> None:
    """PermissionError when `path` exists and its owner made it read-only (or we may not write
    it): the rename of an atomic save would replace it regardless, root or not."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if not st.st_mode & 0o200 or not os.access(path, os.W_OK):
        raise PermissionError(f"{path} is read-only (mode {st.st_mode & 0o777:04o}); make it "
                              f"writable (chmod u+w) or duplicate it to change a copy")  # fmt: skip


def _umask() -> int:
    """The process umask from /proc/self/status (os.umask would change it for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def update_text(text: str, changes: dict[str, Any]) -> str:
    """`text` with `changes` applied, comments and order kept. Dotted keys ("sampling.top_k")
    go into tables; a value of None removes the key. Raises ValueError when the result would
    not hold exactly the old values with `changes` applied (the edit is then not made)."""
    import tomlkit

    expected = _applied(tomllib.loads(text), changes)
    doc = tomlkit.parse(text)
    # A key the file only shows commented out (`# threads = 8`, as in the examples) is set in
    # place of that line, next to its documentation, rather than appended at the end.
    pending = {}
    for key, value in changes.items():
        table, _, leaf = key.rpartition(".")
        present = doc.get(table, {}) if table else doc
        if value is None or leaf in present or (table and table not in doc):
            pending[key] = value
            continue
        replaced = _uncomment(text, table, leaf, tomlkit.item(value).as_string())
        # the line may sit inside a multi-line string: then it is text, not a comment
        if replaced is None or not _holds(replaced, _applied(tomllib.loads(text), {key: value})):
            pending[key] = value
        else:
            text = replaced
    doc = tomlkit.parse(text)
    for key, value in pending.items():
        parts = key.split(".")
        container: Any = doc
        for part in parts[:-1]:
            if part not in container:
                if value is None:
                    break
                container[part] = tomlkit.table()
            container = container[part]
        else:
            leaf = parts[-1]
            if value is None:
                if leaf in container:
                    del container[leaf]
            else:
                container[leaf] = value
    out = tomlkit.dumps(doc)
    if not _holds(out, expected):
        raise ValueError(f"setting {', '.join(changes)} would change other values of the file; "
                         "nothing was saved: edit the file by hand")  # fmt: skip
    return out


def _applied(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The parsed profile `data` with dotted-key `changes` applied (None deletes)."""
    import copy

    out = copy.deepcopy(data)
    for key, value in changes.items():
        *tables, leaf = key.split(".")
        container = out
        for part in tables:
            nxt = container.get(part)
            if not isinstance(nxt, dict):
                if value is None:
                    break
                nxt = container[part] = {}
            container = nxt
        else:
            if value is None:
                container.pop(leaf, None)
            else:
                container[leaf] = list(value) if isinstance(value, tuple) else value
    return out


def _holds(text: str, expected: dict[str, Any]) -> bool:
    try:
        return tomllib.loads(text) == expected
    except tomllib.TOMLDecodeError:
        return False


def _uncomment(text: str, table: str, leaf: str, value_text: str) -> str | None:
    """`text` with the line `# leaf = ...` of `[table]` ("" = top level) replaced by the real
    assignment (keeping a trailing `  # comment`), or None when there is no such line."""
    lines = text.split("\n")
    current = ""
    for i, line in enumerate(lines):
        m = re.match(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]", line)
        if m:
            current = m.group(1)
            continue
        if current == table and re.match(rf"^#\s*{re.escape(leaf)}\s*=", line):
            _, sep, trailing = line.partition("  # ")
            lines[i] = f"{leaf} = {value_text}" + (f"  # {trailing}" if sep else "")
            return "\n".join(lines)
    return None


def update_profile(path: str | os.PathLike[str], changes: dict[str, Any]) -> None:
    """Change keys of the profile file at `path` in place, keeping its comments (atomic)."""
    save_profile_text(path, update_text(read_profile_file(path), changes))


def delete_profile(path: str | os.PathLike[str]) -> None:
    """Remove a user profile. Shipped examples are refused (they are part of the install)."""
    p = Path(path)
    if p.parent.resolve() == example_dir().resolve():
        raise PermissionError(f"{p} is a shipped example; duplicate it to make your own")
    p.unlink()  # a symlinked profile: remove the link, not the file it points to


def duplicate_profile(src: str | os.PathLike[str], new_name: str) -> Path:
    """Copy profile `src` (path or name) into the user directory as `new_name`.toml."""
    src_path = find_profile(src)
    if src_path is None:
        raise FileNotFoundError(f"no profile {os.fspath(src)!r}")
    if not new_name or "/" in new_name or new_name.startswith("."):
        raise ValueError(f"profile name {new_name!r}: use letters, digits, '-' and '_'")
    dest = user_profile_dir() / f"{new_name}{SUFFIX}"
    if dest.exists():
        raise FileExistsError(f"{dest} already exists")
    text = read_profile_file(src_path)
    # a relative model path was relative to the source's directory: keep it pointing there
    import tomlkit

    doc = tomlkit.parse(text)
    model = doc.get("model")
    if (
        isinstance(model, str)
        and not model.startswith("demo:")
        and not os.path.isabs(os.path.expanduser(model))
    ):
        doc["model"] = os.path.normpath(os.path.join(src_path.parent.resolve(), model))
        text = tomlkit.dumps(doc)
    save_profile_text(dest, text)
    return dest
