"""rigtui.probes: see DESIGN.md."""
