"""Subcommands of `rigtui`: one module each, discovered by `rigtui.cli` (see its docstring)."""
