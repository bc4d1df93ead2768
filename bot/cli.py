"""`mini-mentorship` (also `python -m bot`): the composition root.

It reads the configuration, builds the Runtime (the platform-free core), and wires in the
platform adapters and the jobs that the chosen command needs. Platform packages are imported
only by the commands that use them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from bot import logs
from bot.clock import Clock, ManualClock
from bot.config import ConfigError, Settings, load_settings
from bot.runtime import Runtime

log = logging.getLogger("mini_mentorship")

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
  mini-mentorship demo
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mini-mentorship",
        description="Quick, one-off mentorship sessions for Slack and Discord communities. "
        "Configuration comes from environment variables or a .env file (see README).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="every platform whose credentials are set, plus the jobs, in one process",
        description="Run Slack and/or Discord (whichever is configured) and the scheduled jobs. "
        "Slack uses Socket Mode when SLACK_APP_TOKEN is set, else serves HTTP on --port.",
    )
    run.add_argument(
        "--port", type=int, default=3000, help="Slack HTTP port without SLACK_APP_TOKEN (default 3000)"
    )
    slack = commands.add_parser(
        "slack",
        help="Slack alone (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)",
        description="Run the Slack app alone. Socket Mode when SLACK_APP_TOKEN is set; with --http "
        "(or without an app token) serve POST /slack/events and GET /healthz.",
    )
    slack.add_argument("--http", action="store_true", help="serve HTTP even if SLACK_APP_TOKEN is set")
    slack.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    commands.add_parser("discord", help="Discord alone", description="Run the Discord bot alone.")
    jobs = commands.add_parser(
        "jobs",
        help="the scheduled sweeps: expiry, reminders, nudges, rating prompts, delivery",
        description="Run the sweeps on a timer. With --once, run each sweep once and exit.",
    )
    jobs.add_argument("--once", action="store_true", help="run each due sweep once, then exit")
    jobs.add_argument(
        "--now",
        metavar="ISO-8601",
        help="act as if it were this instant (with --once), e.g. 2030-01-07T09:00Z",
    )
    commands.add_parser(
        "migrate",
        help="upgrade the database to the latest schema (Alembic)",
        description="Apply Alembic migrations up to head. SQLite databases are also migrated on start.",
    )
    manifest = commands.add_parser(
        "manifest",
        help="print the Slack app manifest (YAML), ready to paste",
        description="Print the Slack app manifest. By default it sets the app up for Socket Mode "
        "(no public URL needed); with --http-url it points Slack at https://HOST/slack/events instead.",
    )
    manifest.add_argument(
        "--http-url",
        metavar="URL",
        help="public base URL of `mini-mentorship slack --http`, e.g. https://bot.example.org",
    )
    commands.add_parser("demo", help="the whole story against local fakes; no credentials needed")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(verbose=args.verbose)
    if args.command == "demo":
        from handlers.slack_demo import run_demo

        if not args.verbose:
            logging.getLogger().setLevel(logging.WARNING)
        asyncio.run(run_demo())
        return 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logs.configure(verbose=args.verbose, fmt=settings.log_format)
    if args.command == "manifest":
        from handlers.slack import manifest

        print(manifest(settings, base_url=args.http_url))
        return 0
    handler: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]] = {
        "run": _run,
        "slack": _slack,
        "discord": _discord,
        "jobs": _jobs,
        "migrate": _migrate,
    }[args.command]
    try:
        return asyncio.run(handler(args, settings))
    except KeyboardInterrupt:
        return 130


def _require(missing: list[str], platform: str) -> bool:
    if missing:
        print(f"{platform} needs these variables set: {', '.join(missing)} (see README).", file=sys.stderr)
        return False
    return True


async def _until_stopped(*jobs: Awaitable[Any]) -> None:
    """Run until one job ends or the process gets SIGINT/SIGTERM; then cancel the rest."""
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
    if not settings.slack_configured and not settings.discord_configured:
        print(NO_CREDENTIALS, file=sys.stderr)
        return 2
    if settings.slack_configured and not _require(settings.missing_for_slack(), "Slack"):
        return 2
    if settings.discord_configured and not _require(settings.missing_for_discord(), "Discord"):
        return 2
    runtime = Runtime(settings)
    await runtime.prepare()
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

    runtime = Runtime(settings)
    await runtime.prepare()
    slack.build_app(settings, runtime=runtime)
    http = args.http or not settings.slack_app_token
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

    runtime = Runtime(settings)
    await runtime.prepare()
    try:
        await _until_stopped(
            discord.serve(runtime), *_metrics_server(runtime), runtime.delivery.run_forever()
        )
    finally:
        await runtime.close()
    return 0


def _parse_now(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"--now {text!r} is not an ISO-8601 instant like 2030-01-07T09:00:00Z") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


async def _jobs(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.scheduler import build_scheduler
    from jobs.sweeps import Sweeps

    if args.now and not args.once:
        print("--now only makes sense with --once", file=sys.stderr)
        return 2
    clock: Clock | None = ManualClock(_parse_now(args.now)) if args.now else None
    runtime = Runtime(settings, clock=clock)
    await runtime.prepare()
    closers: list[Callable[[], Awaitable[None]]] = []
    if settings.slack_configured:
        from handlers.slack import SlackSender

        runtime.delivery.add_sender(SlackSender(settings))
    if settings.discord_configured:
        from handlers.discord import rest_sender

        sender, close = await rest_sender(settings)
        runtime.delivery.add_sender(sender)
        closers.append(close)
    if not runtime.delivery.senders:
        log.warning("no platform credentials: state sweeps run, messages stay queued until one is set")
    sweeps = Sweeps(runtime)
    try:
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
    from storage import migrate

    runtime = Runtime(settings)
    try:
        await migrate.upgrade(runtime.db)
    finally:
        await runtime.close()
    print(f"Database is up to date ({settings.database_url.split('@')[-1]}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
