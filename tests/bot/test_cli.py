"""The `mini-mentorship` commands as an operator uses them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import main
from bot.clock import ManualClock
from bot.domain import Ok, Status
from bot.runtime import Runtime
from tests.conftest import START, STUDENT, make_settings, request_form

CONTRACT_VARIABLES = [
    "DATABASE_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "SLACK_MENTOR_CHANNEL",
    "DISCORD_TOKEN",
    "DISCORD_MENTOR_CHANNEL_ID",
    "DISCORD_MENTOR_ROLE_ID",
    "DISCORD_GUILD_ID",
    "DISCORD_SESSIONS_CHANNEL_ID",
    "ADMIN_USER_IDS",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CONTRACT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env, and the default SQLite file lands here


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "slack", "discord", "jobs", "migrate", "manifest", "demo"):
        assert command in out


def test_jobs_help_explains_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["jobs", "--help"])
    out = capsys.readouterr().out
    assert "--once" in out and "--now" in out
    # --now really acts (it expires requests and sends what is due by then): calling it a
    # rehearsal invited an operator to try next week on the live database.
    text = " ".join(out.split())
    assert "rehearsal" not in text and "for real" in text and "copy of the database" in text


def test_run_without_credentials_says_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_MENTOR_CHANNEL", "DISCORD_TOKEN"):
        assert name in err
    assert "mini-mentorship demo" in err


def test_slack_with_missing_variable_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    assert main(["slack"]) == 2
    assert "SLACK_SIGNING_SECRET" in capsys.readouterr().err


def test_bad_configuration_is_reported_by_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REMINDER_OFFSETS", "tomorrow")
    assert main(["migrate"]) == 2
    assert "REMINDER_OFFSETS='tomorrow'" in capsys.readouterr().err


def test_nudge_after_hours_is_warned_about_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NUDGE_AFTER_HOURS", "12")
    assert main(["migrate"]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "NUDGE_AFTER_HOURS is deprecated: use CLAIM_TARGET_HOURS" in err


def test_migrate_creates_the_default_sqlite_database(tmp_path: Path) -> None:
    assert main(["migrate"]) == 0
    assert (tmp_path / "mini_mentorship.db").exists()


def test_jobs_once_now_expires_due_requests(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv("DATABASE_URL", url)

    async def seed() -> int:
        runtime = Runtime(make_settings(url), clock=ManualClock(START))
        await runtime.prepare()
        created = await runtime.mentorship.create_request(STUDENT, request_form())
        await runtime.close()
        assert isinstance(created, Ok)
        return created.value.id

    async def status(request_id: int) -> Status:
        runtime = Runtime(make_settings(url), clock=ManualClock(START))
        result = await runtime.mentorship.get_request(STUDENT, request_id)
        await runtime.close()
        assert isinstance(result, Ok)
        return result.value.status

    request_id = asyncio.run(seed())
    assert main(["jobs", "--once", "--now", "2030-01-10T09:00:00Z"]) == 0
    assert asyncio.run(status(request_id)) is Status.OPEN
    assert main(["jobs", "--once", "--now", "2030-01-14T09:00:00Z"]) == 0
    assert "expire=1" in capsys.readouterr().out
    assert asyncio.run(status(request_id)) is Status.EXPIRED
    assert main(["jobs", "--now", "2030-01-14T09:00:00Z"]) == 2  # --now needs --once


def test_demo_tells_the_whole_story(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for moment in (
        "#mentors (new)",
        "New mentorship request",
        "Suggested",
        "A request that fits you",
        "1 of 1 active sessions, your limit",
        "🚨 No mentor's profile fits this request",  # the escalation ladder, at once
        "@mentor-leads",
        "More people have been asked",
        "Waiting: 0 min · target 24 h",
        "only Max (mentor) sees",
        "Already claimed by Mia",
        "times proposed, waiting for the student",
        "Your mentor proposed times",
        "None of these work",
        "Booked",
        "Your mentorship session is scheduled",
        "times in Europe/Berlin",  # each reader sees times in their own zone
        "times in America/New_York",
        "mentorship-1.ics",
        "Your student asks to reschedule",  # the ask, with the reason, and the two answers
        "could we meet a day later?",
        "[ Propose new times ]  [ Keep the time ]",
        "Your session keeps its time",
        "[ Ask to reschedule ]  [ Can't make it ]",  # on Sam's 24-hour reminder
        "Reminder: your session starts in 24 hours",
        "Reminder: your session starts in 15 minutes",
        "How was your session?",
        "You got a rating",
        "You got a review",  # the review's DM says what is new
        "Super practical",
        "will see your rating and review",
        "Average rating: 5.00",
        "DM to Ada (organiser) (file)",  # a person's name, not a DM channel id
        "📎 mentorship-stats-",
        "Saved. Your weekly availability, in America/New_York",
        "45 min session, starts in 29 hours",  # the length apart from the countdown
        "    Mia (mentor)               1     1       0   5.00",  # the table as a table
        "`.venv/bin/mini-mentorship run`",
        "Ada's charts, written to",
        # The shared conversation: the summary, then scheduling news, beside the DMs.
        "Group DM of Sam, Mia and the bot (new)",
        "A place to talk about your session",
        "Times proposed",
        "Time picked, session scheduled",
    ):
        assert moment in out, moment
    # The alt texts are wrapped to the boxes' width; read them unwrapped.
    flat = " ".join(out.split())
    assert "Requests per week over the last 12 weeks: 2 posted, 1 claimed, 1 completed." in flat
    assert "```" not in out and " in DU_" not in out
    assert max(len(line) for line in out.splitlines()) <= 78
    # The completed card keeps the mentor and the time.
    completed = out[out.index("» ✅ Completed") :]
    assert "Mentor: Mia (mentor)" in completed[: completed.index("Request #1")]
    # The hint to add a review comes before the review is written, not after.
    assert out.index("You can add a short review with") < out.index("Write a review and sends")
    # The charts are there for a person to open: real PNG files in the folder the demo named.
    folder = Path(out.split("Ada's charts, written to ", 1)[1].split(":\n", 1)[0])
    for name in ("volume", "claim_time", "tags", "mentors"):
        with Image.open(folder / f"mentorship-{name}-12w.png") as image:
            assert image.format == "PNG" and image.size == (800, 400)


def test_manifest_for_socket_mode_and_http(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest"]) == 0
    socket_mode = capsys.readouterr().out
    assert "socket_mode_enabled: true" in socket_mode and "/mini-session" in socket_mode
    assert main(["manifest", "--http-url", "https://bot.example.org"]) == 0
    http = capsys.readouterr().out
    assert "socket_mode_enabled: false" in http and "https://bot.example.org/slack/events" in http
    # The events URL itself is taken as the bot's address: /slack/events once, not twice.
    assert main(["manifest", "--http-url", "https://bot.example.org/slack/events/"]) == 0
    pasted = capsys.readouterr().out
    assert pasted == http
    for wrong in ("http://bot.example.org", "https://bot.example.org/?a=b", "bot.example.org"):
        assert main(["manifest", "--http-url", wrong]) == 2
        assert "https://" in capsys.readouterr().err


def test_a_port_that_is_no_port_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["slack", "--http", "--port", "70000"])
    assert exited.value.code == 2
    assert "not a port number from 1 to 65535" in capsys.readouterr().err


def test_a_taken_port_is_a_startup_error_not_a_traceback(tmp_path: Path) -> None:
    import socket

    from bot.metrics import serve_ops
    from bot.preflight import StartupError

    async def serve_on_taken_port(port: int) -> None:
        runtime = Runtime(
            make_settings(f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"), clock=ManualClock(START)
        )
        try:
            await serve_ops(runtime, port, host="127.0.0.1")
        finally:
            await runtime.close()

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=f"Cannot listen on port {port} .*METRICS_PORT"):
            asyncio.run(serve_on_taken_port(port))


def test_a_rehearsal_with_now_leaves_the_health_records_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`jobs --once --now` in the future must not make a stopped clock process look alive."""
    from sqlalchemy import func, select

    from storage.models import JobRun

    url = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv("DATABASE_URL", url)

    async def job_runs() -> int:
        runtime = Runtime(make_settings(url), clock=ManualClock(START))
        async with runtime.db.transaction() as session:
            count = await session.scalar(select(func.count()).select_from(JobRun))
        await runtime.close()
        return int(count or 0)

    assert main(["jobs", "--once", "--now", "2030-01-10T09:00:00Z"]) == 0
    assert asyncio.run(job_runs()) == 0
    assert main(["jobs", "--once"]) == 0
    assert asyncio.run(job_runs()) > 0


def test_the_demo_ignores_the_bots_own_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REMINDER_OFFSETS", "not-an-offset")
    monkeypatch.setenv("CLAIM_TARGET_HOURS", "normal=1")
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "That's the whole flow" in out and "Traceback" not in out


def test_console_script_and_module_entry_points() -> None:
    script = Path(sys.executable).with_name("mini-mentorship")
    for command in ([str(script), "--help"], [sys.executable, "-m", "bot", "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and "mini-mentorship" in done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is not a dependency on Windows")
def test_commands_run_on_uvloop() -> None:
    """Every command's coroutine runs on uvloop where it is installed (bench/README.md says
    what it saves)."""
    import uvloop

    from bot import cli

    seen: list[asyncio.AbstractEventLoop] = []

    async def command() -> int:
        seen.append(asyncio.get_running_loop())
        return 7

    assert cli._run_loop(command()) == 7
    assert isinstance(seen[0], uvloop.Loop)
    assert seen[0].is_closed()  # nothing of the loop outlives the command
