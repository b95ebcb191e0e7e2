"""Serve the app with gunicorn as in production (DEBUG off, collected static files), and read the
workers' peak memory from the kernel (VmHWM: the most resident memory a process ever had)."""

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


class Gunicorn:
    def __init__(self, database_url: str, *, workers: int, port: int | None = None):
        self.database_url = database_url
        self.workers = workers
        self.port = port or free_port()
        self.static = tempfile.TemporaryDirectory(prefix="bench-static-")
        self.env = server_env(database_url, self.static.name)
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)

    def __enter__(self) -> Gunicorn:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "autumn_admin.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "sync",
                "--backlog",
                "2048",
                "--timeout",
                "120",
                "--log-level",
                "warning",
                "--access-logfile",
                "-" if os.environ.get("BENCH_ACCESS_LOG") else "/dev/null",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.read_log()}")
            try:
                if send(self.port, get("/healthz"), timeout=5)[0] == 200 and len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer: {self.read_log()}")

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
