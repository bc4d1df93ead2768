"""Running unattended, through the real CLI in a subprocess with a SQLite database and no
platform credentials: LOG_FORMAT=json, the METRICS_PORT server, and a quiet SIGTERM.

`run` refuses to start without platform credentials, so the SIGTERM test runs `jobs`, which
shuts its scheduler down the same way `run` does."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from bot.logs import JsonFormatter
from jobs.sweeps import SWEEP_ORDER

START_DEADLINE = 60.0


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ", "SYSTEMROOT")}
    return {**keep, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}", **extra}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_json_formatter_carries_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x.y", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert set(entry) == {"time", "level", "logger", "message", "exc_info"}
    assert (entry["level"], entry["logger"], entry["message"]) == ("ERROR", "x.y", "failed here")
    assert "ValueError: boom" in entry["exc_info"]


async def test_log_format_json_gives_one_object_per_line(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "jobs", "--once",
        env=_env(tmp_path, LOG_FORMAT="json"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), START_DEADLINE)
    assert process.returncode == 0, err
    assert out.decode().startswith("expire=0 ")
    lines = err.decode().splitlines()
    assert lines
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert {"level": "WARNING", "logger": "mini_mentorship"}.items() <= next(
        e for e in entries if "no platform credentials" in e["message"]
    ).items()


async def test_log_format_is_validated(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "jobs", "--once",
        env=_env(tmp_path, LOG_FORMAT="xml", METRICS_PORT="70000"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), START_DEADLINE)
    assert process.returncode == 2
    assert "LOG_FORMAT='xml'" in err.decode() and "METRICS_PORT='70000'" in err.decode()
    assert "Traceback" not in err.decode()


async def test_jobs_serves_metrics_and_ends_quietly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "jobs",
        env=_env(tmp_path, METRICS_PORT=str(port)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    seen: list[str] = []
    try:

        async def until(text: str) -> None:
            while text not in (line := (await process.stderr.readline()).decode()):  # type: ignore[union-attr]
                assert line, "".join(seen)
                seen.append(line)
            seen.append(line)

        await asyncio.wait_for(until("metrics: listening"), START_DEADLINE)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                health = await resp.json()
                assert resp.status == 200 and health["database"] == {"ok": True}
                assert set(health["sweeps"]) == set(SWEEP_ORDER)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200
                assert "# TYPE mini_mentorship_sweep_runs_total counter" in await resp.text()
        # Scheduled jobs are logged by sweep name.
        assert any('"sweep deliver"' in line for line in seen), "".join(seen)
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stderr.read(), START_DEADLINE)
        code = await asyncio.wait_for(process.wait(), START_DEADLINE)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = "".join(seen) + rest.decode()
    assert code == 0, log
    assert " ERROR " not in log and "Traceback" not in log and "raised an exception" not in log
    assert "Scheduler has been shut down" in log


def test_manifest_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    """`mini-mentorship manifest | head -1` ended in a BrokenPipeError traceback."""
    import subprocess

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (head) has gone: every write to the pipe fails with EPIPE
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "bot", "manifest"],
            env=_env(tmp_path),
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=START_DEADLINE,
            check=False,
        )
    finally:
        os.close(write_end)
    assert b"BrokenPipeError" not in finished.stderr, finished.stderr.decode()
    assert finished.returncode == 0
