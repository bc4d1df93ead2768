"""One HTTP connection pool per process for everything we send to Slack: the Web API clients
(interactive and the outbox's) and the response_url replies.

Without it slack_sdk opens an aiohttp session, and so a TCP (and against slack.com a TLS)
connection, for every single call. The sessions are made on first use, inside the running
event loop (the clients are built before it runs), and closed with `close()` at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

DEFAULT_TIMEOUT = 15.0


class SlackHTTP:
    """A shared connector, and one session on it per timeout (slack_sdk applies the timeout of
    the session it is given, not its own, when it reuses one)."""

    def __init__(self) -> None:
        self._connector: aiohttp.TCPConnector | None = None
        self._sessions: dict[float, aiohttp.ClientSession] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # Dropped without close() (a test's app, an old event loop): shut its connections then,
        # quietly, rather than have aiohttp complain at garbage collection.
        self._held: list[aiohttp.TCPConnector] = []
        weakref.finalize(self, _abandon, self._held)

    def session(self, timeout: float = DEFAULT_TIMEOUT) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._connector is None or self._connector.closed:
            # First use, or a new event loop (tests): connections belong to the loop that made them.
            _abandon(self._held)
            self._connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=30)
            self._held.append(self._connector)
            self._sessions = {}
            self._loop = loop
        session = self._sessions.get(timeout)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=self._connector,
                connector_owner=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            )
            self._sessions[timeout] = session
        return session

    def webhook(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> AsyncWebhookClient:
        """A client for one response_url, on the shared connections."""
        return AsyncWebhookClient(url, timeout=int(timeout), session=self.session(timeout))

    async def close(self) -> None:
        sessions, connector = list(self._sessions.values()), self._connector
        self._sessions, self._connector, self._loop = {}, None, None
        self._held.clear()
        for session in sessions:
            await session.close()
        if connector is not None:
            await connector.close()


def _abandon(held: list[aiohttp.TCPConnector]) -> None:
    while held:
        connector = held.pop()
        with contextlib.suppress(Exception):  # its loop may be closed already
            connector._close()  # the synchronous part of close(): no awaitable left behind


class SharedSessionWebClient(AsyncWebClient):
    """An AsyncWebClient whose `session` is the process's shared one, made when first asked for
    (Bolt copies `client.session` into its per-request client, inside the loop)."""

    def __init__(self, http: SlackHTTP, **kwargs: Any) -> None:
        self._http = http
        super().__init__(**kwargs)

    @property  # type: ignore[override]
    def session(self) -> aiohttp.ClientSession | None:
        try:
            return self._http.session(float(self.timeout))
        except RuntimeError:  # no running loop: slack_sdk then makes a session of its own
            return None

    @session.setter
    def session(self, value: aiohttp.ClientSession | None) -> None:
        pass  # AsyncWebClient.__init__ sets None; the shared session wins
