"""Base screen: renders the app's latest snapshots when shown, nothing while hidden."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from rigtui.ui.app import RigApp


class RigScreen(Screen):
    """`refresh_data()` is called by the app for the active screen only, and on resume."""

    @property
    def rig(self) -> RigApp:
        return cast("RigApp", self.app)

    def on_screen_resume(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:  # overridden
        pass
