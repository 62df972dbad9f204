"""`rigtui fleet`: several rigs' exporters on loopback (replaying recordings, so the numbers are
known), one of them dead, read directly and through a real Prometheus."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serve_helpers import REPO, free_port
from test_exporter import N_SAMPLES, _get, recording, rig  # noqa: F401

pytest.importorskip("prometheus_client")
pytest_plugins = ["engine_fixtures"]  # fixtures: xdg
DEMO_REC = Path(__file__).parent / "data" / "replay-vm-demo.ndjson"


def _exporter(path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rigtui", "exporter", "--replay", str(path),
                             "--interval", "0.02", "--listen", f"127.0.0.1:{port}", *extra],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if "rigtui_exporter_samples_total" in _get(url + "/metrics"):
                time.sleep(1.0)  # the whole (short) recording replayed
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"exporter on {url} never answered")


@pytest.fixture()
def two_rigs(recording):  # noqa: F811
    a, url_a = _exporter(recording, "--bytes-per-token", "8e9")
    b, url_b = _exporter(DEMO_REC)
    yield url_a, url_b
    for p in (a, b):
        p.terminate()
        p.wait(timeout=20)


def _fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rigtui", "fleet", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)  # fmt: skip


def test_fleet_reads_each_rigs_exporter_and_names_the_dead_one(two_rigs):
    url_a, url_b = two_rigs
    dead = f"http://127.0.0.1:{free_port()}"
    r = _fleet("--rig", f"epyc={url_a}", "--rig", f"vm={url_b}", "--rig", f"gone={dead}", "--json")
    assert r.returncode == 1, r.stderr  # one rig is down
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    epyc, vm, gone = rows["epyc"], rows["vm"], rows["gone"]
    assert epyc["up"] and epyc["sockets"] == 2
    assert epyc["tok_s"] == pytest.approx(6.5 + (N_SAMPLES - 1) * 0.1)
    assert epyc["roofline_tok_s"] == pytest.approx(2 * 51.2e9 / 8e9)  # ceiling / bytes per token
    assert epyc["ceiling_bps"] == pytest.approx(2 * 51.2e9)
    last = N_SAMPLES - 1  # the recording's last sample: reads 10+i and 20+i GB/s, writes 2 and 4
    assert epyc["traffic_bps"] == pytest.approx((10 + last + 20 + last + 2 + 4) * 1e9)
    assert epyc["hottest_c"] == 61.0 and "Tctl" in epyc["hottest"]
    assert vm["up"] and vm["sockets"] == 1 and vm["tok_s"] == pytest.approx(16.847885760348124)
    assert not gone["up"] and gone["error"]
    r = _fleet("--rig", f"epyc={url_a}", "--rig", f"vm={url_b}")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["rig", "state", "sockets"]
    assert any(ln.startswith("epyc") and "7.6 / 12.8 (59%)" in ln for ln in lines), r.stdout


def test_fleet_without_rigs_says_how_to_name_them(xdg):
    r = _fleet()
    assert r.returncode == 2 and "--rig NAME=http://HOST:9101" in r.stderr
    r = _fleet("--rig", "nourl")
    assert r.returncode == 2 and "write NAME=http://HOST:9101" in r.stderr


def test_fleet_file_lists_the_rigs(xdg, two_rigs):
    url_a, url_b = two_rigs
    (xdg / "config" / "rigtui").mkdir(parents=True)
    (xdg / "config" / "rigtui" / "fleet.toml").write_text(f'[rigs]\nepyc = "{url_a}"\nvm = "{url_b}/metrics"\n')
    r = _fleet("--json")
    assert r.returncode == 0, r.stderr
    assert sorted(row["name"] for row in json.loads(r.stdout)) == ["epyc", "vm"]


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="no prometheus (Debian: prometheus)")
def test_fleet_through_a_real_prometheus(two_rigs, tmp_path):
    url_a, url_b = two_rigs
    prom_port = free_port()
    targets = ", ".join(f"'{u.split('//', 1)[1]}'" for u in (url_a, url_b))
    (tmp_path / "p.yml").write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rigs\n"
                                    f"    static_configs:\n      - targets: [{targets}]\n")  # fmt: skip
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'p.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{prom_port}"
        rows: list = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            r = _fleet("--prometheus", base, "--json")
            rows = json.loads(r.stdout) if r.returncode in (0, 1) and r.stdout.strip() else []
            if len(rows) == 2 and all(row["sockets"] for row in rows):
                break
            time.sleep(1)
        by_inst = {row["name"]: row for row in rows}
        assert set(by_inst) == {u.split("//", 1)[1] for u in (url_a, url_b)}, rows
        a = by_inst[url_a.split("//", 1)[1]]
        assert a["up"] and a["sockets"] == 2 and a["ceiling_bps"] == pytest.approx(2 * 51.2e9)
        assert a["roofline_tok_s"] == pytest.approx(12.8)
    finally:
        prom.terminate()
        prom.wait(timeout=30)
