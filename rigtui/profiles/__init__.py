"""rigtui.profiles: see DESIGN.md."""
