"""Launch profiles: TOML <-> Profile; strict validation; atomic, comment-keeping saves.

Public API (used by the UI, the engine and the CLI):
`list_profiles`, `load_profile`, `check_profile`, `ProfileError`, `save_profile_text`,
`update_profile`, `new_profile_text`, `user_profile_dir`, `delete_profile`, `duplicate_profile`,
`plan_launch`, `find_profile`.
"""

from __future__ import annotations

from rigtui.model.profile import LaunchPlan, Profile, ProfileIssue, ProfileRef
from rigtui.profiles.checks import plan_launch
from rigtui.profiles.loader import (
    ProfileError,
    check_profile,
    load_profile,
    load_profile_with_warnings,
)
from rigtui.profiles.store import (
    delete_profile,
    duplicate_profile,
    example_dir,
    find_profile,
    list_profiles,
    save_profile_text,
    update_profile,
    update_text,
    user_profile_dir,
)
from rigtui.profiles.template import new_profile_text, render_profile

__all__ = [
    "LaunchPlan", "Profile", "ProfileError", "ProfileIssue", "ProfileRef", "check_profile",
    "delete_profile", "duplicate_profile", "example_dir", "find_profile", "list_profiles",
    "load_profile", "load_profile_with_warnings", "new_profile_text", "plan_launch",
    "render_profile", "save_profile_text", "update_profile", "update_text", "user_profile_dir",
]  # fmt: skip
