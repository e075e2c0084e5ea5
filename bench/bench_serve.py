"""Serving: a real `galaxy_tui.serve` server (uvicorn on 127.0.0.1, its own process) under a bounded load
of real JPEG uploads, with request batching on and off side by side.

- batched: the server as `galaxy-tui serve` runs it — images of requests that arrive together share one
  forward pass (at most --max-batch);
- one per request: the same server with --max-batch 1, one forward pass per request, as a plain FastAPI
  wrapper around a model does.

The model is the named architecture with random weights at the given size (the arithmetic, not the
accuracy, sets the speed), on the CPU unless a GPU is present. The client sends --requests uploads of the
real SDSS JPEGs in ../shared/realdata (generated JPEGs where that folder is missing) from --concurrency
connections and stops by itself. Prints per server: throughput, p50 / p99 latency, errors, the mean batch
the server formed, and the ratios. Goal: 0 errors.

With --memory, the server's memory instead: its resident set (RSS) before and after --requests mixed uploads
(real JPEGs, and every 25th a decompression bomb: a 0.2 MB PNG of 13000 x 13000 pixels), and its peak, for the
server as it runs (--max-pixels 4096x4096, two decodes at once) beside the same server unbounded (no pixel
limit, four decodes at once, as before the limit). Bombs cost the unbounded server ~10 s and gigabytes each, so
it gets --unbounded-requests uploads of which the first three are bombs sent at once. Goal: RSS after within
20% of before, and a peak within the stated bound.

    python bench/bench_serve.py [--requests 1000] [--concurrency 16] [--model resnet18] [--size 224]
    python bench/bench_serve.py --memory [--requests 1000] [--unbounded-requests 60]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "gz1_small"
CLASSES = ["elliptical", "spiral", "edge_on"]


def serve(port: int, model: str, size: int, max_batch: int, unbounded: bool = False) -> None:
    """The server process: a random-weight model behind the real app."""
    import uvicorn

    from galaxy_tui.inference.servable import LoadedRun, Servable, choose_device
    from galaxy_tui.inference.task_outputs import ClassOutputs
    from galaxy_tui.serve.http_app import Limits, create_app
    from galaxy_tui.train.models import build_model

    device = choose_device()
    reading = ClassOutputs()
    network = Servable(build_model(model, len(CLASSES), pretrained=False), reading).to(device).eval()
    loaded = LoadedRun(f"bench-{model}", network, device, "classification", reading, CLASSES, size, 1.0, None)
    limits = Limits(max_batch=max_batch, max_pixels=None, decodes=4) if unbounded else Limits(max_batch=max_batch)
    uvicorn.run(create_app(loaded, limits), host="127.0.0.1", port=port, log_level="error")


def jpegs() -> list[tuple[str, bytes]]:
    files = sorted(REALDATA.glob("*/*.jpeg"))[:32]
    if files:
        return [(path.name, path.read_bytes()) for path in files]
    rng = np.random.default_rng(0)
    made = []
    for i in range(32):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (424, 424, 3), dtype=np.uint8)).save(buffer, "JPEG")
        made.append((f"generated-{i}.jpg", buffer.getvalue()))
    return made


@dataclass
class Load:
    seconds: float
    latencies: list[float]
    errors: int
    mean_batch: float

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


async def load(url: str, uploads: list[tuple[str, bytes]], requests: int, concurrency: int) -> Load:
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))

    async def connection(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for number in remaining:
            name, data = uploads[number % len(uploads)]
            sent = time.perf_counter()
            try:
                answer = await client.post(f"{url}/classify", files={"file": (name, data, "image/jpeg")})
                ok = answer.status_code == 200 and len(answer.json()["results"]) == 1
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - sent)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        before = (await client.get(f"{url}/health")).json()
        started = time.perf_counter()
        await asyncio.gather(*(connection(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        after = (await client.get(f"{url}/health")).json()
    batches = max(1, after["batches"] - before["batches"])
    return Load(seconds, latencies, errors, (after["images"] - before["images"]) / batches)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, max_batch: int, unbounded: bool = False) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--model", args.model,
                               "--size", str(args.size), "--max-batch", str(max_batch),
                               *(["--unbounded"] if unbounded else [])])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            httpx.get(f"{url}/health", timeout=2)
            return server, url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                server.kill()
                raise SystemExit("the server did not start within 120 s") from None
            time.sleep(0.2)


def measure(args: argparse.Namespace, max_batch: int, uploads: list[tuple[str, bytes]]) -> Load:
    server, url = start_server(args, max_batch)
    try:
        asyncio.run(load(url, uploads, min(args.requests, 2 * args.concurrency), args.concurrency))  # warm-up
        return asyncio.run(load(url, uploads, args.requests, args.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=30)


# ---------------------------------------------------------------- memory under bombs

def bomb() -> bytes:
    """A decompression bomb under Pillow's own limit: 13000 x 13000 pixels of zeros in a ~0.2 MB PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (13000, 13000)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Memory:
    before: int
    after: int
    peak: int
    answered: dict[int, int]
    seconds: float


class PeakRss:
    """Samples a process's RSS every 20 ms in a thread; `peak` is the largest seen."""

    def __init__(self, pid: int):
        import psutil
        self.process, self.peak, self._run = psutil.Process(pid), 0, True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        return self.process.memory_info().rss

    def _sample(self) -> None:
        while self._run:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def stop(self) -> int:
        self._run = False
        self._thread.join()
        return self.peak


async def mixed(url: str, uploads: list[tuple[str, bytes, str]], concurrency: int) -> dict[int, int]:
    """Every upload once from `concurrency` connections; the count of each status answered."""
    statuses: dict[int, int] = {}
    remaining = iter(uploads)

    async def connection(client: httpx.AsyncClient) -> None:
        for name, data, kind in remaining:
            try:
                status = (await client.post(f"{url}/classify", files={"file": (name, data, kind)})).status_code
            except httpx.HTTPError:
                status = 0
            statuses[status] = statuses.get(status, 0) + 1

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(connection(client) for _ in range(concurrency)))
    return statuses


def memory(args: argparse.Namespace, unbounded: bool, uploads: list[tuple[str, bytes, str]]) -> Memory:
    server, url = start_server(args, args.max_batch, unbounded)
    try:
        warm = [(name, data, "image/jpeg") for name, data in jpegs()]
        asyncio.run(mixed(url, warm * 4, args.concurrency))
        time.sleep(1.0)
        sampler = PeakRss(server.pid)
        before = sampler.rss()
        started = time.perf_counter()
        answered = asyncio.run(mixed(url, uploads, args.concurrency))
        seconds = time.perf_counter() - started
        time.sleep(2.0)  # what the server keeps once it is idle again
        after = sampler.rss()
        return Memory(before, after, sampler.stop(), answered, seconds)
    finally:
        server.terminate()
        server.wait(timeout=60)


def memory_main(args: argparse.Namespace) -> None:
    from galaxy_tui.serve.limits import Limits
    files = jpegs()
    boom = bomb()
    bounded = [("bomb.png", boom, "image/png") if n % 25 == 24 else (*files[n % len(files)], "image/jpeg")
               for n in range(args.requests)]
    unbounded = [("bomb.png", boom, "image/png")] * 3 + \
                [(*files[n % len(files)], "image/jpeg") for n in range(max(0, args.unbounded_requests - 3))]
    bound = Limits().decode_bytes or 0
    print(f"memory: {args.model} at {args.size} px (random weights); bombs are {len(boom) / 1024:.0f} KiB PNGs "
          f"of 13000x13000 pixels; stated decode bound {bound / 2**20:.0f} MiB")
    results = {"bounded": (memory(args, False, bounded), sum(1 for u in bounded if u[2] == "image/png")),
               "unbounded": (memory(args, True, unbounded), 3)}
    print(f"{'server':<10} {'uploads':>8} {'bombs':>6} {'RSS before':>11} {'peak':>9} {'after':>9} "
          f"{'after/before':>13} {'seconds':>8}  answers")
    for name, (m, bombs) in results.items():
        print(f"{name:<10} {sum(m.answered.values()):>8} {bombs:>6} {m.before / 2**20:>9.0f} M "
              f"{m.peak / 2**20:>7.0f} M {m.after / 2**20:>7.0f} M {m.after / m.before:>13.2f} {m.seconds:>8.1f}  "
              f"{dict(sorted(m.answered.items()))}")
    ours, plain = results["bounded"][0], results["unbounded"][0]
    print(f"bounded vs unbounded: peak RSS x{ours.peak / plain.peak:.2f}, RSS kept after x"
          f"{(ours.after / ours.before) / (plain.after / plain.before):.2f}; goal: after within 20% of before "
          f"({'met' if ours.after <= 1.2 * ours.before else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--memory", action="store_true", help="the server's memory under decompression bombs")
    parser.add_argument("--unbounded-requests", type=int, default=60)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--unbounded", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.model, args.size, args.max_batch, args.unbounded)
        return
    if args.memory:
        memory_main(args)
        return
    uploads = jpegs()
    kib = np.mean([len(data) for _, data in uploads]) / 1024
    print(f"{args.requests} requests from {args.concurrency} connections, one JPEG each ({len(uploads)} files, "
          f"{kib:.0f} KiB on average); {args.model} at {args.size} px (random weights)")
    results = {"batched": measure(args, args.max_batch, uploads), "one per request": measure(args, 1, uploads)}
    print(f"{'server':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'mean batch':>11}")
    for name, result in results.items():
        print(f"{name:<16} {result.throughput:>8.1f} {result.percentile(50):>8.1f} {result.percentile(99):>8.1f} "
              f"{result.errors:>7} {result.mean_batch:>11.1f}")
    ours, plain = results["batched"], results["one per request"]
    print(f"batched vs one per request: throughput x{ours.throughput / plain.throughput:.2f}, "
          f"p50 latency x{ours.percentile(50) / plain.percentile(50):.2f}, "
          f"p99 latency x{ours.percentile(99) / plain.percentile(99):.2f} (below 1 is better)")


if __name__ == "__main__":
    main()
