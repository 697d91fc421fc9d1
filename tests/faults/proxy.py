"""A TCP proxy between the app and PostgreSQL that cuts connections when a test says so.

The app is given the proxy's address instead of the server's. The proxy forwards bytes
both ways and, on demand, drops every open connection, refuses new ones for a while, or
"trips" on a marker in what the app sends (a statement's text, the COMMIT message): it cuts
that connection just before the marker reaches the server (the transaction rolls back) or
just after the server has answered it (the commit happened, the app never hears so). That
catches a request at an exact point of its transaction without sleeping in SQL.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import Enum

from sqlalchemy import make_url

# The simple-query message asyncpg sends to commit: 'Q', int32 length, "COMMIT;\0".
COMMIT_MESSAGE = b"Q\x00\x00\x00\x0cCOMMIT;\x00"
_CHUNK = 65536


class Cut(Enum):
    BEFORE = "before"  # the marker never reaches the server
    AFTER_REPLY = "after_reply"  # the server has processed it; its answer is swallowed


@dataclass
class _Trip:
    marker: bytes
    cut: Cut
    skip: int
    fired: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _Link:
    """One client connection and its server connection."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    # The trip whose marker went through: the server's next answer ends the connection.
    swallowing: "_Trip | None" = None

    def close(self) -> None:
        for writer in (self.client, self.server):
            # A transport closed by the other side may already be gone.
            with contextlib.suppress(Exception):
                writer.transport.abort()


@dataclass(frozen=True)
class Target:
    """Where the real server listens: a TCP address or a Unix socket (the embedded server)."""

    host: str
    port: int

    @classmethod
    def of(cls, database_url: str) -> "Target":
        url = make_url(database_url)
        host = url.host or str(url.query.get("host") or "127.0.0.1")
        return cls(host=host, port=url.port or 5432)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self.host}/.s.PGSQL.{self.port}")
        return await asyncio.open_connection(self.host, self.port)


class FaultyProxy:
    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._target = Target.of(database_url)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refusing = False
        self._stalling = False
        self._stalled: list[asyncio.StreamWriter] = []
        self._trip: _Trip | None = None
        self.port = 0
        self.connections_made = 0

    @property
    def url(self) -> str:
        """The database URL the app should use: the same database, through the proxy."""
        url = make_url(self._database_url)
        query = {k: v for k, v in url.query.items() if k != "host"}
        proxied = url.set(host="127.0.0.1", port=self.port, query=query)
        return proxied.render_as_string(hide_password=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.drop_all()
        self.stall(False)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def drop_all(self) -> int:
        """Cut every open connection now, as a network failure would; how many were open."""
        links = list(self._links)
        for link in links:
            link.close()
        self._links.clear()
        return len(links)

    def refuse(self, refusing: bool) -> None:
        """While refusing, a new connection is closed as soon as it is accepted."""
        self._refusing = refusing

    def stall(self, stalling: bool) -> None:
        """While stalling, a new connection is accepted and never answered (a server that
        a network cut has made silent); stopping the stall closes those held."""
        self._stalling = stalling
        if not stalling:
            for writer in self._stalled:
                writer.transport.abort()
            self._stalled.clear()

    def trip(self, marker: bytes, *, cut: Cut = Cut.BEFORE, skip: int = 0) -> asyncio.Event:
        """Cut the connection that sends `marker` (its `skip`+1-th occurrence); the event is
        set once it has been cut."""
        self._trip = _Trip(marker=marker, cut=cut, skip=skip)
        return self._trip.fired

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        if self._stalling:
            self._stalled.append(writer)
            return
        try:
            server_reader, server_writer = await self._target.connect()
        except OSError:
            writer.transport.abort()
            return
        self.connections_made += 1
        link = _Link(client=writer, server=server_writer)
        self._links.add(link)
        for pump in (self._upstream(reader, link), self._downstream(server_reader, link)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _upstream(self, reader: asyncio.StreamReader, link: _Link) -> None:
        """App to server, watching for the trip's marker."""
        with contextlib.suppress(OSError):
            while chunk := await reader.read(_CHUNK):
                trip = self._trip
                if trip is not None and trip.marker in chunk:
                    if trip.skip > 0:
                        trip.skip -= 1
                    else:
                        self._trip = None
                        if trip.cut is Cut.BEFORE:
                            self._cut(link, trip)
                            return
                        link.swallowing = trip
                        link.server.write(chunk)
                        await link.server.drain()
                        continue
                link.server.write(chunk)
                await link.server.drain()
        self._forget(link)

    async def _downstream(self, reader: asyncio.StreamReader, link: _Link) -> None:
        """Server to app; a reply the trip swallows ends the connection instead."""
        with contextlib.suppress(OSError):
            while chunk := await reader.read(_CHUNK):
                if link.swallowing is not None:
                    self._cut(link, link.swallowing)
                    return
                link.client.write(chunk)
                await link.client.drain()
        self._forget(link)

    def _cut(self, link: _Link, trip: _Trip) -> None:
        self._forget(link)
        trip.fired.set()

    def _forget(self, link: _Link) -> None:
        link.close()
        self._links.discard(link)


@contextlib.asynccontextmanager
async def faulty_proxy(database_url: str) -> AsyncIterator[FaultyProxy]:
    proxy = FaultyProxy(database_url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
