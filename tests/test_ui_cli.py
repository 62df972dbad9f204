"""`rigtui` (no command) argument handling and `rigtui web` without textual-serve."""

from __future__ import annotations

import argparse
import sys

from rigtui.cli import EXIT_FAILURE, EXIT_USAGE, build_parser
from rigtui.commands import tui, web


def test_launch_and_replay_do_not_mix(capsys):
    args = build_parser().parse_args(["--launch", "demo", "--replay", "x.ndjson"])
    assert tui.run_app(args) == EXIT_USAGE
    assert "do not mix" in capsys.readouterr().err


def test_missing_recording_is_a_usage_error(tmp_path, capsys):
    args = build_parser().parse_args(["--replay", str(tmp_path / "none.ndjson")])
    assert tui.run_app(args) == EXIT_USAGE
    assert "no recording at" in capsys.readouterr().err


def test_launch_on_a_captured_tree_is_refused(fixture_root, capsys):
    root = fixture_root("8em64t-2s4c-asymcaches")
    args = build_parser().parse_args(["--root", str(root), "--launch", "demo"])
    assert tui.run_app(args) == EXIT_USAGE
    assert "--launch needs the live machine" in capsys.readouterr().err


def test_replay_services_come_from_the_recording():
    from pathlib import Path

    rec = Path(__file__).parent / "data" / "replay-vm-demo.ndjson"
    services = tui.build_services(build_parser().parse_args(["--replay", str(rec)]))
    assert services.mode == "replay" and services.engine_factory is None
    first = services.source.sample()
    assert first.engines and first.engines[0].profile


def test_web_without_textual_serve(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "textual_serve", None)
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    args = argparse.Namespace(host="127.0.0.1", port=8000, interval=1.0, root=None)
    assert web.run(args) == EXIT_FAILURE
    assert "pip install" in capsys.readouterr().err


def test_web_command_line_keeps_root_and_interval():
    args = argparse.Namespace(interval=2.0, root="/tmp/tree dir")
    cmd = web.build_command(args)
    assert "-m rigtui --interval 2.0 --root '/tmp/tree dir'" in cmd
