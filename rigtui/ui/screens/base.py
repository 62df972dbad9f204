"""Base screen: renders the app's latest snapshots when shown, nothing while hidden."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen

if TYPE_CHECKING:
    from rigtui.ui.app import RigApp


class RigScreen(Screen):
    """`refresh_data()` is called by the app for the active screen only, and on resume;
    `stream_update()` as an engine streams."""

    PALETTE_GROUP = ""  # "Profiles", "Run", ...: prefixes this screen's palette entries
    FOLLOWS_STREAM = False  # True: shows what streams as it streams (the Run screen)

    @property
    def rig(self) -> RigApp:
        return cast("RigApp", self.app)

    def on_screen_resume(self) -> None:
        self.rig.follow_stream(self.FOLLOWS_STREAM)
        self.refresh_data()

    def refresh_data(self) -> None:  # overridden
        pass

    def action_launch(self) -> None:
        """`l` where a screen binds it: the --launch profile, or the demo."""
        self.rig.launch_profile(self.rig.services.launch or "demo")

    def stream_update(self) -> bool:
        """What an engine streamed since the last snapshot; True when this screen shows it
        now (the Run screen). Others leave it to the next sample (RigApp.on_engines_changed)."""
        return False

    def palette_commands(self) -> Iterable[SystemCommand]:
        """Every key binding of this screen, as a command palette entry."""
        group = self.PALETTE_GROUP or type(self).__name__.removesuffix("Screen")
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            yield SystemCommand(
                f"{group}: {binding.tooltip or binding.description}",
                f"key {binding.key_display or binding.key.split(',')[0]}",
                partial(self.run_action, binding.action),
            )
