"""Disk.check_room: a write's size held against the free space a disk must keep."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest
from prometheus_client import REGISTRY

from steno.common import disk_space
from steno.common.disk_space import Disk, StorageFull

MIB = 1024 * 1024


class Usage(NamedTuple):
    total: int
    used: int
    free: int


@pytest.fixture
def free_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The free space the disk reports: set ``free_bytes[0]``."""
    free = [100 * MIB]

    def usage(path: object) -> Usage:
        return Usage(1000 * MIB, 1000 * MIB - free[0], free[0])

    monkeypatch.setattr(disk_space.shutil, "disk_usage", usage)
    return free


def gauge(name: str, disk: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"disk": disk})


def test_a_write_that_leaves_enough_room_passes_quietly(
    free_bytes: list[int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disk = Disk("roomy", tmp_path, warning_free_bytes=50 * MIB, critical_free_bytes=10 * MIB)
    disk.check_room(40 * MIB)
    assert caplog.records == []
    assert gauge("steno_disk_free_bytes", "roomy") == 100 * MIB
    assert gauge("steno_disk_space_low", "roomy") == 0


def test_a_write_into_the_warning_margin_is_reported_once(
    free_bytes: list[int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disk = Disk("low", tmp_path, warning_free_bytes=50 * MIB, critical_free_bytes=10 * MIB)
    with caplog.at_level(logging.WARNING):
        disk.check_room(60 * MIB)
        disk.check_room(60 * MIB)
    assert [r.getMessage() for r in caplog.records] == ["disk space low"]
    assert gauge("steno_disk_space_low", "low") == 1

    free_bytes[0] = 500 * MIB  # space freed: the gauge clears
    disk.check_room(60 * MIB)
    assert gauge("steno_disk_space_low", "low") == 0


def test_a_write_past_the_critical_margin_is_refused(free_bytes: list[int], tmp_path: Path) -> None:
    disk = Disk("full", tmp_path, warning_free_bytes=50 * MIB, critical_free_bytes=10 * MIB)
    disk.check_room(90 * MIB)  # leaves exactly the 10 MiB kept
    with pytest.raises(StorageFull, match=r"^storage full: the full disk has 104857600 bytes"):
        disk.check_room(90 * MIB + 1)


def test_the_real_disk_is_read_at_the_nearest_existing_parent(tmp_path: Path) -> None:
    free, total = Disk("scratch", tmp_path / "not" / "made" / "yet").usage()
    assert 0 < free <= total == shutil.disk_usage(tmp_path).total
