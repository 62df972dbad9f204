"""HostFS: re-rooted reads that never raise for the failures a captured or live tree has."""

from __future__ import annotations

import os

import pytest

from rigtui.hostfs import ENV_ROOT, HostFS, default_root


def test_reads_relative_to_root(tmp_path):
    (tmp_path / "sys/devices/system/cpu").mkdir(parents=True)
    (tmp_path / "sys/devices/system/cpu/online").write_text("0-3,8\n")
    fs = HostFS(str(tmp_path))
    assert fs.read_str("sys/devices/system/cpu/online") == "0-3,8"
    assert fs.read_str("/sys/devices/system/cpu/online") == "0-3,8"  # leading slash tolerated
    assert not fs.is_live
    assert fs.problems == []


def test_missing_file_is_none_and_only_noted_when_required(tmp_path):
    fs = HostFS(str(tmp_path))
    assert fs.read_text("proc/cpuinfo") is None
    assert fs.problems == []
    assert fs.read_text("proc/meminfo", required=True) is None
    assert [(p.path, p.reason) for p in fs.problems] == [("/proc/meminfo", "missing")]


def test_garbage_integer_is_noted(tmp_path):
    (tmp_path / "x").write_bytes(b"\xff\xfegarbage\n")
    fs = HostFS(str(tmp_path))
    assert fs.read_int("x") is None
    assert "not an integer" in fs.problems[0].reason


def test_directory_where_a_file_should_be(tmp_path):
    (tmp_path / "proc/stat").mkdir(parents=True)
    fs = HostFS(str(tmp_path))
    assert fs.read_text("proc/stat") is None
    assert fs.problems[0].reason.startswith("is a directory")


def test_permission_denied_is_noted(tmp_path, monkeypatch):
    # Tests run as root, where chmod 000 does not refuse reads: simulate the kernel's answer.
    target = tmp_path / "sys/firmware/dmi/tables/DMI"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\0" * 8)
    real_open = open

    def fake_open(path, *a, **kw):
        if os.fspath(path) == os.fspath(target):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)

    monkeypatch.setattr("builtins.open", fake_open)
    fs = HostFS(str(tmp_path))
    assert fs.read_bytes("sys/firmware/dmi/tables/DMI") is None
    assert "needs root" in fs.problems[0].reason


def test_eio_from_a_sensor_is_noted(tmp_path, monkeypatch):
    target = tmp_path / "temp1_input"
    target.write_text("42000\n")
    real_open = open

    def fake_open(path, *a, **kw):
        if os.fspath(path) == os.fspath(target):
            raise OSError(5, "Input/output error")
        return real_open(path, *a, **kw)

    monkeypatch.setattr("builtins.open", fake_open)
    fs = HostFS(str(tmp_path))
    assert fs.read_int("temp1_input") is None
    assert "Input/output error" in fs.problems[0].reason


def test_nonexistent_root_reads_nothing_and_does_not_raise(tmp_path):
    fs = HostFS(str(tmp_path / "nope"))
    assert fs.read_text("proc/cpuinfo") is None
    assert fs.listdir("sys/devices/system/node") == []


def test_listdir_glob_and_links(tmp_path):
    d = tmp_path / "sys/class/hwmon"
    d.mkdir(parents=True)
    (tmp_path / "sys/devices/pci0000:00/0000:00:18.3/hwmon/hwmon3").mkdir(parents=True)
    os.symlink("../../devices/pci0000:00/0000:00:18.3/hwmon/hwmon3", d / "hwmon3")
    os.symlink(
        "../../../0000:00:18.3",
        tmp_path / "sys/devices/pci0000:00/0000:00:18.3/hwmon/hwmon3/device",
    )
    fs = HostFS(str(tmp_path))
    assert list(fs.glob("sys/class/hwmon", "hwmon")) == ["sys/class/hwmon/hwmon3"]
    assert fs.realname("sys/class/hwmon/hwmon3/device") == "0000:00:18.3"


@pytest.mark.parametrize("env,expected", [("", "/"), ("/tmp/tree", "/tmp/tree")])
def test_default_root_from_env(monkeypatch, env, expected):
    monkeypatch.setenv(ENV_ROOT, env)
    assert default_root() == expected
