"""rigtui.telemetry: see DESIGN.md."""
