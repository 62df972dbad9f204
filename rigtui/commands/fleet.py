"""`rigtui fleet [--rig NAME=URL ...] [--prometheus URL] [--json]`: several rigs, one row each.

Each rig's `rigtui exporter`, or a Prometheus server that scrapes them; without either, the rigs
of `~/.config/rigtui/fleet.toml` (telemetry/fleet.py). Exit codes: 0 every rig answered,
1 some did not (or the Prometheus server could not be asked), 2 nothing to read.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rigtui.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fleet", help="several rigs at once: their exporters or a Prometheus, one row per rig",
        description="One row per rig: sockets, tok/s (vs the roofline where the exporter knows "
        "bytes per token), DRAM traffic vs the channel ceiling, the hottest sensor, failing "
        "checks. Reads each rig's `rigtui exporter` (--rig NAME=http://HOST:9101), or a "
        "Prometheus server's query API (--prometheus URL), else ~/.config/rigtui/fleet.toml.",
    )  # fmt: skip
    p.add_argument("--rig", action="append", default=[], metavar="NAME=URL",
                   help="a rig's exporter (repeatable)")
    p.add_argument("--prometheus", metavar="URL", help="a Prometheus server that scrapes the rigs")
    p.add_argument("--json", action="store_true", help="the rows as JSON")
    p.set_defaults(func=run)


def read_fleet(rig_args: list[str], prometheus: str | None) -> tuple[list[Any], str | None]:
    """(rows, why there are none) for the command line or, without one, fleet.toml."""
    from rigtui.telemetry.fleet import (
        load_fleet_file,
        parse_rig_args,
        read_exporters,
        read_prometheus,
    )

    rigs = parse_rig_args(rig_args)  # ValueError: the caller's usage error
    if not rigs and not prometheus:
        rigs, prometheus = load_fleet_file()
        if not rigs and not prometheus:
            return [], ("no rigs: give --rig NAME=http://HOST:9101 (repeatable) or --prometheus "
                        "URL, or list them in ~/.config/rigtui/fleet.toml")  # fmt: skip
    rows = read_exporters(rigs)
    if prometheus:
        rows += read_prometheus(prometheus)
    return rows, None


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from rigtui.commands._common import print_json

    try:
        import prometheus_client  # noqa: F401  (its parser reads the exporters' pages)
    except ImportError:
        print("rigtui fleet needs prometheus-client: pip install 'rigtui[prometheus]'", file=sys.stderr)
        return EXIT_FAILURE
    try:
        rows, why = read_fleet(args.rig, args.prometheus)
    except ValueError as exc:
        print(f"rigtui fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the Prometheus server
        print(f"rigtui fleet: {args.prometheus}: {getattr(exc, 'reason', None) or exc}", file=sys.stderr)
        return EXIT_FAILURE
    if why:
        print(f"rigtui fleet: {why}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print_json([dataclasses.asdict(r) for r in rows])
    else:
        from rigtui.telemetry.fleet import COLUMNS, row_cells

        head = list(COLUMNS)
        table = [head] + [list(row_cells(r)) for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        for row in table:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK if all(r.up for r in rows) else EXIT_FAILURE
