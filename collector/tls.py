"""TLS on the collector's listeners: the OTLP/gRPC and OTLP/HTTP receivers and the admin server.

Configured as the OpenTelemetry Collector's server ``tls`` settings (``config/configtls``): ``cert_file`` and
``key_file`` (PEM), ``client_ca_file`` to require a client certificate signed by that CA (mutual TLS), and
``min_version``, ``"1.2"`` (the default) or ``"1.3"``. TLS 1.0 and 1.1 are refused (RFC 8996 deprecates
them). The gRPC receiver takes only ``"1.2"``: grpcio offers no minimum version for servers (grpc/grpc
issue 37305), and its core negotiates TLS 1.2 or 1.3.

The files are read and checked once, when the configuration is loaded, so a mistake is reported with the
file and line before anything listens; they are not read again while the collector runs (a new certificate
takes a restart, which loses nothing: acknowledged spans are in the write-ahead log).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc
    import uvicorn

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
        """``uvicorn.Config`` keyword arguments for this TLS; ``apply_min_version`` completes them."""
        options: dict[str, Any] = {"ssl_certfile": self.cert_file, "ssl_keyfile": self.key_file}
        if self.client_ca_file is not None:
            options.update(ssl_ca_certs=self.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
        return options

    def apply_min_version(self, config: uvicorn.Config) -> None:
        """uvicorn has no minimum version setting: its context is built by ``load()`` and set here."""
        if not config.loaded:
            config.load()
        assert config.ssl is not None
        config.ssl.minimum_version = MIN_VERSIONS[self.min_version]

    def grpc_credentials(self) -> grpc.ServerCredentials:
        import grpc

        with open(self.cert_file, "rb") as cert, open(self.key_file, "rb") as key:
            pair = (key.read(), cert.read())
        roots = None
        if self.client_ca_file is not None:
            with open(self.client_ca_file, "rb") as ca:
                roots = ca.read()
        return grpc.ssl_server_credentials([pair], root_certificates=roots, require_client_auth=self.mutual)

    def describe(self) -> str:
        return f"TLS {self.min_version}+" + (", client certificates required" if self.mutual else "")


def describe(endpoint: str | None, tls: ServerTLS | None) -> str:
    """An endpoint as the startup log and ``config check`` show it."""
    if endpoint is None:
        return "off"
    return f"{endpoint} ({tls.describe()})" if tls is not None else endpoint


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
