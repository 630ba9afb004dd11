"""TLS options and the TLS layer's buffered bytes, without a broker (a local TLS socket)."""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from amqp.transport import SSLTransport

from taskrpc import ConfigurationError
from taskrpc.settings import Settings
from taskrpc.transport import compat, tls

trustme = pytest.importorskip("trustme")

HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"  # a whole AMQP frame, 8 bytes


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls_pair(ca) -> Iterator[tuple[ssl.SSLSocket, ssl.SSLSocket]]:
    """A connected (client, server) pair of TLS sockets over a socket pair."""
    left, right = socket.socketpair()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server = server_context.wrap_socket(right, server_side=True, do_handshake_on_connect=False)
    handshake = threading.Thread(target=server.do_handshake)
    handshake.start()
    client = client_context.wrap_socket(left, server_hostname="localhost")
    handshake.join(5)
    yield client, server
    client.close()
    server.close()


def py_amqp_transport(sock: ssl.SSLSocket) -> SSLTransport:
    """py-amqp's TLS transport around an already connected socket, as after its connect."""
    transport = SSLTransport.__new__(SSLTransport)
    transport.sock = sock
    transport.connected = True
    transport.raise_on_initial_eintr = True
    transport._read_buffer = b""
    transport._quick_recv = sock.read
    return transport


def readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0.2)[0])


@pytest.mark.parametrize("read_ahead", [False, True])
def test_frames_waiting_in_the_tls_layer_count_as_pending(tls_pair, read_ahead):
    client, server = tls_pair
    transport = py_amqp_transport(client)
    if read_ahead:
        assert compat.install_read_ahead(transport)
    server.sendall(HEARTBEAT * 3)  # one TLS record, three frames
    assert readable(client)
    assert tuple(transport.read_frame()[:2]) == (8, 0)
    # The other two frames are decrypted (or read ahead) already: the socket has nothing
    # more, so a select alone would wait for ever.
    assert not readable(client)
    assert compat.buffered(transport)
    transport.read_frame()
    transport.read_frame()
    assert not compat.buffered(transport)


def test_read_ahead_leaves_unknown_transports_alone():
    assert not compat.install_read_ahead(object())
    assert not compat.buffered(object())


def test_options_check_the_host_name_of_each_url_unless_told_not_to():
    settings = Settings(broker_url="amqps://u:p@rabbit.internal:5671/shop")
    options = tls.ssl_options(settings)
    assert options is not None
    assert options["server_hostname"] == "rabbit.internal"
    assert options["cert_reqs"] == ssl.CERT_REQUIRED
    assert options["tls_minimum_version"] == ssl.TLSVersion.TLSv1_2
    other = tls.ssl_options(settings, "amqps://u:p@localhost:5671/shop")
    assert other is not None and other["server_hostname"] == "localhost"  # not 127.0.0.1
    unchecked = Settings(broker_url=settings.broker_url, broker_tls_verify_hostname=False)
    options = tls.ssl_options(unchecked)
    assert options is not None and "server_hostname" not in options  # kombu would add it


def test_plain_urls_have_no_tls_options_and_refuse_tls_settings(tmp_path):
    assert tls.ssl_options(Settings(broker_url="amqp://localhost//")) is None
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    with pytest.raises(ConfigurationError, match="broker_tls_ca set"):
        tls.ssl_options(Settings(broker_url="amqp://localhost//", broker_tls_ca=str(ca)))


def test_an_encrypted_key_is_refused_by_name(ca, tmp_path):
    from cryptography.hazmat.primitives import serialization

    cert = ca.issue_cert("client")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    (tmp_path / "cert.pem").write_bytes(cert.cert_chain_pems[0].bytes())
    (tmp_path / "key.pem").write_bytes(encrypted)
    settings = Settings(
        broker_url="amqps://localhost//",
        broker_tls_cert=str(tmp_path / "cert.pem"),
        broker_tls_key=str(tmp_path / "key.pem"),
    )
    with pytest.raises(ConfigurationError, match="encrypted"):
        tls.check(settings)


def test_a_plain_listener_does_not_speak_tls():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_like_rabbitmq() -> None:  # a protocol header, then hang up
        conn, _ = server.accept()
        conn.recv(1024)
        conn.sendall(b"AMQP\x00\x00\x09\x01")
        conn.close()

    thread = threading.Thread(target=answer_like_rabbitmq)
    thread.start()
    try:
        assert not tls.speaks_tls("127.0.0.1", port, timeout=2)
    finally:
        thread.join(5)
        server.close()


def test_a_listener_that_hangs_up_at_once_does_not_speak_tls_and_is_probed_once():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = 0
    done = threading.Event()

    def hang_up() -> None:
        nonlocal accepted
        server.settimeout(0.1)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted += 1
            conn.close()

    thread = threading.Thread(target=hang_up)
    thread.start()
    try:
        assert not tls.speaks_tls("127.0.0.1", port, timeout=2)
        assert not tls.speaks_tls("127.0.0.1", port, timeout=2)  # remembered
    finally:
        done.set()
        thread.join(5)
        server.close()
    assert accepted == 1
