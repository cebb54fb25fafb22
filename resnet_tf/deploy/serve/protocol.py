"""uvicorn's h11 HTTP/1.1 protocol with a deadline for a request's headers.

uvicorn closes a keep-alive connection that stays idle, but has no timeout for a client that
sends a request's headers slowly, or never finishes them (its issue 157): such a client would
hold a connection, and a worker's slot under --max-connections, for ever. Here each connection
must deliver the headers of each request within `request_timeout_s` of connecting or of its
previous answer, or it is closed. The body's own deadline is the application's (app.py), which
can still answer 408. h11 parses everything; this class only starts and stops a timer.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineProtocol(H11Protocol):
    """H11Protocol closing a connection whose next request's headers are not complete in time.

    The timer runs from the connection's start, and from each answer, until uvicorn begins a
    new request cycle (its headers parsed): a body left unread after an early answer, or a
    request line trickling in, cannot hold the connection open."""

    request_timeout_s = 10.0  # set per server by `with_timeout`

    @classmethod
    def with_timeout(cls, seconds: float) -> type[HeaderDeadlineProtocol]:
        return type(cls.__name__, (cls,), {"request_timeout_s": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.header_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self.start_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self.deadline_cycle:  # a new request's headers are in
            self.stop_header_deadline()

    def on_response_complete(self) -> None:
        answered = self.cycle
        super().on_response_complete()  # may begin a pipelined request at once
        if not self.transport.is_closing() and self.cycle is answered:
            self.start_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_header_deadline()
        super().connection_lost(exc)

    def start_header_deadline(self) -> None:
        self.stop_header_deadline()
        self.deadline_cycle = self.cycle
        self.header_deadline = self.loop.call_later(self.request_timeout_s, self.headers_too_slow)

    def stop_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def headers_too_slow(self) -> None:
        self.header_deadline = None
        if not self.transport.is_closing():
            self.logger.info(
                "closed a connection: no complete request headers within %s s",
                self.request_timeout_s,
            )
            self.transport.close()
