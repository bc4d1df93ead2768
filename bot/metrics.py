"""Prometheus metrics, one registry per Runtime (so tests and several runtimes never collide),
and the small HTTP server that serves GET /metrics and GET /healthz on METRICS_PORT for the
processes without an HTTP server of their own (`discord`, `jobs`, `run`).

The outbox backlog is not counted as it changes: it is read at scrape time with one GROUP BY
query, so every process reports the same truth the database holds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select

from bot.notifications import Kind
from storage.models import Notification

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

PREFIX = "mini_mentorship"
SCRAPE_TIMEOUT = 2.0  # seconds for the backlog query; a slow database must not hang a scrape


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.outbox_backlog = Gauge(
            f"{PREFIX}_outbox_backlog",
            "Notifications due now and not yet delivered, by kind (read at scrape time)",
            ["kind"],
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            f"{PREFIX}_outbox_oldest_age_seconds",
            "How long the oldest due, undelivered notification of each kind has been due",
            ["kind"],
            registry=r,
        )
        self.deliveries = Counter(
            f"{PREFIX}_deliveries_total", "Notifications delivered to a platform", ["kind"], registry=r
        )
        self.retries = Counter(
            f"{PREFIX}_delivery_retries_total",
            "Delivery attempts that failed and were scheduled again",
            ["kind"],
            registry=r,
        )
        self.failures = Counter(
            f"{PREFIX}_delivery_failures_total",
            "Notifications given up on (undeliverable, or out of attempts)",
            ["kind"],
            registry=r,
        )
        self.sweep_runs = Counter(
            f"{PREFIX}_sweep_runs_total", "Sweep runs, by sweep and outcome", ["sweep", "outcome"], registry=r
        )
        self.sweep_duration = Histogram(
            f"{PREFIX}_sweep_duration_seconds", "Duration of successful sweep runs", ["sweep"], registry=r
        )
        self.interactions = Histogram(
            f"{PREFIX}_interaction_duration_seconds",
            "Interactions handled (its _count) and how long answering took, by platform and kind",
            ["platform", "kind"],
            registry=r,
        )
        # Incremented by the escalation work (a request still unclaimed when its urgency's
        # claim target passes); defined here so dashboards and alerts can be written now.
        self.claim_target_missed = Counter(
            f"{PREFIX}_claim_target_missed",
            "Requests still unclaimed when the claim target of their urgency passed",
            ["urgency"],
            registry=r,
        )

    async def refresh_backlog(self, runtime: Runtime) -> None:
        now = runtime.clock.now()
        query = (
            select(Notification.kind, func.count(), func.min(Notification.next_attempt_at))
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .group_by(Notification.kind)
        )

        async def read() -> list[tuple[str, int, datetime | None]]:
            async with runtime.db.transaction() as session:
                return [(kind, count, oldest) for kind, count, oldest in (await session.execute(query)).all()]

        rows = await asyncio.wait_for(read(), SCRAPE_TIMEOUT)
        self.outbox_backlog.clear()
        self.outbox_oldest_age.clear()
        for known in Kind:  # an empty outbox reads 0, not "no data", on a dashboard or an alert
            self.outbox_backlog.labels(kind=known.value).set(0)
        for kind, count, oldest in rows:
            self.outbox_backlog.labels(kind=kind).set(count)
            if oldest is not None:
                age = (now - _aware(oldest)).total_seconds()
                self.outbox_oldest_age.labels(kind=kind).set(max(0.0, age))

    async def exposition(self, runtime: Runtime) -> bytes:
        try:
            await self.refresh_backlog(runtime)
        except Exception as exc:  # the other metrics are still worth serving; /healthz says why
            log.debug("metrics: outbox backlog not read: %s", exc)
            self.outbox_backlog.clear()
            self.outbox_oldest_age.clear()
        return generate_latest(self.registry)


def _aware(instant: datetime) -> datetime:
    # SQLite hands back naive UTC.
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant


async def metrics_view(runtime: Runtime) -> web.Response:
    body = await runtime.metrics.exposition(runtime)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz_view(runtime: Runtime) -> web.Response:
    from bot.health import check

    report = await check(runtime)
    return web.json_response(report, status=200 if report["ok"] else 503)


def ops_app(runtime: Runtime) -> web.Application:
    """GET /metrics and GET /healthz, nothing else."""

    async def metrics(_: web.Request) -> web.StreamResponse:
        return await metrics_view(runtime)

    async def healthz(_: web.Request) -> web.StreamResponse:
        return await healthz_view(runtime)

    application = web.Application()
    application.router.add_get("/metrics", metrics)
    application.router.add_get("/healthz", healthz)
    return application


async def serve_ops(runtime: Runtime, port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics and /healthz on `port` until cancelled."""
    runner = web.AppRunner(ops_app(runtime), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1] if runner.addresses else port
        log.info("metrics: listening on http://%s:%s/metrics (and /healthz)", host, bound)
        await asyncio.get_running_loop().create_future()
    except OSError as exc:
        from bot.preflight import cannot_listen

        raise cannot_listen(port, "METRICS_PORT", exc) from None
    finally:
        await runner.cleanup()
