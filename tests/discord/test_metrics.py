"""Discord interactions are timed into the interactions histogram, by their Discord type, and
scraped over HTTP from the METRICS_PORT server (`serve_ops`), as `discord` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import serve_ops
from tests.discord.conftest import World


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_interactions_are_counted_and_scraped(world: World) -> None:
    first, _ = await world.post_request()  # a slash command and a modal submission
    await world.mia.click(await world.card(first), label="Claim")  # a component
    await world.deliver()

    port = _free_port()
    server = asyncio.create_task(serve_ops(world.runtime, port, host="127.0.0.1"))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(500):  # until the socket is up (no timers: poll the port)
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                        text = await resp.text()
                        status = resp.status
                    break
                await asyncio.sleep(0)
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["database"] == {"ok": True}
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    assert status == 200
    counts = {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mini_mentorship_interaction_duration_seconds_count"
    }
    assert counts == {"application_command": 1, "modal_submit": 1, "component": 1}
    delivered = {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mini_mentorship_deliveries_total"
    }
    assert delivered.get("card", 0) >= 1
