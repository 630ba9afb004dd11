"""The fault-injecting proxy, against a local echo server (no broker)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from taskrpc.testing.proxy import Direction, Fault, FaultProxy


class EchoServer:
    """Echo every byte back; remember what arrived, per connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytearray] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            buffer = bytearray()
            self.received.append(buffer)
            threading.Thread(target=self._echo, args=(conn, buffer), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket, buffer: bytearray) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buffer.extend(data)
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", echo.port)) as running:
        yield running


def connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    wait_until(lambda: len(proxy.links) >= 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_bytes_pass_both_ways_untouched_by_default(proxy):
    with connect(proxy) as sock:
        payload = bytes(range(256)) * 200
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        link = proxy.links[0]
        wait_until(lambda: link.down.bytes == len(payload))
        assert link.up.bytes == len(payload)


def test_a_delay_holds_every_chunk_back_and_keeps_the_order(proxy):
    proxy.set(Fault(delay=0.2))
    with connect(proxy) as sock:
        started = time.monotonic()
        for part in (b"one,", b"two,", b"three"):
            sock.sendall(part)
        assert recv_exactly(sock, 13) == b"one,two,three"
        assert time.monotonic() - started >= 0.4  # up and down: 0.2 s each


def test_a_blackhole_holds_bytes_until_it_lifts(proxy, echo):
    with connect(proxy) as sock:
        proxy.set(Fault(blackhole=Direction.BOTH))
        sock.sendall(b"ping")
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(4)
        assert bytes(echo.received[0]) == b""  # nothing reached the server either
        proxy.set(Fault())
        sock.settimeout(5)
        assert recv_exactly(sock, 4) == b"ping"  # held, not lost


def test_a_one_way_blackhole_lets_the_other_way_through(proxy, echo):
    with connect(proxy) as sock:
        proxy.set(Fault(blackhole=Direction.DOWN))
        sock.sendall(b"ping")
        wait_until(lambda: bytes(echo.received[0]) == b"ping")  # up: passes
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(4)  # down: the echo is held

        proxy.set(Fault(blackhole=Direction.UP))
        assert recv_exactly(sock, 4) == b"ping"  # down reopened
        sock.sendall(b"pong")
        time.sleep(0.2)
        assert bytes(echo.received[0]) == b"ping"  # up: held


def test_a_fault_on_one_link_leaves_the_others_alone(proxy):
    with connect(proxy) as first, socket.create_connection(("127.0.0.1", proxy.port), 5) as second:
        wait_until(lambda: len(proxy.links) == 2)
        proxy.links[0].set(Fault(blackhole=Direction.BOTH))
        first.sendall(b"a")
        second.sendall(b"b")
        assert recv_exactly(second, 1) == b"b"
        first.settimeout(0.3)
        with pytest.raises(socket.timeout):
            first.recv(1)
        proxy.set(Fault())  # the proxy-wide fault overrides the link's own
        assert recv_exactly(first, 1) == b"a"


def test_a_reset_sends_a_tcp_rst_to_both_ends(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            for _ in range(50):  # the RST may take a moment to arrive
                sock.sendall(b"y")
                if not sock.recv(1):
                    raise AssertionError("closed with a FIN, not reset")
                time.sleep(0.02)
    assert proxy.links == []


def test_refusing_stops_new_connections_until_accepting_again(proxy):
    with connect(proxy) as open_link:
        proxy.refuse()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        open_link.sendall(b"still")
        assert recv_exactly(open_link, 5) == b"still"  # open links carry on
    proxy.accept()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"again")
        assert recv_exactly(sock, 5) == b"again"


def test_a_cut_forwards_exactly_n_bytes_then_resets(proxy, echo):
    with connect(proxy) as sock:
        proxy.set(Fault(cut_after=7))
        sock.sendall(b"0123456789")
        wait_until(lambda: not proxy.links)
        time.sleep(0.1)
        assert bytes(echo.received[0]) == b"0123456"
        sock.settimeout(5)
        with pytest.raises(ConnectionResetError):
            sock.recv(10)


def test_a_cut_counts_afresh_on_every_new_link(proxy, echo):
    proxy.set(Fault(cut_after=3))
    for attempt in range(2):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(b"abcdef")
            wait_until(lambda n=attempt: len(echo.received) > n and len(echo.received[n]) >= 3)
            with pytest.raises(ConnectionResetError):
                sock.settimeout(5)
                while sock.recv(10):  # "abc" may come back before the reset
                    pass
    assert [bytes(data) for data in echo.received] == [b"abc", b"abc"]


def test_slicing_forwards_byte_by_byte_and_intact(proxy):
    with connect(proxy) as sock:
        proxy.set(Fault(write_size=1))
        payload = bytes(range(256)) * 4
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        link = proxy.links[0]
        wait_until(lambda: link.down.writes == len(payload))  # counted after each write
        assert link.up.writes == len(payload)


def test_the_url_points_at_the_proxy_and_keeps_the_rest(proxy):
    url = proxy.url("amqp://user:pw@broker.example:5672/vhost?heartbeat=2")
    assert url == f"amqp://user:pw@127.0.0.1:{proxy.port}/vhost?heartbeat=2"


def test_faults_refuse_negative_values():
    with pytest.raises(ValueError):
        Fault(delay=-1)


def test_the_proxy_runs_on_the_current_event_loop_too(echo):
    async def scenario() -> bytes:
        async with FaultProxy(("127.0.0.1", echo.port)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            proxy.set(Fault(write_size=2))
            await asyncio.sleep(0.05)
            writer.write(b"hello")
            data = await asyncio.wait_for(reader.readexactly(5), 5)
            writer.close()
            return data

    assert asyncio.run(scenario()) == b"hello"
