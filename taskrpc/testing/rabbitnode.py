"""Extra RabbitMQ nodes for tests: a TLS listener, a node to put under an alarm, a cluster.

Each :class:`RabbitNode` is a real ``rabbitmq-server`` on this machine with its own node
name, AMQP and distribution ports, data and log directories, configuration and Erlang
cookie, so tests can break it (alarms, ``kill -9``, stops) without touching the shared
broker on 5672. It runs as the current user with ``HOME`` set to its own directory,
which is where Erlang looks for the cookie; every node of one :func:`start_cluster`
shares that cookie.

Example:
    >>> node = RabbitNode("taskrpc-alarm", amqp_port=5691, base_dir=tmp_path)
    >>> node.start()
    >>> node.ctl("set_vm_memory_high_watermark", "0.0000001")
    >>> node.stop()
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

#: Where Debian's package puts RabbitMQ's own scripts (the ones in /usr/sbin switch user).
RABBITMQ_BIN = Path(os.environ.get("TASKRPC_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))

#: Cookie shared by every node this module starts (nodes of one cluster must agree).
COOKIE = "taskrpc-test-cookie"

#: The distribution port is the AMQP port plus this.
DIST_PORT_OFFSET = 20000


def rabbitmq_available() -> bool:
    """Whether ``rabbitmq-server`` can be started on this machine."""
    return (RABBITMQ_BIN / "rabbitmq-server").exists()


class RabbitNode:
    """One RabbitMQ node of the tests' own, on its own ports and directories.

    Parameters:
        name: The node's short name; the node is ``name@localhost``.
        amqp_port: Its plain AMQP port on 127.0.0.1.
        base_dir: A directory of its own (data, logs, config, cookie).
        extra_config: Lines appended to its ``rabbitmq.conf`` (e.g. a TLS listener).
        plugins: Plugins to enable (none by default, which keeps start-up fast).
    """

    def __init__(
        self,
        name: str,
        amqp_port: int,
        base_dir: Path | str,
        *,
        extra_config: str = "",
        plugins: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.amqp_port = amqp_port
        self.dist_port = amqp_port + DIST_PORT_OFFSET
        self.base_dir = Path(base_dir)
        self.extra_config = extra_config
        self.plugins = tuple(plugins)
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<RabbitNode {self.nodename} amqp={self.amqp_port} running={self.running}>"

    @property
    def nodename(self) -> str:
        """The Erlang node name, for ``rabbitmqctl -n`` and ``join_cluster``."""
        return f"{self.name}@localhost"

    @property
    def url(self) -> str:
        """The node's AMQP URL with the default guest user and vhost."""
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}//"

    @property
    def log_dir(self) -> Path:
        """Where the node writes its logs."""
        return self.base_dir / "log"

    @property
    def running(self) -> bool:
        """Whether the node's process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 90.0) -> None:
        """Start the node (again, after :meth:`stop` or :meth:`kill`) and wait for AMQP.

        Raises:
            RuntimeError: It did not accept AMQP connections within ``timeout`` seconds;
                the message ends with the tail of its output.
        """
        if self.running:
            return
        self._write_files()
        output = (self.base_dir / "output.log").open("ab")
        self._process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self._env(),
            cwd=self.base_dir,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # kill() reaches the VM and its helpers, not the tests
        )
        output.close()
        try:
            self.wait_for_amqp(timeout)
        except TimeoutError:
            self.kill()
            raise RuntimeError(
                f"{self.nodename} did not start in {timeout} s:\n{self.output_tail()}"
            ) from None

    def wait_for_amqp(self, timeout: float = 90.0) -> None:
        """Block until the AMQP port accepts connections.

        Raises:
            TimeoutError: It did not within ``timeout`` seconds, or the node exited.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise TimeoutError(f"{self.nodename} exited")
            try:
                with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=1):
                    pass
                left = max(1, int(deadline - time.monotonic()))
                self.ctl("await_startup", "--timeout", str(left))
            except (OSError, RuntimeError):  # not listening, or not registered yet
                time.sleep(0.2)
                continue
            return
        raise TimeoutError(f"{self.nodename} did not open port {self.amqp_port}")

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n <node> *args`` and return its output.

        Raises:
            RuntimeError: It exited non-zero (the message has its output).
        """
        return self._tool("rabbitmqctl", args, timeout)

    def queues_ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmq-queues -n <node> *args`` (quorum queue tools)."""
        return self._tool("rabbitmq-queues", args, timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node gracefully and wait for its process to end."""
        if not self.running:
            return
        try:
            self.ctl("stop", timeout=timeout)
        except (RuntimeError, subprocess.TimeoutExpired):
            self.kill()
            return
        assert self._process is not None
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """``kill -9`` the node's Erlang VM (and its helper processes): no clean-up."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        vm = self._vm_pid()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(30)
        # The script we started exits first; the VM may hold its ports a moment longer.
        deadline = time.monotonic() + 30
        while vm and Path(f"/proc/{vm}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _vm_pid(self) -> int:
        try:
            return int((self.base_dir / "rabbitmq.pid").read_text().strip())
        except (OSError, ValueError):
            return 0

    def output_tail(self, lines: int = 40) -> str:
        """The last lines of the node's console output and log, for error messages."""
        text = []
        for path in [self.base_dir / "output.log", *sorted(self.log_dir.glob("*.log"))]:
            if path.exists():
                text += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text[-2 * lines :])

    def remove(self) -> None:
        """Kill the node and delete its directory."""
        self.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _write_files(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        cookie = self.base_dir / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(COOKIE)
            cookie.chmod(0o600)
        (self.base_dir / "rabbitmq-env.conf").write_text("")  # not the system one
        (self.base_dir / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")
        config = f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
        config += "loopback_users = none\n" + self.extra_config
        (self.base_dir / "rabbitmq.conf").write_text(config)

    def _env(self) -> dict[str, str]:
        base = self.base_dir
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_"))
        }
        env.update(
            HOME=str(base),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.log_dir),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=str(base / "rabbitmq.pid"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def _tool(self, tool: str, args: Sequence[str], timeout: float) -> str:
        result = subprocess.run(
            [str(RABBITMQ_BIN / tool), "-n", self.nodename, *args],
            env=self._env(),
            cwd=self.base_dir,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        out = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} on {self.nodename} failed:\n{out}")
        return out


def start_cluster(
    base_dir: Path | str,
    names: Sequence[str],
    amqp_ports: Sequence[int],
    *,
    extra_config: str = "",
    timeout: float = 120.0,
) -> list[RabbitNode]:
    """Start one node per name and port, and join every node to the first.

    On failure every node started so far is killed before the error is raised.

    Returns:
        The nodes, all running and clustered, in the order given.

    Raises:
        RuntimeError: A node did not start or could not join.
    """
    base = Path(base_dir)
    nodes = [
        RabbitNode(name, port, base / name, extra_config=extra_config)
        for name, port in zip(names, amqp_ports, strict=True)
    ]
    try:
        for node in nodes:  # in turn: two nodes booting at once on two cores crawl
            node.start(timeout)
        for node in nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", nodes[0].nodename)
            node.ctl("start_app")
            node.wait_for_amqp(timeout)
    except BaseException:
        for node in nodes:
            node.kill()
        raise
    return nodes
