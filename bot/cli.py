"""`mini-mentorship` (also `python -m bot`): the composition root.

It reads the configuration, builds the Runtime (the platform-free core), and wires in the
platform adapters and the jobs that the chosen command needs. Platform packages are imported
only by the commands that use them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot import logs
from bot.clock import Clock, ManualClock
from bot.config import ConfigError, Settings, load_settings, mask_url
from bot.preflight import StartupError
from bot.runtime import Runtime

log = logging.getLogger("mini_mentorship")
_T = TypeVar("_T")

NO_CREDENTIALS = """\
Nothing to connect to yet: no Slack or Discord credentials are set.

For Slack, set (in the environment or a .env file):
  SLACK_BOT_TOKEN       the bot token (xoxb-…) from "OAuth & Permissions"
  SLACK_SIGNING_SECRET  from "Basic Information" → "App Credentials"
  SLACK_MENTOR_CHANNEL  the id (C…) of the mentors' channel
  SLACK_APP_TOKEN       an app-level token (xapp-…) to use Socket Mode (no public URL needed)
For Discord, set:
  DISCORD_TOKEN, DISCORD_MENTOR_CHANNEL_ID, DISCORD_MENTOR_ROLE_ID (and DISCORD_GUILD_ID)

The README walks through both. To see the whole flow first, without credentials:
  .venv/bin/mini-mentorship demo
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mini-mentorship",
        description="Quick, one-off mentorship sessions for Slack and Discord communities. "
        "Configuration comes from environment variables or a .env file (see README).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    # `-v` is accepted after the command too (`mini-mentorship jobs -v`); SUPPRESS keeps a
    # subcommand's default from overwriting a `-v` given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug details"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        parents=[common],
        help="every platform whose credentials are set, plus the jobs, in one process",
        description="Run Slack and/or Discord (whichever is configured) and the scheduled jobs. "
        "Slack uses Socket Mode when SLACK_APP_TOKEN is set, else serves HTTP on --port.",
    )
    run.add_argument(
        "--port", type=_port, default=3000, help="Slack HTTP port without SLACK_APP_TOKEN (default 3000)"
    )
    slack = commands.add_parser(
        "slack",
        parents=[common],
        help="Slack alone (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)",
        description="Run the Slack app alone. Socket Mode when SLACK_APP_TOKEN is set; with --http "
        "(or without an app token) serve POST /slack/events, GET /healthz and GET /metrics.",
    )
    slack.add_argument("--http", action="store_true", help="serve HTTP even if SLACK_APP_TOKEN is set")
    slack.add_argument("--port", type=_port, default=3000, help="HTTP port (default 3000)")
    commands.add_parser(
        "discord",
        parents=[common],
        help="Discord alone",
        description="Run the Discord bot alone. Once connected, it checks that the token works, "
        "that the bot is in DISCORD_GUILD_ID, that the mentors' channel and the roles exist there "
        "and that it can post in that channel; if not, it says what to fix and exits with status 2.",
    )
    jobs = commands.add_parser(
        "jobs",
        parents=[common],
        help="the scheduled sweeps: expiry, nudges and escalation, completion and rating prompts, "
        "withdrawing past proposals, the daily digest, and delivery (reminders included)",
        description="Run the sweeps on a timer. With --once, run each sweep once and exit.",
    )
    jobs.add_argument("--once", action="store_true", help="run each due sweep once, then exit")
    jobs.add_argument(
        "--now",
        metavar="ISO-8601",
        help="act as if it were this instant; needs --once, e.g. 2030-01-07T09:00Z. It acts for "
        "real: requests expire and reminders and rating prompts due by then are sent, so try a "
        "later instant on a copy of the database (not recorded as a run for /healthz)",
    )
    commands.add_parser(
        "migrate",
        parents=[common],
        help="upgrade the database to the latest schema (Alembic)",
        description="Apply Alembic migrations up to head. SQLite databases are also migrated on start.",
    )
    manifest = commands.add_parser(
        "manifest",
        parents=[common],
        help="print the Slack app manifest (YAML), ready to paste",
        description="Print the Slack app manifest. By default it sets the app up for Socket Mode "
        "(no public URL needed); with --http-url it points Slack at https://HOST/slack/events instead.",
    )
    manifest.add_argument(
        "--http-url",
        metavar="URL",
        help="public base URL of `mini-mentorship slack --http`, e.g. https://bot.example.org",
    )
    commands.add_parser(
        "demo",
        parents=[common],
        help="the whole story against local fakes; no credentials needed",
        description="Play the whole story (request, claim, schedule, reminders, rating, stats) "
        "against a local fake Slack and a throw-away SQLite database, printing what each person "
        "sees. Needs no credentials and changes nothing outside a temporary folder.",
    )
    return parser


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (a dependency on Linux and macOS), else None for
    asyncio's own. A click waits on the database and Slack a dozen times; a profile put about a
    sixth of a click's CPU in asyncio's loop and selector (bench/README.md, "uvloop")."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _run_loop(main: Coroutine[Any, Any, _T]) -> _T:
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(verbose=args.verbose)
    if args.command == "demo":
        from handlers.slack_demo import run_demo

        if not args.verbose:
            logging.getLogger().setLevel(logging.WARNING)
        _run_loop(run_demo())
        return 0
    if args.command == "manifest":
        # Needs neither a database nor valid settings: it is printed before any token exists.
        return _manifest(args.http_url)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logs.configure(verbose=args.verbose, fmt=settings.log_format)
    for warning in settings.deprecations:
        log.warning("%s", warning)
    handler: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]] = {
        "run": _run,
        "slack": _slack,
        "discord": _discord,
        "jobs": _jobs,
        "migrate": _migrate,
    }[args.command]
    try:
        return _run_loop(handler(args, settings))
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _manifest(http_url: str | None) -> int:
    from urllib.parse import urlsplit

    from handlers.slack_manifest import manifest

    if http_url is not None:
        parts = urlsplit(http_url)
        if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
            print(
                f"--http-url {http_url!r} needs to be an https:// address with a host and no query, "
                "like https://bot.example.org (Slack only calls https:// URLs).",
                file=sys.stderr,
            )
            return 2
        # The bot's address or its events URL itself: either way the manifest names /slack/events once.
        http_url = http_url.rstrip("/").removesuffix("/slack/events")
    try:
        print(manifest(None, base_url=http_url), flush=True)
    except BrokenPipeError:
        # `manifest | head`: the reader has what it wanted. Point stdout at /dev/null so the
        # flush at exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """A Runtime, or a StartupError when its SQLite file's folder cannot be made (a path through a
    file, a read-only disk)."""
    from bot.preflight import describe_connection_error

    try:
        return Runtime(settings, clock=clock)
    except OSError as exc:
        raise StartupError(describe_connection_error(settings.database_url, exc)) from None


async def _prepared(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """A Runtime whose database is reachable and migrated, or a StartupError saying why not."""
    from bot.preflight import check_database, describe_connection_error

    runtime = _runtime(settings, clock=clock)
    try:
        await runtime.prepare()
    except Exception as exc:  # SQLite migrates on start: a bad path or locked file lands here
        await runtime.close()
        raise StartupError(describe_connection_error(settings.database_url, exc)) from None
    problem = await check_database(runtime.db)
    if problem:
        await runtime.close()
        raise StartupError(problem)
    return runtime


def _require(missing: list[str], platform: str) -> bool:
    if missing:
        print(f"{platform} needs these variables set: {', '.join(missing)} (see README).", file=sys.stderr)
        return False
    return True


async def _until_stopped(*jobs: Awaitable[Any]) -> None:
    """Run until one job ends or the process gets SIGINT/SIGTERM; then cancel the rest."""
    # What start-up built (modules, the app, the engine, compiled statements) lives as long as
    # the process: frozen, the collector no longer walks it on each full collection, a pause
    # that otherwise lands on whichever click is in flight.
    gc.collect()
    gc.freeze()
    tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(job) for job in jobs]
    stopped = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(sig, stopped.set)
    stop = asyncio.ensure_future(stopped.wait())
    done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if task is not stop and not task.cancelled() and task.exception():
            raise task.exception()  # type: ignore[misc]


def _metrics_server(runtime: Runtime) -> list[Awaitable[Any]]:
    """GET /metrics and /healthz on METRICS_PORT, when it is set."""
    if runtime.settings.metrics_port is None:
        return []
    from bot.metrics import serve_ops

    return [serve_ops(runtime, runtime.settings.metrics_port)]


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.slack_requested and not settings.discord_configured:
        print(NO_CREDENTIALS, file=sys.stderr)
        return 2
    if settings.slack_requested and not _require(settings.missing_for_slack(), "Slack"):
        return 2
    if settings.discord_configured and not _require(settings.missing_for_discord(), "Discord"):
        return 2
    if settings.slack_requested:
        from handlers.slack import preflight

        if problem := await preflight(settings, socket_mode=bool(settings.slack_app_token)):
            raise StartupError(problem)
    runtime = await _prepared(settings)
    jobs: list[Awaitable[Any]] = []
    if settings.slack_configured:
        from handlers import slack

        slack.build_app(settings, runtime=runtime)  # registers the Slack sender
        jobs.append(slack.serve(runtime, http=not settings.slack_app_token, port=args.port))
    if settings.discord_configured:
        from handlers import discord

        jobs.append(discord.serve(runtime))
    from jobs.scheduler import build_scheduler
    from jobs.sweeps import Sweeps

    sweeps = Sweeps(runtime)
    scheduler = build_scheduler(sweeps)
    scheduler.start()
    try:
        await _until_stopped(*jobs, *_metrics_server(runtime), runtime.delivery.run_forever())
    finally:
        scheduler.shutdown(wait=False)
        await sweeps.stop()  # a tick in flight ends before the loop does: no "job raised" line
        await runtime.close()
    return 0


async def _slack(args: argparse.Namespace, settings: Settings) -> int:
    if not _require(settings.missing_for_slack(), "Slack"):
        return 2
    from handlers import slack

    http = args.http or not settings.slack_app_token
    if problem := await slack.preflight(settings, socket_mode=not http):
        raise StartupError(problem)
    runtime = await _prepared(settings)
    slack.build_app(settings, runtime=runtime)
    try:
        await _until_stopped(
            slack.serve(runtime, http=http, port=args.port),
            *_metrics_server(runtime),
            runtime.delivery.run_forever(),
        )
    finally:
        await runtime.close()
    return 0


async def _discord(args: argparse.Namespace, settings: Settings) -> int:
    if not _require(settings.missing_for_discord(), "Discord"):
        return 2
    from handlers import discord

    runtime = await _prepared(settings)
    try:
        await _until_stopped(
            discord.serve(runtime), *_metrics_server(runtime), runtime.delivery.run_forever()
        )
    finally:
        await runtime.close()
    return 0


def _port(text: str) -> int:
    """--port: a TCP port number (0: any free one), said so by argparse (exit 2) rather than
    bound to something else."""
    if not (text.isascii() and text.isdigit() and 0 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port number from 1 to 65535 (or 0 for any free port)"
        )
    return int(text)


def _parse_now(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        print(f"--now {text!r} is not an ISO-8601 instant like 2030-01-07T09:00:00Z", file=sys.stderr)
        raise SystemExit(2) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


async def _jobs(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.scheduler import build_scheduler
    from jobs.sweeps import Sweeps

    if args.now and not args.once:
        print("--now only makes sense with --once", file=sys.stderr)
        return 2
    clock: Clock | None = ManualClock(_parse_now(args.now)) if args.now else None
    if settings.slack_configured:
        # The clock process delivers every Slack message: a refused token or a feed the bot
        # is not in is said at start, as `slack` and `run` say it, not retried row by row.
        if not _require(settings.missing_for_slack(), "Slack"):
            return 2
        from handlers.slack import preflight

        if problem := await preflight(settings):
            raise StartupError(problem)
    runtime = await _prepared(settings, clock=clock)
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        if settings.slack_configured:
            from handlers.slack import SlackSender
            from handlers.slack_directory import Directory
            from handlers.slack_sender import make_client

            slack_sender = SlackSender(settings)
            runtime.delivery.add_sender(slack_sender)
            closers.append(slack_sender.close)
            # The escalation ladder asks who is still a mentor before widening the circle.
            directory = Directory(make_client(settings, interactive=False), settings)
            runtime.mentorship.use_directory("slack", directory)
        if settings.discord_configured:
            from handlers.discord import rest_sender
            from handlers.discord_directory import DiscordMentorDirectory
            from handlers.discord_sender import DiscordSender

            sender, close = await rest_sender(settings)  # a refused token: StartupError
            runtime.delivery.add_sender(sender)
            if isinstance(sender, DiscordSender):
                runtime.mentorship.use_directory("discord", DiscordMentorDirectory(sender.client, settings))
            closers.append(close)
        if not runtime.delivery.senders:
            log.warning("no platform credentials: state sweeps run, messages stay queued until one is set")
        sweeps = Sweeps(runtime, record=not args.now)
        if args.once:
            counts = await sweeps.run_all_once()
            print(" ".join(f"{name}={count}" for name, count in counts.items()))
            return 0
        scheduler = build_scheduler(sweeps)
        scheduler.start()
        log.info(
            "jobs: sweeps running (%s)",
            ", ".join(f"{n} every {s:g} s" for n, s in runtime.sweep_intervals.items()),
        )
        try:
            await _until_stopped(asyncio.Event().wait(), *_metrics_server(runtime))
        finally:
            scheduler.shutdown(wait=False)
            await sweeps.stop()  # a tick in flight ends before the loop does: no "job raised" line
        return 0
    finally:
        for close in closers:
            await close()
        await runtime.close()


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from bot.preflight import describe_connection_error
    from storage import migrate

    runtime = _runtime(settings)
    try:
        newer = await migrate.upgrade(runtime.db)
    except Exception as exc:  # unreachable or missing database: say so, no traceback
        raise StartupError(describe_connection_error(settings.database_url, exc)) from None
    finally:
        await runtime.close()
    where = mask_url(settings.database_url).split("@")[-1]
    if newer is not None:
        print(
            f"Database is at schema revision {newer}, newer than this version knows ({where}): a newer "
            "release has migrated it. Nothing was changed; this version keeps working with it. To go "
            "back, run `alembic downgrade` from the newer release (docs/operations.md, Upgrading)."
        )
        return 0
    print(f"Database is up to date ({where}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
