"""CPU a worker spends to refuse each kind of hostile request under the size limit.

    python benchmarks/refusal_cost.py

Each request goes through what a worker does with it after py-amqp has read it: the
checks of its loop (size, header budgets, headers, signature) and the executor (content
type, bounded decompression, decode budgets, envelope, arguments), up to the error reply
it sends. Process CPU time, best of five; the tests of ``tests/security`` check that each
is refused, this only measures.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

from taskrpc import App
from taskrpc.worker.admission import admit
from taskrpc.worker.executor import Job, execute

LIMIT = 4 * 1024 * 1024
ADD = {"taskrpc-protocol": 1, "taskrpc-task": "add"}

app = App("refusals", broker_url="memory://")
app.codec.accept("msgpack")


@app.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


def zlib_of(data: bytes) -> bytes:
    return zlib.compress(data, 9)


#: name -> (body, content type, content encoding, headers)
CASES: dict[str, tuple[bytes, str, str, dict[str, object]]] = {
    "integer of 4,000,000 digits, zlib (4 KB)": (
        zlib_of(b'{"args": [' + b"7" * 4_000_000 + b", 1]}"),
        "application/json",
        "zlib",
        ADD,
    ),
    "12 integers of 4,400 digits": (
        b'{"args": [' + b",".join([b"7" * 4400] * 12) + b"]}",
        "application/json",
        "binary",
        ADD,
    ),
    "JSON nested 100,000 deep": (
        b'{"args": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        "application/json",
        "binary",
        ADD,
    ),
    "msgpack nested 1,000 deep": (
        b"\x81\xa4args\x91" + b"\x91" * 1000 + b"\xc0",
        "application/x-msgpack",
        "binary",
        ADD,
    ),
    "zlib bomb (64 MiB of zeros)": (
        zlib_of(b"\0" * (64 << 20)),
        "application/json",
        "zlib",
        ADD,
    ),
    "4 MiB of JSON, truncated": (
        b'{"args": ["' + b"x" * (LIMIT - 20) + b'"',
        "application/json",
        "binary",
        ADD,
    ),
    "4 MiB string for an int": (
        b'{"args": ["' + b"x" * (LIMIT - 20) + b'", 1]}',
        "application/json",
        "binary",
        ADD,
    ),
    "4 MiB of [] for an int (well-formed)": (
        b'{"args": [[' + b"[]," * ((LIMIT - 20) // 3) + b"[]], 1]}",
        "application/json",
        "binary",
        ADD,
    ),
    "200 headers": (
        b"{}",
        "application/json",
        "binary",
        {**ADD, **{f"x{i}": i for i in range(200)}},
    ),
    "pickle content type": (b"\x80\x04N.", "application/x-python-serialize", "binary", ADD),
}


def cpu_ms(fn: Callable[[], object], rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best * 1000


def refuse(body: bytes, content_type: str, encoding: str, headers: dict[str, object]) -> str:
    job = Job("r1", "add", body, content_type, encoding, headers)
    outcome = admit(app, job) or execute(app, job)
    return f"{outcome.error_code} ({outcome.error_type})"


def main() -> None:
    print(f"{'request':44} {'CPU to refuse':>14}  answer")
    for name, case in CASES.items():
        answer = refuse(*case)
        print(f"{name:44} {cpu_ms(lambda case=case: refuse(*case)):11.2f} ms  {answer}")


if __name__ == "__main__":
    main()
