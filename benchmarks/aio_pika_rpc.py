"""taskrpc beside aio-pika's RPC pattern, in one run (needs ``pip install aio-pika``).

    python benchmarks/aio_pika_rpc.py --rounds 2

The aio-pika side is the pattern from its documentation: a client with an exclusive
callback queue and a future per correlation id, and a server that answers
``{"n": int}`` with ``{"result": fib(n)}`` and acks after replying (prefetch 100). The
taskrpc side is the same worker and sync client as ``taskrpc bench``. Each round measures
both, one call at a time (p50 latency) and with 100 calls in flight (throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
import uuid
from multiprocessing.synchronize import Event
from typing import Any

import aio_pika

from taskrpc.benchmarking.baseline import fib_iter
from taskrpc.benchmarking.drivers import TaskrpcDriver
from taskrpc.benchmarking.servers import Servers

SEQUENTIAL, PIPELINED, IN_FLIGHT, WARMUP = 2000, 10000, 100, 200


async def _serve(url: str, queue: str, ready: Event) -> None:
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=IN_FLIGHT)
    declared = await channel.declare_queue(queue, auto_delete=True)

    async def on_request(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            result = fib_iter(json.loads(message.body)["n"])
            reply = aio_pika.Message(
                json.dumps({"result": result}).encode(), correlation_id=message.correlation_id
            )
            await channel.default_exchange.publish(reply, routing_key=message.reply_to or "")

    await declared.consume(on_request)
    ready.set()
    await asyncio.Future()  # until terminated


def serve(url: str, queue: str, ready: Event) -> None:
    """Run the aio-pika RPC server (in a child process)."""
    asyncio.run(_serve(url, queue, ready))


class AioPikaClient:
    """The aio-pika RPC client pattern: exclusive callback queue, futures by correlation id."""

    async def connect(self, url: str, queue: str) -> AioPikaClient:
        self.queue = queue
        self.connection = await aio_pika.connect(url)
        self.channel = await self.connection.channel()
        self.callback_queue = await self.channel.declare_queue(exclusive=True)
        self.futures: dict[str, asyncio.Future[Any]] = {}
        await self.callback_queue.consume(self._on_reply, no_ack=True)
        return self

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = self.futures.pop(message.correlation_id or "", None)
        if future is not None:
            future.set_result(json.loads(message.body)["result"])

    async def call(self, n: int) -> Any:
        correlation_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.futures[correlation_id] = future
        request = aio_pika.Message(
            json.dumps({"n": n}).encode(),
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=self.callback_queue.name,
        )
        await self.channel.default_exchange.publish(request, routing_key=self.queue)
        return await future


async def measure_aio_pika(url: str, queue: str) -> tuple[float, float]:
    """``(sequential p50 ms, pipelined calls/s)`` of the aio-pika client."""
    client = await AioPikaClient().connect(url, queue)
    for _ in range(WARMUP):
        await client.call(30)
    latencies = []
    for _ in range(SEQUENTIAL):
        started = time.perf_counter()
        await client.call(30)
        latencies.append(time.perf_counter() - started)
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        async with slots:
            await client.call(30)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(PIPELINED)))
    elapsed = time.perf_counter() - started
    await client.connection.close()
    return sorted(latencies)[SEQUENTIAL // 2] * 1e3, PIPELINED / elapsed


def measure_taskrpc(driver: TaskrpcDriver) -> tuple[float, float]:
    """``(sequential p50 ms, pipelined calls/s)`` of the taskrpc sync client."""
    latencies = sorted(driver.sequential(SEQUENTIAL).latencies)
    pipelined = driver.pipelined(PIPELINED, IN_FLIGHT)
    return latencies[SEQUENTIAL // 2] * 1e3, PIPELINED / pipelined.elapsed


def main() -> None:
    """Run the comparison and print one line per round."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    aio_url = options.url.replace("5672//", "5672/")  # yarl reads "//" as a vhost "/"
    queue = f"taskrpc.bench.aiopika.{uuid.uuid4().hex[:8]}"
    ready = multiprocessing.get_context("spawn").Event()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(aio_url, queue, ready), daemon=True
    )
    server.start()
    if not ready.wait(30):
        raise SystemExit("the aio-pika server did not start")
    try:
        with Servers(
            options.url, pool="solo", concurrency=None, prefetch=IN_FLIGHT, baseline=False
        ) as servers:
            driver = TaskrpcDriver(options.url, servers.taskrpc_queue, 30, 10.0)
            driver.wait_ready(servers.check, 30)
            driver.sequential(WARMUP)
            for number in range(1, options.rounds + 1):
                aio_p50, aio_rate = asyncio.run(measure_aio_pika(aio_url, queue))
                ours_p50, ours_rate = measure_taskrpc(driver)
                print(
                    f"round {number}: sequential p50 aio-pika {aio_p50:.3f} ms, taskrpc "
                    f"{ours_p50:.3f} ms ({ours_p50 / aio_p50:.2f}x); pipelined aio-pika "
                    f"{aio_rate:.0f}/s, taskrpc {ours_rate:.0f}/s ({ours_rate / aio_rate:.2f}x)"
                )
            driver.close()
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
