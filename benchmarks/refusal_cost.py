"""CPU a worker spends to refuse each kind of hostile request under the size limit.

    python benchmarks/refusal_cost.py [--rounds 5] [--python-count]

Each request goes through what a worker does with it after py-amqp has read it: the
checks of its loop (size, header budgets, headers, signature) and the executor (content
type, bounded decompression, decode budgets, envelope, arguments), up to the error reply
it sends. Process CPU time per refused request, best of ``--rounds``; the tests of
``tests/security`` check that each is refused, this only measures.

The second column is the same request sent to a worker that signs (``signing_keys``) by
an attacker who knows the key id but not the secret: the signature is checked, and the
request refused, before its body is decompressed or read.

Requests go to ``add(a: int, b: int)``, whose scalar parameters bound what a valid call
holds, or to ``total(values: list[int])``, which only the general budgets protect: the
rows "at the budget" hold just under ``max_elements`` elements, of the shapes that cost
most to build, so they are decoded in full before their arguments are refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import zlib
from collections.abc import Callable

from taskrpc import App, budgets
from taskrpc.security.signing import Signer
from taskrpc.worker.admission import admit, request_envelope
from taskrpc.worker.executor import Job, execute

app = App("refusals", broker_url="memory://")
app.codec.accept("msgpack")
signing = App("refusals", broker_url="memory://", signing_keys=("k1:the worker's own secret",))
signing.codec.accept("msgpack")
forger = Signer.from_entries("k1:a guess at the secret", window=300.0)
LIMIT = app.settings.max_message_size
ELEMENTS = app.settings.max_elements
JSON, MSGPACK = "application/json", "application/x-msgpack"


@app.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="total")
def total(values: list[int]) -> int:
    return sum(values)


signing.task(name="add")(add.fn)
signing.task(name="total")(total.fn)


def fill(head: bytes, item: bytes, tail: bytes, size: int = LIMIT) -> bytes:
    """``head`` + ``item`` repeated to about ``size`` bytes in all + ``tail``."""
    return head + item * ((size - len(head) - len(tail)) // len(item)) + tail


def array32(count: int) -> bytes:
    return b"\xdd" + count.to_bytes(4, "big")


_NESTED = b"[[[[[[[[[[]]]]]]]]]],"  # 10 arrays, 11 elements: the costliest to build
_ESCAPED = b'a,\\"b\\",[c]'  # commas, brackets and escaped quotes, all inside a string
_BACKSLASHES = b"\\\\"  # one escaped backslash: the densest escapes, the costliest to parse

Case = tuple[str, bytes, str, str, dict[str, object]]


def case(
    task: str, body: bytes, kind: str = JSON, encoding: str = "binary", **headers: object
) -> Case:
    """A request: task, body, content type, content encoding and extra headers."""
    return task, body, kind, encoding, headers


CASES: dict[str, Case] = {
    "integer of 4,000,000 digits, zlib (4 KB)": case(
        "total", zlib.compress(b'{"args": [' + b"7" * 4_000_000 + b"]}", 9), encoding="zlib"
    ),
    "12 integers of 4,400 digits": case(
        "total", b'{"args": [[' + b",".join([b"7" * 4400] * 12) + b"]]}"
    ),
    "JSON nested 100,000 deep": case(
        "total", b'{"args": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    ),
    "msgpack nested 1,000 deep": case(
        "total", b"\x81\xa4args\x91" + b"\x91" * 1000 + b"\xc0", MSGPACK
    ),
    "zlib bomb (64 MiB of zeros)": case(
        "total", zlib.compress(b"\0" * (64 << 20), 9), encoding="zlib"
    ),
    "JSON at the size limit, truncated": case("add", fill(b'{"args": ["', b"x", b'"')),
    "a string at the size limit, for an int": case("add", fill(b'{"args": ["', b"x", b'", 1]}')),
    "[] to the size limit, for an int": case("add", fill(b'{"args": [[', b"[],", b"[]], 1]}")),
    "[] to the size limit, for a list[int]": case("total", fill(b'{"args": [[', b"[],", b"[]]]}")),
    "nested [] to the limit, for a list[int]": case(
        "total", fill(b'{"args": [[', _NESTED, b"[]]]}")
    ),
    "0, to the limit, then a string, for list[int]": case(
        "total", fill(b'{"args": [[', b"0,", b'"x"]]}')
    ),
    "{} to the size limit, for a list[int]": case("total", fill(b'{"args": [[', b"{},", b"{}]]}")),
    "escaped string to the limit, for a list[int]": case(
        "total", fill(b'{"args": ["', _ESCAPED, b'"]}')
    ),
    "the same, zlib (8 KB)": case(
        "total", zlib.compress(fill(b'{"args": ["', _ESCAPED, b'"]}'), 9), encoding="zlib"
    ),
    "string of \\\\ to the limit, in a list[int]": case(
        "total", fill(b'{"args": [["', _BACKSLASHES, b'"]]}')
    ),
    "msgpack [] to the limit, for a list[int]": case(
        "total", fill(b"\x81\xa4args\x91" + array32(LIMIT), b"\x90", b""), MSGPACK
    ),
    "at the budget: nested [] for a list[int]": case(
        "total", fill(b'{"args": [[', _NESTED, b"[]]]}", ELEMENTS * 19 // 10)
    ),
    "at the budget: strings for a list[int]": case(
        "total", fill(b'{"args": [[', b'"x",', b'"x"]]}', ELEMENTS * 4 - 40)
    ),
    "at the budget: object keys for a list[int]": case(
        "total", b'{"args": [{' + b",".join(b'"k%d":0' % i for i in range(ELEMENTS - 8)) + b"}]}"
    ),
    "200 headers": case("add", b"{}", **{f"x{i}": i for i in range(200)}),
    "pickle content type": case("add", b"\x80\x04N.", "application/x-python-serialize"),
}


def cpu_ms(fn: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best * 1000


def request(
    task: str,
    body: bytes,
    content_type: str,
    encoding: str,
    extra: dict[str, object],
    forged: bool = False,
) -> Job:
    """The job a worker reads; ``forged``: with a signature made with the signing
    worker's key id and the wrong secret."""
    headers = {"taskrpc-protocol": 1, "taskrpc-task": task, **extra}
    job = Job("r1", task, body, content_type, encoding, headers, reply_to="attacker")
    if forged:
        signature = forger.sign(body, request_envelope(job))  # type: ignore[union-attr]
        job = dataclasses.replace(job, headers={**headers, **signature})
    return job


def refuse(worker: App, job: Job) -> str:
    outcome = admit(worker, job) or execute(worker, job)
    assert not outcome.ok, "a hostile request was not refused"
    return f"{outcome.error_code} ({outcome.error_type})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="best of this many (5)")
    parser.add_argument(
        "--python-count", action="store_true", help="count elements in Python, not compiled"
    )
    options = parser.parse_args()
    rounds = options.rounds
    if options.python_count:
        budgets._compiled_count = None
    count = "python" if options.python_count else budgets.ELEMENT_COUNT
    print(f"max_message_size {LIMIT} bytes, max_elements {ELEMENTS}, {count} count")
    print(f"{'request':46} {'bytes':>9} {'CPU to refuse':>14} {'signing':>9}  answer")
    worst = worst_signed = 0.0
    for name, case in CASES.items():
        plain, forged = request(*case), request(*case, forged=True)
        answer = refuse(app, plain)
        cost = cpu_ms(lambda job=plain: refuse(app, job), rounds)
        signed = cpu_ms(lambda job=forged: refuse(signing, job), rounds)
        worst, worst_signed = max(worst, cost), max(worst_signed, signed)
        print(f"{name:46} {len(case[1]):9} {cost:11.2f} ms {signed:6.2f} ms  {answer}")
    print(f"{'worst':46} {'':9} {worst:11.2f} ms {worst_signed:6.2f} ms")


if __name__ == "__main__":
    main()
