"""TLS to a RabbitMQ node of the tests' own, with a CA and certificates made in the test.

The node ``taskrpc-tls`` listens for plain AMQP on 5681 and for TLS on 5682. Its
certificate names ``localhost`` only, so ``amqps://...@localhost:5682`` verifies and
``amqps://...@127.0.0.1:5682`` is a wrong host name. A user with a password of its own
shows that no error message leaks it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from taskrpc import App, BrokerError, ConfigurationError, RetryPolicy
from taskrpc.settings import Settings
from taskrpc.testing.rabbitnode import RabbitNode
from taskrpc.transport import connect
from tests.netsupport import Worker, require_rabbitmq

trustme = pytest.importorskip("trustme")

pytestmark = pytest.mark.broker

AMQP_PORT, TLS_PORT = 5681, 5682
USER, PASSWORD = "tlsuser", "tls-Secret-4821"
CONNECT_TIMEOUT = 3.0


@dataclass
class TlsNode:
    node: RabbitNode
    ca: Path
    other_ca: Path
    client_cert: Path  # signed by the node's CA; key included
    stranger_cert: Path  # signed by another CA; key included
    dir: Path

    def url(self, host: str = "localhost", port: int = TLS_PORT, scheme: str = "amqps") -> str:
        return f"{scheme}://{USER}:{PASSWORD}@{host}:{port}//"

    @property
    def plain_url(self) -> str:
        return self.url("127.0.0.1", AMQP_PORT, "amqp")


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNode]:
    require_rabbitmq()
    base = tmp_path_factory.mktemp("tls")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost")
    paths = {name: base / f"{name}.pem" for name in ("ca", "other", "server", "key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    other.cert_pem.write_to_path(str(paths["other"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    client_cert, stranger_cert = base / "client.pem", base / "stranger.pem"
    ca.issue_cert("taskrpc-client").private_key_and_cert_chain_pem.write_to_path(str(client_cert))
    other.issue_cert("stranger").private_key_and_cert_chain_pem.write_to_path(str(stranger_cert))
    node = RabbitNode(
        "taskrpc-tls",
        amqp_port=AMQP_PORT,
        base_dir=base / "node",
        extra_config=(
            f"listeners.ssl.default = 127.0.0.1:{TLS_PORT}\n"
            f"ssl_options.cacertfile = {paths['ca']}\n"
            f"ssl_options.certfile = {paths['server']}\n"
            f"ssl_options.keyfile = {paths['key']}\n"
            "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
        ),
    )
    try:
        node.start(timeout=120)
        node.ctl("add_user", USER, PASSWORD)
        node.ctl("set_permissions", USER, ".*", ".*", ".*")
        yield TlsNode(node, paths["ca"], paths["other"], client_cert, stranger_cert, base)
    finally:
        node.remove()


def tls_app(url: str, queue: str, **options) -> App:
    return App(
        "tls",
        broker_url=url,
        default_queue=queue,
        connect_timeout=CONNECT_TIMEOUT,
        connect_retry=RetryPolicy(max_retries=0),
        **options,
    )


def failed_connect(url: str, **options) -> tuple[str, float]:
    """Connect once as the client and the worker do; return the error and the time it took."""
    settings = Settings(broker_url=url, connect_timeout=CONNECT_TIMEOUT, **options)
    started = time.monotonic()
    with pytest.raises(BrokerError) as caught:
        connect(settings).close()
    return str(caught.value), time.monotonic() - started


def test_calls_over_tls_reach_a_worker_process_and_come_back(tls_node, unique_queue, tmp_path):
    worker = Worker(
        {
            "TASKRPC_BROKER_URL": tls_node.url(),
            "TASKRPC_BROKER_TLS_CA": str(tls_node.ca),
            "TASKRPC_DEFAULT_QUEUE": unique_queue,
        },
        tmp_path / "worker.log",
    )
    app = tls_app(tls_node.url(), unique_queue, broker_tls_ca=str(tls_node.ca))
    try:
        worker.wait_consuming(tls_node.plain_url, unique_queue)
        results = [app.send_task("add", [i, 1000], timeout=10) for i in range(200)]
        assert [r.get() for r in results] == [i + 1000 for i in range(200)]
        assert app.send_task("move", [{"x": 1, "y": 2}], {"dx": 3}).get(timeout=10) == {
            "x": 4,
            "y": 2,
        }
        connections = tls_node.node.ctl("list_connections", "user", "ssl", "ssl_protocol")
        assert f"{USER}\ttrue\t" in connections  # both ends really speak TLS
        assert f"{USER}\tfalse" not in connections
    finally:
        app.close()
        worker.stop()
    assert PASSWORD not in worker.output()


def test_a_client_certificate_signed_by_the_brokers_ca_is_accepted(tls_node, unique_queue):
    options = {"broker_tls_ca": str(tls_node.ca), "broker_tls_cert": str(tls_node.client_cert)}
    settings = Settings(broker_url=tls_node.url(), connect_timeout=CONNECT_TIMEOUT, **options)
    connection = connect(settings)
    try:
        assert connection.sock.getpeercert()["subject"]  # verified server cert
    finally:
        connection.close()


def test_a_wrong_ca_fails_within_the_connect_timeout_and_says_so(tls_node):
    message, took = failed_connect(tls_node.url(), broker_tls_ca=str(tls_node.other_ca))
    assert "certificate is not trusted" in message and str(tls_node.other_ca) in message
    assert PASSWORD not in message
    assert took < CONNECT_TIMEOUT + 2


def test_no_ca_means_the_systems_cas_which_do_not_trust_a_private_one(tls_node):
    message, _ = failed_connect(tls_node.url())
    assert "not trusted" in message and "set broker_tls_ca" in message
    assert PASSWORD not in message


def test_a_host_name_the_certificate_does_not_list_fails_and_says_so(tls_node):
    url = tls_node.url(host="127.0.0.1")  # the certificate names "localhost" only
    message, took = failed_connect(url, broker_tls_ca=str(tls_node.ca))
    assert "not valid for the host '127.0.0.1'" in message
    assert "broker_tls_verify_hostname" in message and PASSWORD not in message
    assert took < CONNECT_TIMEOUT + 2
    # Turning the host check off still verifies the certificate itself.
    settings = Settings(
        broker_url=url, broker_tls_ca=str(tls_node.ca), broker_tls_verify_hostname=False
    )
    connect(settings).close()
    message, _ = failed_connect(
        url, broker_tls_ca=str(tls_node.other_ca), broker_tls_verify_hostname=False
    )
    assert "not trusted" in message


def test_plaintext_to_the_tls_port_fails_and_says_use_amqps(tls_node):
    message, took = failed_connect(tls_node.url("127.0.0.1", TLS_PORT, "amqp"))
    assert "expects TLS" in message and "amqps://" in message
    assert PASSWORD not in message
    assert took < CONNECT_TIMEOUT + 2


def test_tls_to_the_plain_port_fails_and_says_it_is_no_tls_port(tls_node):
    message, took = failed_connect(
        tls_node.url("localhost", AMQP_PORT), broker_tls_ca=str(tls_node.ca)
    )
    assert "does not speak TLS" in message and PASSWORD not in message
    assert took < CONNECT_TIMEOUT + 2


def test_a_client_certificate_from_another_ca_is_refused_and_named(tls_node):
    message, _ = failed_connect(
        tls_node.url(),
        broker_tls_ca=str(tls_node.ca),
        broker_tls_cert=str(tls_node.stranger_cert),
    )
    assert "refused the client certificate" in message and "stranger.pem" in message
    assert PASSWORD not in message


def test_a_call_through_the_client_fails_with_the_tls_reason_not_a_bare_timeout(
    tls_node, unique_queue
):
    app = tls_app(tls_node.url(), unique_queue, broker_tls_ca=str(tls_node.other_ca))
    try:
        started = time.monotonic()
        with pytest.raises(BrokerError) as caught:
            app.send_task("add", [1, 2], timeout=20).get()
        assert time.monotonic() - started < CONNECT_TIMEOUT + 5  # not the call's 20 s
    finally:
        app.close()
    assert "not trusted" in str(caught.value) and PASSWORD not in str(caught.value)


def test_tls_settings_that_cannot_work_are_refused_when_the_app_is_built(tmp_path):
    with pytest.raises(ConfigurationError, match="not amqps://"):
        App("x", broker_url="amqp://guest:guest@localhost//", broker_tls_ca=__file__)
    with pytest.raises(ConfigurationError, match="broker_tls_ca=.*no such readable file"):
        App("x", broker_url="amqps://localhost//", broker_tls_ca=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="broker_tls_key is set"):
        App("x", broker_url="amqps://localhost//", broker_tls_key=__file__)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="broker_tls_ca"):
        App("x", broker_url="amqps://localhost//", broker_tls_ca=str(tmp_path / "junk.pem"))
