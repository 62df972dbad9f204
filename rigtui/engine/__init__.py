"""rigtui.engine: see DESIGN.md."""
