"""Worker processes for the quorum and cluster tests, restarted when they die.

A :class:`WorkerGroup` plays the part of systemd's ``Restart=always``: a worker killed by
its task (or by a test) is started again, and every start is counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The app the cluster tests serve.
APP = "tests.apps.cluster:app"


class WorkerGroup:
    """``size`` worker processes of :data:`APP`, each restarted whenever it exits.

    Parameters:
        env: ``TASKRPC_*`` variables of the workers (broker, queue, queue type, ...).
        log_dir: Where each start writes its log (``worker-<slot>-<start>.log``).
        args: Extra ``taskrpc worker`` arguments.
    """

    def __init__(self, env: dict[str, str], log_dir: Path, size: int = 1, *args: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRPC_")}
        self.env.update(env, PYTHONPATH=str(ROOT))
        self.log_dir = log_dir
        self.args = args
        self.starts = 0
        self.exits: list[int] = []
        self._slots: list[subprocess.Popen[bytes] | None] = [None] * size
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        for slot in range(size):
            self._start(slot)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _start(self, slot: int) -> None:
        self.starts += 1
        log = self.log_dir / f"worker-{slot}-{self.starts}.log"
        with log.open("wb") as out:
            self._slots[slot] = subprocess.Popen(
                [sys.executable, "-m", "taskrpc", "worker", APP, "--loglevel", "info", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def _watch(self) -> None:
        while not self._stopping.wait(0.1):
            with self._lock:
                for slot, process in enumerate(self._slots):
                    if process is not None and process.poll() is not None:
                        self.exits.append(process.returncode)
                        if not self._stopping.is_set():
                            self._start(slot)

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self._slots if p is not None]

    def kill(self, slot: int) -> None:
        """SIGKILL one worker (it is restarted)."""
        process = self._slots[slot]
        if process is not None:
            process.kill()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        """Kill every worker; no restarts after this."""
        self._stopping.set()
        self._thread.join(timeout=5)
        with self._lock:
            for process in self.processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
