"""The README's `make` targets as a newcomer meets them: the real Makefile, run by make in a
scratch copy of the project's top level (so nothing of this checkout is removed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bot.test_cli import CONTRACT_VARIABLES

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(where: Path, target: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT_VARIABLES}
    env["PYTHONPATH"] = str(ROOT)  # the fake venv's script runs this checkout's code
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_clean_leaves_a_fresh_clone(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path)
    (tmp_path / "README.md").write_text("kept\n")
    (tmp_path / "bot" / "__pycache__").mkdir(parents=True)
    (tmp_path / "bot" / "cli.py").write_text("kept\n")
    made = [".venv/bin", "mini_mentorship.egg-info", ".pytest_cache", ".mypy_cache", ".ruff_cache"]
    for folder in made:
        (tmp_path / folder).mkdir(parents=True)
    for name in ("mini_mentorship.db", "mini_mentorship.db-wal", "mini_mentorship.db-shm"):
        (tmp_path / name).write_bytes(b"")
    done = _make(tmp_path, "clean")
    assert done.returncode == 0, done.stderr
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["Makefile", "README.md", "bot", "bot/cli.py"]


def test_first_make_run_without_credentials_ends_calmly(tmp_path: Path) -> None:
    """Exit status 2 ("set these variables") is not reported as make's "Error 2"."""
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    script = bin_dir / "mini-mentorship"  # what `pip install -e .` puts there, for this checkout
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bot "$@"\n')
    script.chmod(0o755)
    (tmp_path / ".venv" / ".app").touch()  # installed after pyproject.toml: make installs nothing
    os.utime(tmp_path / "pyproject.toml", (0, 0))
    done = _make(tmp_path, "run")
    assert done.returncode == 0, done.stderr
    assert "Nothing to connect to yet" in done.stderr and "SLACK_BOT_TOKEN" in done.stderr
    assert "the bot is not started; do what it says above, then make run again" in done.stdout
    assert "Error" not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "mini_mentorship.db").exists()  # nothing was started
