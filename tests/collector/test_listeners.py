"""The collector's listening sockets: a port in use, or an address not of this machine, is one line naming
it; a port whose old connections linger in TIME_WAIT is bound again."""

from __future__ import annotations

import socket

import pytest

from costspan.collector.listeners import ListenError, bind, check_free, split_address


def test_addresses_are_split_as_the_flags_take_them():
    assert split_address("127.0.0.1:4317") == ("127.0.0.1", 4317)
    assert split_address(":4318") == ("127.0.0.1", 4318)
    assert split_address("[::1]:9464") == ("::1", 9464)


def test_a_port_in_use_is_named_with_what_listens_there():
    first = bind("127.0.0.1:0", "admin")
    port = first.getsockname()[1]
    try:
        with pytest.raises(ListenError) as err:
            bind(f"127.0.0.1:{port}", "OTLP/HTTP")
        assert str(err.value) == f"127.0.0.1:{port} (OTLP/HTTP) is in use by another process"
        with pytest.raises(ListenError):
            check_free(f"127.0.0.1:{port}", "OTLP/gRPC")
    finally:
        first.close()
    check_free(f"127.0.0.1:{port}", "OTLP/gRPC")  # free again once it is closed


def test_an_address_of_another_machine_is_named():
    with pytest.raises(ListenError) as err:
        bind("192.0.2.1:4317", "OTLP/gRPC")  # TEST-NET-1 (RFC 5737): never this machine's
    assert str(err.value) == "192.0.2.1:4317 (OTLP/gRPC): not an address of this machine"


def test_a_port_with_a_connection_in_time_wait_is_bound_again():
    listener = bind("127.0.0.1:0", "admin")
    port = listener.getsockname()[1]
    listener.setblocking(True)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server closes first: the TIME_WAIT is on the listening port's side
    client.close()
    listener.close()
    again = bind(f"127.0.0.1:{port}", "admin")
    again.close()
