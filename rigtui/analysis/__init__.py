"""rigtui.analysis: see DESIGN.md."""
