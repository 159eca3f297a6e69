"""Test plumbing: TCP ports inside a network namespace whose connections are passed on to something of this host (a
unix socket, a TCP port on 127.0.0.1), optionally behind TLS that wants a client certificate. Root only.

A network namespace belongs to a thread, and a socket keeps the namespace it was made in: a short-lived thread enters
the namespace and makes the listening socket there; the relay itself runs in this host's namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

CLONE_NEWNET = 0x40000000
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _in_new_thread(work: Callable[[], Any]) -> Any:
    """work() in a thread of its own (whose namespaces may change), its result or its exception here."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _libc_call(name: str, *args: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def listen_in(netns: str, port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:port inside the network namespace at the path netns."""

    def make() -> socket.socket:
        with open(netns) as ns:
            _libc_call("setns", ns.fileno(), CLONE_NEWNET)
        return socket.create_server(("127.0.0.1", port))

    return _in_new_thread(make)


@contextmanager
def private_netns() -> Iterator[str]:
    """A new network namespace with only lo (up): nothing outside it reaches its ports. Yields a path for
    `nsenter --net=PATH` and listen_in; the namespace goes when nothing holds it any more."""

    def make() -> int:
        _libc_call("unshare", CLONE_NEWNET)
        return os.open("/proc/thread-self/ns/net", os.O_RDONLY)

    fd = _in_new_thread(make)
    path = f"/proc/{os.getpid()}/fd/{fd}"
    try:
        subprocess.run(["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"], check=True)
        yield path
    finally:
        os.close(fd)


class Relay:
    """Every connection to `listener` passed on, both ways, to the streams `upstream()` opens (asyncio's
    open_connection or open_unix_connection). With `tls` the listener speaks TLS; `clients` collects the common names
    of the client certificates it was shown."""

    def __init__(
        self,
        listener: socket.socket,
        upstream: Callable[[], Awaitable[Streams]],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.clients: list[str] = []
        self._listener, self._upstream, self._tls = listener, upstream, tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        serving = asyncio.start_server(self._serve, sock=self._listener, ssl=self._tls)
        self._server = asyncio.run_coroutine_threadsafe(serving, self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _stop(self) -> None:
        self._server.close()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        certificate = writer.get_extra_info("peercert")
        if certificate:
            self.clients += [
                value for rdn in certificate["subject"] for key, value in rdn if key == "commonName"
            ]
        try:
            up_reader, up_writer = await self._upstream()
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (ConnectionError, ssl.SSLError):
        writer.close()


@contextmanager
def host_port_in(netns: str | None, port: int) -> Iterator[None]:
    """This host's 127.0.0.1:port at 127.0.0.1:port inside netns too (None: a process in this host's namespace
    sees it already)."""
    if netns is None:
        yield
        return
    with Relay(listen_in(netns, port), lambda: asyncio.open_connection("127.0.0.1", port)):
        yield
