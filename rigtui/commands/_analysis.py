"""Wiring shared by `rigtui check`, `rigtui plan` and `rigtui bench mem`: the probed topology,
the profile's model and engine facts, passed to rigtui.analysis as plain values."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any


@dataclass
class ModelChoice:
    path: str | None
    source: str | None  # "--model", "profile NAME"
    profile: Any = None  # rigtui.model.profile.Profile
    error: str | None = None


def missing_root(fs) -> str | None:
    """Why `--root DIR` (or RIGTUI_FSROOT) cannot be a machine, or None when it can: a root
    that does not exist would otherwise give an empty machine whose checks read as passes."""
    if fs.isdir(""):
        return None
    return (
        f"root {fs.root} does not exist or is not a directory: give --root the folder a "
        "capture unpacks to (tar xzf rig.tar.gz gives rigtui-capture/), or unset RIGTUI_FSROOT"
    )


def detect_topology(fs):  # -> Topology
    from rigtui.probes import detect

    return detect(fs)


def resolve_model(args: argparse.Namespace, topology=None) -> ModelChoice:
    """The model file from `--model`/MODEL, else from `--profile`'s `model` (demo models resolve
    to their generated file). Errors say what and what to do; they never raise."""
    profile = None
    name = getattr(args, "profile", None)
    if name:
        from rigtui.profiles import ProfileError, load_profile

        try:
            profile = load_profile(name, topology=None)
        except ProfileError as exc:
            issues = "; ".join(str(i) for i in getattr(exc, "issues", [])) or str(exc)
            return ModelChoice(None, None, None, f"profile {name}: {issues}")
        except (OSError, ValueError) as exc:
            return ModelChoice(None, None, None, f"profile {name}: {exc}")
    path = getattr(args, "model", None)
    if path:
        return ModelChoice(os.path.abspath(path), "--model", profile)
    if profile is None:
        return ModelChoice(None, None, None)
    model = profile.model
    if profile.is_demo:
        # the engine generates demo models on first use; so do we (seconds, into the cache dir)
        from rigtui.engine.demo_model import ensure_profile_demo

        try:
            model = str(ensure_profile_demo(profile))
        except (OSError, ValueError) as exc:
            return ModelChoice(
                None,
                f"profile {profile.name}",
                profile,
                f"cannot generate demo model {profile.model}: {exc}",
            )
    return ModelChoice(model, f"profile {profile.name}", profile)


def engine_facts(live: bool) -> tuple[str | None, bool | None, str | None]:
    """(llama.cpp system info, GPU offload support, reason when unknown) of the installed engine."""
    if not live:
        return None, None, "captured tree (--root): not this machine's engine"
    try:
        from rigtui.engine import system_info
    except ImportError as exc:
        return None, None, f"engine facts unavailable: {exc}"
    try:
        info = system_info()
    except Exception as exc:  # the engine may be missing or broken: a check, not a crash
        return None, None, f"engine not usable: {type(exc).__name__}: {exc}"
    text = getattr(info, "system_info", None)
    offload = getattr(info, "gpu_offload", None)
    why = getattr(info, "error", None) or getattr(info, "reason", None)
    return text, offload, (str(why) if why else None)


def err(msg: str) -> None:
    print(f"rigtui: {msg}", file=sys.stderr)
