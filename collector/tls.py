"""TLS on the collector's listeners: the OTLP/gRPC and OTLP/HTTP receivers and the admin server.

Configured as the OpenTelemetry Collector's server ``tls`` settings (``config/configtls``): ``cert_file`` and
``key_file`` (PEM), ``client_ca_file`` to require a client certificate signed by that CA (mutual TLS), and
``min_version``, ``"1.2"`` (the default) or ``"1.3"``. TLS 1.0 and 1.1 are refused (RFC 8996 deprecates
them). The gRPC receiver takes only ``"1.2"``: grpcio offers no minimum version for servers (grpc/grpc
issue 37305), and its core negotiates TLS 1.2 or 1.3.

The files are read and checked when the configuration is loaded, so a mistake is reported with the file and
line before anything listens. With ``reload_interval`` (a duration, as in the OpenTelemetry Collector) they
are read again on the first handshake after each interval: a renewed certificate, key or client CA is used
for new connections without a restart. Files that do not make a valid server context (a certificate written
before its key) are logged and the previous ones kept until the next interval. Without it, a new
certificate takes a restart, which loses nothing: acknowledged spans are in the write-ahead log.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc
    import uvicorn

log = logging.getLogger("costspan.tls")

MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
DEFAULT_MIN_VERSION = "1.2"


class TLSFileError(ValueError):
    """A TLS file that cannot be used; ``key`` is the setting that names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class ServerTLS:
    """A listener's TLS: its certificate chain and key, and the CA its clients' certificates must chain to
    (``None``: no client certificate is asked for)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    min_version: str = DEFAULT_MIN_VERSION
    reload_interval_s: float | None = None  # None: the files are read once

    @property
    def mutual(self) -> bool:
        return self.client_ca_file is not None

    def check(self) -> None:
        """Read every file and build the server context once; TLSFileError names the setting at fault."""
        cert = _read(self.cert_file, "cert_file")
        if b"-----BEGIN CERTIFICATE-----" not in cert:
            raise TLSFileError("cert_file", f"{self.cert_file}: no PEM certificate in it")
        key = _read(self.key_file, "key_file")
        if b"PRIVATE KEY-----" not in key:
            raise TLSFileError("key_file", f"{self.key_file}: no PEM private key in it")
        if b"ENCRYPTED PRIVATE KEY" in key or b"Proc-Type: 4,ENCRYPTED" in key:
            raise TLSFileError("key_file", f"{self.key_file}: the key is encrypted; give it unencrypted")
        if self.client_ca_file is not None:
            _read(self.client_ca_file, "client_ca_file")
        self.ssl_context()

    def ssl_context(self) -> ssl.SSLContext:
        """The server context the HTTP listeners use (uvicorn builds the same from ``uvicorn_options``)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = MIN_VERSIONS[self.min_version]
        try:
            # a password callback that refuses: without one OpenSSL would ask on the terminal
            context.load_cert_chain(self.cert_file, self.key_file, password=_no_password)
        except (ssl.SSLError, _EncryptedKey) as exc:
            raise TLSFileError(
                "key_file",
                f"{self.key_file}: not the private key of {self.cert_file}, or not valid PEM ({exc})",
            ) from None
        if self.client_ca_file is not None:
            try:
                context.load_verify_locations(cafile=self.client_ca_file)
            except ssl.SSLError as exc:
                raise TLSFileError(
                    "client_ca_file", f"{self.client_ca_file}: no PEM CA certificate in it ({exc})"
                ) from None
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def uvicorn_options(self) -> dict[str, Any]:
        """``uvicorn.Config`` keyword arguments for this TLS; ``complete`` does the rest."""
        options: dict[str, Any] = {"ssl_certfile": self.cert_file, "ssl_keyfile": self.key_file}
        if self.client_ca_file is not None:
            options.update(ssl_ca_certs=self.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
        return options

    def complete(self, config: uvicorn.Config) -> None:
        """What uvicorn has no setting for, on the context its ``load()`` builds: the minimum version, and
        the reload (each handshake is handed the newest context from the server name callback, which runs
        whether or not the client names a server)."""
        if not config.loaded:
            config.load()
        context = config.ssl
        assert context is not None
        context.minimum_version = MIN_VERSIONS[self.min_version]
        if self.reload_interval_s is None:
            return
        alpn = getattr(config.http_protocol_class, "alpn_protocols", None)
        reloader = _Reloader(self.reload_interval_s, context, lambda: self._http_context(alpn))

        def newest(connection: ssl.SSLObject, _name: str | None, _context: ssl.SSLContext) -> None:
            connection.context = reloader.current()

        context.sni_callback = newest

    def _http_context(self, alpn: list[str] | None) -> ssl.SSLContext:
        context = self.ssl_context()
        if alpn:
            context.set_alpn_protocols(alpn)
        return context

    def grpc_credentials(self) -> grpc.ServerCredentials:
        import grpc

        if self.reload_interval_s is None:
            return grpc.ssl_server_credentials(
                [self._grpc_pair()], root_certificates=self._grpc_roots(), require_client_auth=self.mutual
            )
        reloader = _Reloader(self.reload_interval_s, self._grpc_configuration(), self._grpc_configuration)
        return grpc.dynamic_ssl_server_credentials(
            reloader.current(), reloader.changed, require_client_authentication=self.mutual
        )

    def _grpc_configuration(self) -> grpc.ServerCertificateConfiguration:
        import grpc

        pair, roots = self._grpc_pair(), self._grpc_roots()
        self.ssl_context()  # the same checks as at start: a key that does not match is not taken
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=roots)

    def _grpc_pair(self) -> tuple[bytes, bytes]:
        return _read(self.key_file, "key_file"), _read(self.cert_file, "cert_file")

    def _grpc_roots(self) -> bytes | None:
        return _read(self.client_ca_file, "client_ca_file") if self.client_ca_file is not None else None

    def describe(self) -> str:
        reload = f", reloaded every {self.reload_interval_s:g}s" if self.reload_interval_s is not None else ""
        return f"TLS {self.min_version}+" + (", client certificates required" if self.mutual else "") + reload


def describe(endpoint: str | None, tls: ServerTLS | None) -> str:
    """An endpoint as the startup log and ``config check`` show it."""
    if endpoint is None:
        return "off"
    return f"{endpoint} ({tls.describe()})" if tls is not None else endpoint


@dataclass
class _Reloader:
    """The newest server context or gRPC certificate configuration, made again from the files at most once
    an interval, when a handshake asks. A failure keeps the previous one, logged."""

    interval_s: float
    newest: Any
    make: Callable[[], Any]  # a new context or configuration; raises TLSFileError or OSError
    due: float = field(default=0.0)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fresh: bool = False  # a configuration made since gRPC last asked

    def __post_init__(self) -> None:
        self.due = time.monotonic() + self.interval_s

    def current(self) -> Any:
        self._reload_if_due()
        return self.newest

    def changed(self) -> Any:
        """gRPC's fetcher: a new certificate configuration, or None for no change."""
        self._reload_if_due()
        with self.lock:
            fresh, self.fresh = self.fresh, False
        return self.newest if fresh else None

    def _reload_if_due(self) -> None:
        with self.lock:
            if time.monotonic() < self.due:
                return
            self.due = time.monotonic() + self.interval_s
            try:
                self.newest = self.make()
                self.fresh = True
            except (TLSFileError, OSError) as exc:
                log.warning("TLS files not reloaded, the previous ones stay in use: %s", exc)


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    raise _EncryptedKey("the key is encrypted")


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise TLSFileError(key, f"cannot read {path}: {exc.strerror or exc}") from None
