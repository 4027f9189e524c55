"""A local OTLP/HTTP traces endpoint on 127.0.0.1 that can be told to fail, for forward-exporter tests.

``OTLPSink().start()`` listens on a free port (or a given one); while ``answer`` is an HTTP status other
than 200 it refuses every request with it (503 with ``Retry-After: 0``), counting the refusals; once it is
200 it decodes each request (gzip or not) and keeps its spans.
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from costspan.collector.otlp import attributes_of


class OTLPSink:
    def __init__(self, port: int = 0) -> None:
        self.answer = 200
        self.refused = 0
        self.spans: dict[str, dict[str, Any]] = {}  # span id (hex) -> attributes
        self.requests = 0
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with sink._lock:
                    answer = sink.answer
                    if answer != 200:
                        sink.refused += 1
                if answer != 200:
                    self.send_response(answer)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                with sink._lock:
                    sink.requests += 1
                    sink.headers.append(dict(self.headers))
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            for span in ss.spans:
                                sink.spans[span.span_id.hex()] = attributes_of(span.attributes)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OTLPSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
