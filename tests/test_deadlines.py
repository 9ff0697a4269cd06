"""Every test runs under a deadline: a guarantee broken into an endless loop fails that test by
name, in seconds, instead of hanging the whole run (and CI) until it is killed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HANGS = """
import time

def test_loops_for_ever():
    while True:
        time.sleep(0.01)
"""


def test_a_test_that_never_ends_fails_by_name(tmp_path: Path) -> None:
    (tmp_path / "test_hang.py").write_text(HANGS)
    started = time.monotonic()
    # The project's own settings (pyproject.toml), with the deadline shortened for the check.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            "-o",
            "timeout=2",
            str(tmp_path / "test_hang.py"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Timeout" in done.stdout and "test_loops_for_ever" in done.stdout, done.stdout
    assert time.monotonic() - started < 30


def test_the_suite_has_a_default_deadline_and_slow_tests_a_longer_one(pytestconfig) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import SLOW_TEST_TIMEOUT_S

    default = float(pytestconfig.getini("timeout"))
    assert 0 < default <= 300
    assert default < SLOW_TEST_TIMEOUT_S <= 900
