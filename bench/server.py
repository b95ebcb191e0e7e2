"""Serve the app as in production (DEBUG off, collected static files), with the server the README's
production command names or another to compare, and read the workers' peak memory from the kernel
(VmHWM: the most resident memory a process ever had).

Servers (`SERVERS`): `granian` (granian's WSGI interface: HTTP in Rust, the app in a pool of threads per
worker process, connections kept alive), `gthread` (gunicorn's threaded workers, connections kept alive),
`sync` (gunicorn's sync workers: one request per process at a time, every connection closed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.loadgen import get, send

ROOT = Path(__file__).resolve().parent.parent
BENCH_SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database_url: str, static_root: str) -> dict[str, str]:
    """Production settings, minus TLS (the benchmark talks plain HTTP to 127.0.0.1)."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": BENCH_SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "SECURE_HSTS_SECONDS": "0",
            "STATIC_ROOT": static_root,
            "CONN_MAX_AGE": "600",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


SERVERS = ("granian", "gthread", "sync")
THREADS = 4  # per worker process, for granian and gthread
KEEP_ALIVE_SECONDS = 75  # how long an idle kept-alive connection stays open (gthread; granian keeps it)


APP = "autumn_admin.wsgi:application"
FLOOR_APP = "bench.floor:application"  # the Python floor of the hot API calls (bench/floor.py)


def server_command(kind: str, port: int, workers: int, threads: int = THREADS, app: str = APP) -> list[str]:
    """The command line of a production server of the app (or of `app`) on 127.0.0.1:`port`."""
    access_log = bool(os.environ.get("BENCH_ACCESS_LOG"))
    if kind == "granian":
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--blocking-threads",
            str(threads),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            *(["--access-log"] if access_log else ["--no-access-log"]),
        ]
    if kind not in ("gthread", "sync"):
        raise ValueError(f"unknown server {kind!r}: one of {', '.join(SERVERS)}")
    return [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        kind,
        *(["--threads", str(threads), "--keep-alive", str(KEEP_ALIVE_SECONDS)] if kind == "gthread" else []),
        "--backlog",
        "2048",
        "--timeout",
        "120",
        "--log-level",
        "warning",
        "--access-logfile",
        "-" if access_log else "/dev/null",
    ]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15 of stat)


class Server:
    def __init__(
        self,
        database_url: str,
        *,
        workers: int,
        kind: str = "granian",
        threads: int = THREADS,
        port: int | None = None,
        app: str = APP,
    ):
        self.app = app
        self.database_url = database_url
        self.workers = workers
        self.kind = kind
        self.threads = threads
        self.port = port or free_port()
        self.static = tempfile.TemporaryDirectory(prefix="bench-static-")
        self.env = server_env(database_url, self.static.name)
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{kind}-", suffix=".log", delete=False)

    def __enter__(self) -> Server:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True
        )
        self.process = subprocess.Popen(
            server_command(self.kind, self.port, self.workers, self.threads, self.app),
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.read_log()}")
            try:
                if send(self.port, get("/healthz"), timeout=5)[0] == 200 and len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} did not answer: {self.read_log()}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.static.cleanup()

    def read_log(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def worker_pids(self) -> list[int]:
        if not self.process:
            return []
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far: the main one and its workers."""
        pids = [self.process.pid, *self.worker_pids()] if self.process else []
        return sum(process_cpu_seconds(pid) for pid in pids)

    def worker_memory(self) -> dict[str, float]:
        """Peak and current resident memory of each worker, in MB."""
        peaks, current = [], []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            peaks.append(int(fields["VmHWM"].split()[0]) / 1024)
            current.append(int(fields["VmRSS"].split()[0]) / 1024)
        return {
            "workers": len(peaks),
            "peak_rss_mb_max": round(max(peaks, default=0), 1),
            "peak_rss_mb_each": [round(p, 1) for p in sorted(peaks)],
            "rss_mb_now_max": round(max(current, default=0), 1),
        }
