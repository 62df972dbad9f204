"""Shared test fixtures: captured machine trees from tests/fixtures (copied from the team's
../shared/fixtures, see its README), extracted once per run."""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = Path(
    os.environ.get("RIGTUI_SHARED_FIXTURES", Path(__file__).resolve().parent / "fixtures")
)
HWLOC_DIR = SHARED_FIXTURES / "hwloc"
UTIL_LINUX_DIR = SHARED_FIXTURES / "util-linux"
LOCAL_TREES = Path(__file__).resolve().parent / "trees"  # small hand-made trees (plain dirs)

# No test reads or writes the real user's config (profiles, the endpoint's API key file): a
# fresh one per run, inherited by every rigtui the tests start. Tests that need an empty one of
# their own (the `xdg` fixture) override it.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="rigtui-test-config-")
# Commands run in this process (sample, exporter, the app's services) would move and nice the
# test runner's own threads beside the engines they watch; the tests of that placement run it
# in a child process of their own.
os.environ["RIGTUI_APP_PLACEMENT"] = "off"


def hwloc_names() -> list[str]:
    return sorted(p.name[: -len(".tar.bz2")] for p in HWLOC_DIR.glob("*.tar.bz2"))


def util_linux_names() -> list[str]:
    return sorted(p.name[: -len(".tar.gz")] for p in UTIL_LINUX_DIR.glob("*.tar.gz"))


def _safe_extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="tar")  # keeps symlinks inside the tree, refuses escapes


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory):
    """`fixture_root("16em64t-4s2c2t")` -> Path of the extracted tree (the `--root` to pass).

    Looks in hwloc/ then util-linux/; extracts each archive once per test session.
    """
    cache: dict[str, Path] = {}
    base = tmp_path_factory.mktemp("fixtures")

    def get(name: str) -> Path:
        if name in cache:
            return cache[name]
        for archive in (HWLOC_DIR / f"{name}.tar.bz2", UTIL_LINUX_DIR / f"{name}.tar.gz"):
            if archive.exists():
                dest = base / name
                dest.mkdir()
                _safe_extract(archive, dest)
                roots = [p for p in dest.iterdir() if p.is_dir()]
                root = roots[0] if len(roots) == 1 else dest
                cache[name] = root
                return root
        raise FileNotFoundError(f"no fixture named {name} under {SHARED_FIXTURES}")

    return get


@pytest.fixture(autouse=True)
def _reap_servers():
    """A serving test that fails before stopping its `rigtui serve` child must not leave it
    running into the next tests (the fault suite counts orphans)."""
    yield
    import sys

    helpers = sys.modules.get("serve_helpers")  # only where a test module imported it
    if helpers is not None:
        helpers.Served.reap()


def pytest_sessionstart(session):
    """Started in the background by a script (`nohup ./.ci/run &`), this process inherits SIGINT
    and SIGHUP ignored, and so would every child it runs, where the tests that stop `rigtui
    serve`/`run` with Ctrl-C or a hangup need them delivered as in a terminal. A handler that
    does nothing keeps them ignored here and lets each child start with the default (exec
    resets handlers, not SIG_IGN)."""
    import signal

    for sig in (signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, _still_ignored)


def _still_ignored(signum, frame) -> None:
    """What SIG_IGN did for pytest itself (see pytest_sessionstart)."""
