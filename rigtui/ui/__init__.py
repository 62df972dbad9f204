"""rigtui.ui: see DESIGN.md."""
