"""A small closed-loop HTTP load client: N threads, each sending its next request as soon as the
previous answer has arrived, for a fixed time. Requests are prebuilt bytes, so the client spends as
little CPU as Python allows; its own CPU time is reported beside the results (on a small machine the
client competes with the server for the same cores).

Two modes: a fresh connection per request (`Connection: close`), or, as the SDKs call (autumn-sdk and
autumn-js keep their connections alive), one connection per thread kept open from one request to the
next (`keep_alive=True`, HTTP/1.1 persistent connections: each response read to its Content-Length or
last chunk). A keep-alive connection the server closed is opened again, and the request resent only
when nothing of its answer had arrived and the connection had served requests before (the server
closed it while idle)."""

from __future__ import annotations

import itertools
import json
import os
import resource
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode


@dataclass(frozen=True)
class Request:
    data: bytes
    target: str = ""  # what the request acts on (a balance), to check the outcome against the database


def get(path: str, *, cookie: str = "", query: dict | None = None, target: str = "") -> Request:
    if query:
        path = f"{path}?{urlencode(query)}"
    headers = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if cookie:
        headers += f"Cookie: {cookie}\r\n"
    return Request((headers + "\r\n").encode(), target)


def post_json(path: str, payload: dict, *, bearer: str = "", target: str = "") -> Request:
    body = json.dumps(payload).encode()
    headers = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    if bearer:
        headers += f"Authorization: Bearer {bearer}\r\n"
    return Request((headers + "\r\n").encode() + body, target)


def send(port: int, request: Request, timeout: float = 60.0) -> tuple[int, bytes]:
    """One request on a fresh connection; the status code and the whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request.data)
        chunks = []
        while True:
            chunk = sock.recv(262_144)
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    try:
        status = int(response[9:12])
    except ValueError:
        status = 0
    return status, response


class ClosedBeforeAnswer(ConnectionError):
    """The server closed the connection before sending any of the answer."""


def keep_alive_data(request: Request) -> bytes:
    """The request's bytes for a persistent connection (HTTP/1.1's default: no Connection header)."""
    return request.data.replace(b"Connection: close\r\n", b"", 1)


class PersistentConnection:
    """One HTTP/1.1 connection kept open across requests."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.port, self.timeout = port, timeout
        self.sock: socket.socket | None = None
        self.served = 0  # answers read on the open connection
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.served, self.buffer = None, 0, b""

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _recv(self) -> bytes:
        chunk = self.sock.recv(262_144)
        if not chunk:
            raise ClosedBeforeAnswer("connection closed")
        return chunk

    def _read_answer(self) -> bytes:
        buf = self.buffer
        while b"\r\n\r\n" not in buf:
            buf += self._recv()
        head, _, rest = buf.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            length = int(headers[b"content-length"])
            while len(rest) < length:
                rest += self._recv()
            body, self.buffer = rest[:length], rest[length:]
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body, rest = self._read_chunks(rest)
            self.buffer = rest
        else:  # no length: the body runs to the end of the connection
            parts = [rest]
            while chunk := self.sock.recv(262_144):
                parts.append(chunk)
            body, self.buffer = b"".join(parts), b""
            headers[b"connection"] = b"close"
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        else:
            self.served += 1
        return head + b"\r\n\r\n" + body

    def _read_chunks(self, rest: bytes) -> tuple[bytes, bytes]:
        body = []
        while True:
            while b"\r\n" not in rest:
                rest += self._recv()
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += self._recv()
            body.append(rest[:size])
            rest = rest[size + 2 :]
            if size == 0:
                return b"".join(body), rest

    def send(self, data: bytes) -> tuple[int, bytes]:
        """Send one request's bytes (see `keep_alive_data`); the status code and the whole response."""
        for attempt in (1, 2):
            reused = self.sock is not None and self.served > 0
            if self.sock is None:
                self._connect()
            try:
                self.sock.sendall(data)
                response = self._read_answer()
                break
            except (ClosedBeforeAnswer, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2 or not reused:
                    raise
            except OSError:
                self.close()
                raise
        try:
            status = int(response[9:12])
        except ValueError:
            status = 0
        return status, response


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


@dataclass
class Result:
    name: str
    concurrency: int
    seconds: float
    keep_alive: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    ok_by_target: Counter = field(default_factory=Counter)
    client_cpu_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)

    def summary(self) -> dict:
        ordered = sorted(self.latencies_ms)
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "keep_alive": self.keep_alive,
            "requests": self.requests,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "seconds": round(self.seconds, 2),
            "throughput": round(self.throughput, 1),
            "p50_ms": round(percentile(ordered, 50), 2),
            "p95_ms": round(percentile(ordered, 95), 2),
            "p99_ms": round(percentile(ordered, 99), 2),
            "client_cpu_share": round(self.client_cpu_seconds / self.seconds, 2) if self.seconds else 0,
            "load_average": round(os.getloadavg()[0], 2),  # the machine's 1-minute load when it ended
            "failures": self.failures[:3],
        }


def run_load(
    port: int,
    name: str,
    requests: list[Request],
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 0.0,
    min_requests: int = 0,
    max_seconds: float | None = None,
    keep_alive: bool = False,
) -> Result:
    """Drive `requests` (round-robin, each thread starting at its own offset) for `seconds` (and until
    `min_requests` answers, within `max_seconds`), after `warmup` seconds that are not recorded. With
    `keep_alive`, each thread sends all its requests on one persistent connection."""
    if not requests:
        raise ValueError("no requests")
    if warmup > 0:
        run_load(port, name, requests, concurrency=concurrency, seconds=warmup, keep_alive=keep_alive)
    result = Result(name, concurrency, 0.0, keep_alive)
    persistent = [keep_alive_data(r) for r in requests] if keep_alive else None
    lock = threading.Lock()
    n = len(requests)
    deadline = hard_deadline = 0.0
    done = [0]  # answers so far, for min_requests
    counter = itertools.count()  # shared request numbering, so threads walk the list together
    barrier = threading.Barrier(concurrency + 1)

    def worker() -> None:
        latencies: list[float] = []
        statuses: Counter = Counter()
        ok_by_target: Counter = Counter()
        failures: list[str] = []
        conn = PersistentConnection(port) if keep_alive else None
        barrier.wait()
        while True:
            now = time.perf_counter()
            if now >= hard_deadline or (now >= deadline and done[0] >= min_requests):
                break
            i = next(counter) % n
            request = requests[i]
            t0 = time.perf_counter()
            try:
                status, response = conn.send(persistent[i]) if conn else send(port, request)
            except OSError as exc:
                status, response = 0, str(exc).encode()
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[status] += 1
            if 200 <= status < 300:
                ok_by_target[request.target] += 1
            elif len(failures) < 3:
                failures.append(response[:300].decode("utf-8", "replace"))
            with lock:
                done[0] += 1
        if conn:
            conn.close()
        with lock:
            result.latencies_ms.extend(latencies)
            result.statuses.update(statuses)
            result.ok_by_target.update(ok_by_target)
            result.failures.extend(failures)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    deadline = start + seconds
    hard_deadline = start + (max_seconds if max_seconds is not None else max(seconds * 4, seconds + 30))
    barrier.wait()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu_seconds = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return result
