"""Load a profile by name or path: read, validate, resolve `extends`, check against a Topology."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rigtui.model.profile import Profile, ProfileIssue, Sampling
from rigtui.model.topology import Topology
from rigtui.profiles.checks import check_engine_keys, check_machine, check_model, check_serving
from rigtui.profiles.store import find_profile, read_profile_file
from rigtui.profiles.validate import Located, read_profile_text

_MAX_EXTENDS = 16


class ProfileError(Exception):
    """A profile that cannot be used; `.issues` lists every problem (file, line, key, hint)."""

    def __init__(self, issues: list[ProfileIssue]) -> None:
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"] or issues
        super().__init__("\n".join(str(i) for i in errors))


def _read_chain(path: Path, issues: list[ProfileIssue], seen: list[Path]) -> dict[str, Located]:
    """Values of `path` merged over its `extends` parents (child wins, per dotted key)."""
    real = path.resolve()
    if real in seen:
        chain = " -> ".join(p.name for p in [*seen, real])
        issues.append(
            ProfileIssue(
                str(path), None, "extends", f"extends loops: {chain}", "remove one `extends`"
            )
        )
        return {}
    if len(seen) >= _MAX_EXTENDS:
        issues.append(
            ProfileIssue(str(path), None, "extends", "extends chain deeper than 16", None)
        )
        return {}
    try:
        text = read_profile_file(path)
    except UnicodeDecodeError as exc:
        issues.append(ProfileIssue(str(path), None, None,
                                   f"not UTF-8 text (byte {exc.start}): TOML files are UTF-8",
                                   "save it as UTF-8"))  # fmt: skip
        return {}
    except OSError as exc:
        issues.append(
            ProfileIssue(
                str(path), None, None, f"cannot read: {exc.strerror or exc}",
                "check the path and permissions"
            )
        )
        return {}
    values, file_issues = read_profile_text(text, str(path))
    issues.extend(file_issues)
    parent_loc = values.get("extends")
    if parent_loc is None:
        return values
    parent = find_profile(parent_loc.value, near=str(path.parent))
    if parent is None:
        issues.append(ProfileIssue(str(path), parent_loc.line, "extends",
                                   f"no profile named {parent_loc.value!r} to extend",
                                   "`rigtui profiles list` shows the names"))  # fmt: skip
        return values
    merged = _read_chain(parent, issues, [*seen, real])
    merged.update(values)
    merged["extends"] = parent_loc
    return merged


def _build(
    name: str, path: Path, values: dict[str, Located], issues: list[ProfileIssue]
) -> Profile | None:
    if "model" not in values:
        if not any(i.key == "model" for i in issues):
            issues.append(ProfileIssue(str(path), None, "model", "no model given",
                                       'add model = "/path/to/model.gguf" (or "demo:300M")'))  # fmt: skip
        return None
    kwargs: dict[str, Any] = {}
    sampling: dict[str, Any] = {}
    env: dict[str, str] = {}
    for key, loc in values.items():
        if key.startswith("sampling."):
            sampling[key.split(".", 1)[1]] = loc.value
        elif key.startswith("env."):
            env[key.split(".", 1)[1]] = loc.value
        elif key in ("nodes", "memory_nodes"):
            kwargs[key] = tuple(loc.value)
        elif key == "tensor_split":
            kwargs[key] = tuple(float(v) for v in loc.value)
        elif key in ("override_tensors", "rpc", "extra_args"):
            kwargs[key] = tuple(loc.value)
        else:
            kwargs[key] = loc.value
    for k in ("temperature", "top_p", "min_p", "repeat_penalty"):
        if k in sampling:
            sampling[k] = float(sampling[k])
    return Profile(
        name=name,
        path=str(path),
        sampling=Sampling(**sampling),
        env=MappingProxyType(env),
        **kwargs,
    )


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    path = find_profile(name_or_path)
    if path is None:
        text = os.fspath(name_or_path)
        raise ProfileError([ProfileIssue(text, None, None, f"no profile named {text!r}",
                                         "`rigtui profiles list` shows the profiles; "
                                         "`rigtui profiles new NAME` makes one")])  # fmt: skip
    return path


def _load(
    name_or_path: str | os.PathLike[str], topology: Topology | None
) -> tuple[Profile | None, list[ProfileIssue]]:
    path = _resolve(name_or_path)
    issues: list[ProfileIssue] = []
    values = _read_chain(path, issues, [])
    name = path.name[:-5] if path.name.endswith(".toml") else path.name
    profile = (
        _build(name, path, values, issues)
        if not any(i.severity == "error" for i in issues)
        else None
    )
    if profile is None:
        return None, issues

    def where(key: str) -> tuple[str, int | None]:
        loc = values.get(key)
        return (loc.file, loc.line) if loc else (str(path), None)

    issues.extend(check_serving(profile, where))
    issues.extend(check_engine_keys(profile, where))
    if topology is not None:
        issues.extend(check_machine(profile, topology, where))
    else:
        issues.extend(check_model(profile, None, where))
    return profile, issues


def check_profile(
    name_or_path: str | os.PathLike[str], topology: Topology | None
) -> list[ProfileIssue]:
    """Every problem (errors and warnings) of the profile; [] when it is fine."""
    try:
        return _load(name_or_path, topology)[1]
    except ProfileError as exc:
        return exc.issues


def load_profile(
    name_or_path: str | os.PathLike[str], *, topology: Topology | None = None
) -> Profile:
    """The validated profile; raises ProfileError when any error-level issue is found.

    With a topology, CPUs/nodes/GPUs are checked against that machine too."""
    profile, issues = _load(name_or_path, topology)
    if profile is None or any(i.severity == "error" for i in issues):
        raise ProfileError(issues)
    return profile


def load_profile_with_warnings(name_or_path: str | os.PathLike[str], *, topology: Topology | None = None
                               ) -> tuple[Profile, list[ProfileIssue]]:  # fmt: skip
    """Like load_profile, also returning the warnings (for the CLI to print)."""
    profile, issues = _load(name_or_path, topology)
    if profile is None or any(i.severity == "error" for i in issues):
        raise ProfileError(issues)
    return profile, issues
