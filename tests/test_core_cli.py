"""The CLI front door: subcommand discovery and the `bench mem` routing."""

from __future__ import annotations

import pytest

from rigtui.cli import route_bench_mem


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["bench", "mem", "--json"], ["bench-mem", "--json"]),
        (["--root", "/x", "bench", "mem"], ["--root", "/x", "bench-mem"]),
        (["bench", "demo", "-t", "1,2"], ["bench", "demo", "-t", "1,2"]),
        (["bench", "--model", "mem"], ["bench", "--model", "mem"]),  # a model file named mem
        (["probe", "bench", "mem"], ["probe", "bench", "mem"]),
        ([], []),
    ],
)
def test_route_bench_mem(argv, expected):
    assert route_bench_mem(argv) == expected


def test_version(capsys):
    from rigtui.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("rigtui ")


@pytest.mark.parametrize(
    "argv",
    [["--root", "/tmp/tree", "probe"], ["probe", "--root", "/tmp/tree"]],
)
def test_root_is_seen_before_or_after_the_subcommand(argv):
    from rigtui.cli import build_parser, make_fs

    args = build_parser().parse_args(argv)
    assert args.root == "/tmp/tree"
    assert make_fs(args).root == "/tmp/tree"


def test_root_defaults_to_env(monkeypatch):
    from rigtui.cli import build_parser, make_fs

    monkeypatch.setenv("RIGTUI_FSROOT", "/tmp/other")
    args = build_parser().parse_args(["probe"])
    assert args.root is None
    assert make_fs(args).root == "/tmp/other"
