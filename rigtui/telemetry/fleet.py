"""Several rigs at once, for `rigtui fleet` and the TUI's Fleet screen: one row per rig.

Read from each rig's `rigtui exporter` (`--rig name=http://host:9101`), or from a Prometheus
that scrapes them (`--prometheus URL`: the same figures through its query API, one row per
`instance`). Not a home-made aggregator: a rig answers for itself, or Prometheus does.
The rigs to show can also be listed in `$XDG_CONFIG_HOME/rigtui/fleet.toml`:

    prometheus = "http://prometheus:9090"   # or, instead,
    [rigs]
    epyc-1 = "http://epyc-1:9101"
"""

from __future__ import annotations

import json
import os
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 5.0
FAILING = ("fail", "warn")  # check statuses a fleet row lists ("unknown": could not tell)
MAX_BODY = 8 << 20  # an exporter's page is ~10-50 KB


@dataclass(frozen=True)
class RigRow:
    name: str
    source: str  # the exporter's URL, or "prometheus URL"
    up: bool
    error: str | None = None
    sockets: int | None = None
    tok_s: float | None = None  # generation, summed over the rig's engines
    roofline_tok_s: float | None = None  # what its memory bandwidth allows (when known)
    traffic_bps: float | None = None  # DRAM read + write, all sockets
    ceiling_bps: float | None = None  # channels x 8 B x MT/s, all sockets
    hottest_c: float | None = None
    hottest: str | None = None  # which sensor
    failing_checks: tuple[str, ...] = ()


def fleet_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "rigtui" / "fleet.toml"


def load_fleet_file(path: Path | None = None) -> tuple[dict[str, str], str | None]:
    """(rigs name -> exporter URL, Prometheus URL or None) from fleet.toml; ({}, None) when
    there is none. Raises ValueError on a file that is not what the module doc shows."""
    path = path or fleet_file()
    if not path.is_file():
        return {}, None
    if path.stat().st_size > 1 << 20:
        raise ValueError(f"{path}: larger than 1 MiB, not a fleet file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    rigs = data.get("rigs", {})
    prom = data.get("prometheus")
    if not isinstance(rigs, dict) or not all(isinstance(v, str) for v in rigs.values()):
        raise ValueError(f'{path}: [rigs] maps names to exporter URLs, e.g. epyc-1 = "http://epyc-1:9101"')
    if prom is not None and not isinstance(prom, str):
        raise ValueError(f'{path}: prometheus = "http://HOST:9090"')
    return {str(k): _metrics_url(v) for k, v in rigs.items()}, prom


def parse_rig_args(values: Iterable[str]) -> dict[str, str]:
    """`--rig name=URL` (repeatable) -> {name: URL of its /metrics}. ValueError when malformed."""
    out: dict[str, str] = {}
    for v in values:
        name, sep, url = v.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise ValueError(f"--rig {v}: write NAME=http://HOST:9101")
        out[name] = _metrics_url(url)
    return out


def _metrics_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/metrics") else url + "/metrics"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
        body = r.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ValueError(f"{url}: more than {MAX_BODY >> 20} MiB")
    return body.decode("utf-8", "replace")


def row_from_metrics(name: str, url: str, text: str) -> RigRow:
    """One rig's row from its exporter's text."""
    from prometheus_client.parser import text_string_to_metric_families

    series: dict[str, list[tuple[dict[str, str], float]]] = {}
    try:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                series.setdefault(s.name, []).append((s.labels, s.value))
    except ValueError as exc:
        return RigRow(name, url, False, f"not an exporter's page: {exc}"[:200])
    if "rigtui_build_info" not in series:
        return RigRow(name, url, False, "answers, but is not a rigtui exporter")

    def total(metric: str, **match: str) -> float | None:
        vals = [v for lab, v in series.get(metric, []) if all(lab.get(k) == m for k, m in match.items())]
        return sum(vals) if vals else None

    temps = [(v, f"{lab.get('chip')} {lab.get('sensor')}") for lab, v in series.get("rigtui_temperature_celsius", [])]
    hot = max(temps, default=None)
    failing = tuple(sorted(lab["check"] for lab, v in series.get("rigtui_check_ok", [])
                           if lab.get("status") in FAILING))  # fmt: skip
    sockets = total("rigtui_sockets")
    return RigRow(
        name, url, True, None,
        sockets=int(sockets) if sockets is not None else None,
        tok_s=total("rigtui_engine_generation_tokens_per_second"),
        roofline_tok_s=total("rigtui_engine_roofline_tokens_per_second"),
        traffic_bps=total("rigtui_memory_traffic_bytes_per_second"),
        ceiling_bps=total("rigtui_memory_bandwidth_theoretical_bytes_per_second"),
        hottest_c=hot[0] if hot else None, hottest=hot[1] if hot else None,
        failing_checks=failing,
    )  # fmt: skip


def read_exporters(rigs: dict[str, str]) -> list[RigRow]:
    """Every rig's exporter, asked at once (a dead rig costs its timeout, not everyone's)."""

    def one(item: tuple[str, str]) -> RigRow:
        name, url = item
        try:
            return row_from_metrics(name, url, _get(url))
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            return RigRow(name, url, False, str(reason)[:200])

    if not rigs:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(rigs))) as pool:
        return list(pool.map(one, rigs.items()))


_PROM_QUERIES = {
    "sockets": "max by (instance) (rigtui_sockets)",
    "tok_s": "sum by (instance) (rigtui_engine_generation_tokens_per_second)",
    "roofline_tok_s": "sum by (instance) (rigtui_engine_roofline_tokens_per_second)",
    "traffic_bps": "sum by (instance) (rigtui_memory_traffic_bytes_per_second)",
    "ceiling_bps": "sum by (instance) (rigtui_memory_bandwidth_theoretical_bytes_per_second)",
    "up": 'max by (instance) (up and on (instance) rigtui_build_info)',
}


def read_prometheus(base: str) -> list[RigRow]:
    """One row per `instance` that has rigtui metrics, from a Prometheus server's query API.
    Raises OSError/ValueError when the server cannot be asked."""
    base = base.rstrip("/")
    source = f"prometheus {base}"

    def query(q: str) -> list[dict]:
        body = json.loads(_get(f"{base}/api/v1/query?query={urllib.parse.quote(q)}"))
        if body.get("status") != "success":
            raise ValueError(f"{base}: {body.get('error') or body}")
        return body["data"]["result"]

    values: dict[str, dict[str, float]] = {}
    for field, q in _PROM_QUERIES.items():
        for r in query(q):
            inst = r["metric"].get("instance", "?")
            values.setdefault(inst, {})[field] = float(r["value"][1])
    hot: dict[str, tuple[float, str]] = {}
    for r in query("rigtui_temperature_celsius"):
        m = r["metric"]
        v = float(r["value"][1])
        inst = m.get("instance", "?")
        if inst not in hot or v > hot[inst][0]:
            hot[inst] = (v, f"{m.get('chip')} {m.get('sensor')}")
    failing: dict[str, list[str]] = {}
    for r in query('rigtui_check_ok{status=~"' + "|".join(FAILING) + '"}'):
        failing.setdefault(r["metric"].get("instance", "?"), []).append(r["metric"].get("check", "?"))
    rows = []
    for inst in sorted(values):
        v = values[inst]
        rows.append(RigRow(
            inst, source, v.get("up", 0.0) == 1.0, None if v.get("up", 0.0) == 1.0 else "down",
            sockets=int(v["sockets"]) if "sockets" in v else None, tok_s=v.get("tok_s"),
            roofline_tok_s=v.get("roofline_tok_s"), traffic_bps=v.get("traffic_bps"),
            ceiling_bps=v.get("ceiling_bps"), hottest_c=hot.get(inst, (None, None))[0],
            hottest=hot.get(inst, (None, None))[1], failing_checks=tuple(sorted(failing.get(inst, []))),
        ))  # fmt: skip
    return rows


COLUMNS = ("rig", "state", "sockets", "tok/s (vs roofline)", "DRAM traffic / ceiling", "hottest",
           "failing checks")  # fmt: skip


def _gb(b: float | None) -> str:
    return "–" if b is None else f"{b / 1e9:.1f}"


def row_cells(r: RigRow) -> tuple[str, ...]:
    """One rig's row as plain-text cells, in COLUMNS order (for `rigtui fleet` and the TUI)."""
    if not r.up:
        return (r.name, "DOWN", "", "", "", "", r.error or "")
    tok = "–" if r.tok_s is None else f"{r.tok_s:.1f}"
    if r.tok_s is not None and r.roofline_tok_s:
        tok += f" / {r.roofline_tok_s:.1f} ({r.tok_s / r.roofline_tok_s:.0%})"
    mem = f"{_gb(r.traffic_bps)} / {_gb(r.ceiling_bps)} GB/s"
    if r.traffic_bps is not None and r.ceiling_bps:
        mem += f" ({r.traffic_bps / r.ceiling_bps:.0%})"
    hot = "–" if r.hottest_c is None else f"{r.hottest_c:.0f}°C {r.hottest}"
    return (r.name, "up", str(r.sockets or "?"), tok, mem, hot, ", ".join(r.failing_checks) or "none")
