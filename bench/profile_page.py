"""Profile one render of a customer page, in-process, on the benchmark's database:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python -m bench.profile_page [--customer org_megacorp]

Renders the page a few times first (warm caches, as a running server has them), then once under
pyinstrument, and prints the call tree with the time of each part, plus the median of further renders.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customer", default="org_megacorp")
    parser.add_argument("--env", default="live")
    parser.add_argument("--renders", type=int, default=20, help="renders timed after the profile")
    parser.add_argument("--html", help="write the page to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789abcdef")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    static = tempfile.TemporaryDirectory(prefix="bench-static-")
    os.environ["STATIC_ROOT"] = static.name  # production settings serve collected, hashed static files
    import django

    django.setup()
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    user, _ = User.objects.get_or_create(username="bench_ops", defaults={"email": "bench@example.com"})
    user.groups.add(Group.objects.get(name="Ops"))
    client = Client()
    client.force_login(user)
    session = client.session
    session["env"] = args.env
    session.save()
    path = f"/customers/{args.customer}/"
    for _ in range(3):
        response = client.get(path)
    assert response.status_code == 200, response.status_code
    if args.html:
        with open(args.html, "wb") as f:
            f.write(response.content)
    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    profiler = Profiler(interval=0.0002)
    profiler.start()
    client.get(path)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    times, cpu = [], []
    for _ in range(args.renders):
        t0, c0 = time.perf_counter(), time.process_time()
        client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    print(
        f"{path}: {len(response.content) / 1024:.1f} KiB, {len(captured.captured_queries)} queries, "
        f"median of {args.renders} renders in-process {statistics.median(times):.1f} ms "
        f"({statistics.median(cpu):.1f} ms of this process's CPU; the rest waits for the database or a core)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
