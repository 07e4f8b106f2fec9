"""A TCP proxy a test can cut: the way to make Postgres, S3 or a gateway unreachable for one
process, or to break a client's connection at a chosen byte, without stopping the server
every other test shares."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``. :meth:`cut` drops every connection and
    refuses new ones until :meth:`restore`; :meth:`drop_after` drops the connections once
    clients have sent a given number of bytes. ``sent`` counts every byte clients sent
    through it."""

    def __init__(self, host: str, port: int) -> None:
        # May be changed while running: new connections go to the new target.
        self.target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.up = True
        self.port = 0
        self.sent = 0
        self._drop_at: int | None = None
        self.dropped = asyncio.Event()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.up = False
        self.drop()

    def restore(self) -> None:
        self.up = True

    def drop(self) -> None:
        """Aborts every open connection; new ones are still taken while the proxy is up."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def drop_after(self, sent: int) -> asyncio.Event:
        """Drops every connection as soon as clients have sent ``sent`` bytes in all;
        returns the event that is set when it happens."""
        self._drop_at = sent
        self.dropped.clear()
        return self.dropped

    async def _serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        if not self.up:
            client.transport.abort()
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self.target)
        except OSError:
            client.transport.abort()
            return
        self._writers |= {client, upstream}
        await asyncio.gather(
            self._pipe(client_reader, upstream, from_client=True),
            self._pipe(upstream_reader, client, from_client=False),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_client: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if from_client:
                    self._count(len(data))
                    if writer.transport.is_closing():
                        break
                writer.write(data)
                await writer.drain()
        self._writers.discard(writer)
        writer.transport.abort()

    def _count(self, size: int) -> None:
        self.sent += size
        if self._drop_at is not None and self.sent >= self._drop_at:
            self._drop_at = None
            self.drop()
            self.dropped.set()
