"""Slack start-up checks: the real CLI in a subprocess, against the fake Slack, with a bad setting;
it stops with exit status 2 and says what to fix (or, when all is right, serves and stops cleanly)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from bot.config import Settings
from fakes.slack_api import FakeSlack
from tests.bot.test_cli import CONTRACT_VARIABLES

MENTORS = "C_MENTORS"
ROOT = Path(__file__).resolve().parents[2]


def _env(fake: FakeSlack, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT_VARIABLES}
    env.update(
        PYTHONPATH=str(ROOT),  # this checkout's code, whichever checkout the venv was installed from
        SLACK_BOT_TOKEN="xoxb-good",
        SLACK_SIGNING_SECRET="secret",
        SLACK_MENTOR_CHANNEL=MENTORS,
        SLACK_API_URL=fake.url,
    )
    env.update(overrides)
    return env


async def _cli(tmp_path: Path, env: dict[str, str], *argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *argv, cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_revoked_bot_token_is_refused(fake: FakeSlack, tmp_path: Path) -> None:
    fake.revoked_tokens.add("xoxb-good")
    code, err = await _cli(tmp_path, _env(fake), "run", "--port", "0")
    assert code == 2 and "Traceback" not in err
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in err and "OAuth & Permissions" in err
    # The fake noted the refused call, as it notes every wrong one; here it is the point.
    assert fake.validation_errors == ["auth.test: this token was revoked (fake: revoked_tokens)"]
    fake.validation_errors.clear()


async def test_unknown_mentor_channel_says_where_the_id_is(fake: FakeSlack, tmp_path: Path) -> None:
    code, err = await _cli(tmp_path, _env(fake, SLACK_MENTOR_CHANNEL="C_NOPE"), "slack", "--http")
    assert code == 2 and "Traceback" not in err
    assert "SLACK_MENTOR_CHANNEL=C_NOPE: no such channel" in err and "About tab" in err


async def test_bot_outside_the_mentor_channel_says_invite(fake: FakeSlack, tmp_path: Path) -> None:
    fake.add_channel(MENTORS, members=["U_MENTOR"], name="mentors")
    code, err = await _cli(tmp_path, _env(fake), "run", "--port", "0")
    assert code == 2 and "Traceback" not in err
    assert "not a member of the mentors' channel C_MENTORS" in err and "`/invite @" in err


async def test_refused_app_token_is_named_before_serving(fake: FakeSlack, tmp_path: Path) -> None:
    fake.add_channel(MENTORS, members=["U_MENTOR", fake.bot_user_id], name="mentors")
    fake.revoked_tokens.add("xapp-1-revoked")
    code, err = await _cli(tmp_path, _env(fake, SLACK_APP_TOKEN="xapp-1-revoked"), "slack")
    assert code == 2 and "Traceback" not in err
    assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in err and "App-Level Tokens" in err
    assert "xapp-1-revoked" not in err  # the token is not echoed
    assert fake.validation_errors == ["apps.connections.open: this token was revoked (fake: revoked_tokens)"]
    fake.validation_errors.clear()


async def test_http_mode_does_not_need_the_app_token(fake: FakeSlack, tmp_path: Path) -> None:
    fake.add_channel(MENTORS, members=["U_MENTOR"], name="mentors")  # stops it after the checks
    fake.revoked_tokens.add("xapp-1-revoked")
    code, err = await _cli(tmp_path, _env(fake, SLACK_APP_TOKEN="xapp-1-revoked"), "slack", "--http")
    assert code == 2 and "not a member of the mentors' channel" in err
    assert "SLACK_APP_TOKEN" not in err and not fake.calls_to("apps.connections.open")


async def test_all_right_serves_logs_json_and_stops_cleanly_on_sigterm(
    fake: FakeSlack, tmp_path: Path
) -> None:
    fake.add_channel(MENTORS, members=["U_MENTOR", fake.bot_user_id], name="mentors")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--port",
        "0",
        cwd=tmp_path,
        env=_env(fake, LOG_FORMAT="json"),
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[str] = []
    while line := (await asyncio.wait_for(process.stderr.readline(), timeout=60)).decode():
        lines.append(line)
        if "listening on" in line:
            break
    # --port 0 takes any free port: the line names the one it got (it said ":0").
    listening = json.loads(lines[-1])["message"]
    port = int(listening.split("http://0.0.0.0:")[1].split("/")[0])
    assert port > 0, listening
    process.send_signal(signal.SIGTERM)
    _, rest = await asyncio.wait_for(process.communicate(), timeout=60)
    lines += rest.decode().splitlines()
    assert process.returncode == 0
    entries = [json.loads(line) for line in lines if line.strip()]  # every line is one JSON object
    assert not [e for e in entries if e["level"] in ("ERROR", "CRITICAL")]
    messages = " ".join(e["message"] for e in entries)
    for name in ("expire", "nudge", "complete", "digest", "deliver"):
        assert f'Added job "sweep {name}"' in messages
    assert "run_safely" not in messages and "`token` will be unused" not in messages


async def test_a_wrong_slack_api_url_is_named_not_blamed_on_the_network(tmp_path: Path) -> None:
    """A dead SLACK_API_URL, or one missing /api/, is said to be the setting to check."""
    from aiohttp import web

    from handlers.slack import preflight
    from tests.conftest import make_settings

    def settings(url: str) -> Settings:
        return make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
            slack_bot_token="xoxb-good",
            slack_signing_secret="secret",
            slack_mentor_channel=MENTORS,
            slack_api_url=url,
        )

    dead = await preflight(settings("http://127.0.0.1:9/api/"))
    assert dead is not None and "SLACK_API_URL=http://127.0.0.1:9/api/" in dead and "network" not in dead
    app = web.Application()  # a web server, but not Slack's Web API: every path is a 404
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        missing = await preflight(settings(f"http://127.0.0.1:{port}/"))
    finally:
        await runner.cleanup()
    assert missing is not None and "answered 404" in missing and "ending in /api/" in missing


async def test_the_clock_process_checks_the_slack_token_too(fake: FakeSlack, tmp_path: Path) -> None:
    """`jobs` delivers every Slack message; with a revoked token it started, logged each delivery
    at INFO as "RetryLater(reason='invalid_auth')" and exited 0, while Discord's token is checked."""
    env = _env(fake, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    fake.add_channel(MENTORS, members=["UBOT"], name="mentors")
    code, err = await _cli(tmp_path, env, "jobs", "--once")
    assert code == 0, err
    fake.revoked_tokens.add("xoxb-good")
    code, err = await _cli(tmp_path, env, "jobs", "--once")
    assert code == 2 and "Traceback" not in err
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in err
    fake.validation_errors.clear()
