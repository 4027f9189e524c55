"""The provider stand-in over HTTP/2 in clear text, for clients that speak it with prior knowledge (httpx and
httpx2 with ``http1=False, http2=True``).

The replies are the HTTP/1.1 server's (:class:`ProviderServer`'s provider makes them and keeps the record of
requests); only the framing differs. Each server-sent event goes out in a DATA frame of its own, so a client
reads a stream event by event, as it does from a provider. The HTTP/2 protocol itself is the ``h2``
library's (the one httpx's HTTP/2 support uses); this module only moves bytes between it and a socket.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import h2.config
import h2.connection
import h2.events

from costspan.collector.demo.provider import HOST, ProviderServer, RecordedRequest


class H2ProviderServer:
    """On 127.0.0.1, an ephemeral port, one thread per connection."""

    def __init__(self) -> None:
        self.state = ProviderServer()  # not started: its provider answers, its list records
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.05)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="h2-provider-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    def __enter__(self) -> H2ProviderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        h2conn = h2.connection.H2Connection(config=config)
        h2conn.initiate_connection()
        conn.sendall(h2conn.data_to_send())
        headers: dict[int, dict[str, str]] = {}
        bodies: dict[int, bytearray] = {}
        with conn:
            while not self._stopped.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                for event in h2conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers[event.stream_id] = {str(k): str(v) for k, v in event.headers}
                        bodies[event.stream_id] = bytearray()
                    elif isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] += event.data
                        h2conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        request = headers.pop(event.stream_id)
                        body = bytes(bodies.pop(event.stream_id))
                        self._respond(conn, h2conn, event.stream_id, request, body)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        conn.sendall(h2conn.data_to_send())
                        return
                conn.sendall(h2conn.data_to_send())

    def _respond(
        self,
        conn: socket.socket,
        h2conn: h2.connection.H2Connection,
        stream_id: int,
        request: dict[str, str],
        raw: bytes,
    ) -> None:
        path = request[":path"].split("?", 1)[0]
        recorded = {k: v for k, v in request.items() if not k.startswith(":") and k != "authorization"}
        try:
            body: Any = json.loads(raw) if raw else None
            reply = self.state.provider.handle(path, body)
        except Exception as error:  # the provider's request errors carry their status
            status = getattr(error, "status", 400)
            self.state.record(RecordedRequest("POST", path, recorded, None, status))
            self._send(
                conn, h2conn, stream_id, status, "application/json", [json.dumps({"error": str(error)})]
            )
            return
        usage_sent = reply.usage is not None and reply.usage_sent
        record = RecordedRequest(
            "POST", path, recorded, body, reply.status, reply.model, reply.usage, usage_sent
        )
        self.state.record(record)
        if reply.events is None:
            self._send(conn, h2conn, stream_id, reply.status, "application/json", [json.dumps(reply.body)])
        else:
            events = [
                (f"event: {name}\n" if name else "") + f"data: {data}\n\n" for name, data in reply.events
            ]
            self._send(conn, h2conn, stream_id, 200, "text/event-stream; charset=utf-8", events)

    def _send(
        self,
        conn: socket.socket,
        h2conn: h2.connection.H2Connection,
        stream_id: int,
        status: int,
        content_type: str,
        parts: list[str],
    ) -> None:
        h2conn.send_headers(stream_id, [(":status", str(status)), ("content-type", content_type)])
        for part in parts:
            data = part.encode()
            # the replies are small: well inside the client's flow-control window and frame size
            if len(data) > min(h2conn.local_flow_control_window(stream_id), h2conn.max_outbound_frame_size):
                raise RuntimeError("a reply part larger than one frame")
            h2conn.send_data(stream_id, data)
            conn.sendall(h2conn.data_to_send())
        h2conn.end_stream(stream_id)
        conn.sendall(h2conn.data_to_send())
