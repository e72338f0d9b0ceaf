"""A TCP proxy of the tests' own, between a worker and the broker, that can cut the line."""

from __future__ import annotations

import asyncio
import threading


class TcpProxy:
    """Forwards 127.0.0.1:`port` → 127.0.0.1:`target`; `drop()` aborts every connection and
    refuses new ones (nothing listens) until `restore()`."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.AbstractServer | None = None
        self.transports: set[asyncio.Transport] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, up_writer.transport}
        self.transports |= pair
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.transports -= pair

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)

    async def _drop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for transport in list(self.transports):
            transport.abort()
        self.transports.clear()

    def start(self) -> TcpProxy:
        self._call(self._start())
        return self

    def drop(self) -> None:
        self._call(self._drop())

    def restore(self) -> None:
        self._call(self._start())

    async def _finish(self) -> None:
        await self._drop()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        self._call(self._finish())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
