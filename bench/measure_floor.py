"""The Python floor's measurement: bench/floor.py under the same server and settings as the project, on its own
tables holding the same key, customers and feature (bench/run.py measures it beside balances.check and
balances.track)."""

from __future__ import annotations

import random

from bench import floor as python_floor
from bench import loadgen
from bench.measuring import CpuMeter, result_row
from bench.plan import Plan
from bench.server import FLOOR_APP, Server


def measure_python_floor(database_url: str, plan: Plan, key: str, track: dict, say) -> list[dict]:
    """The Python floor (bench/floor.py) under the same server and settings, on its own tables holding the
    same key, customers and feature: check and track over the same customers, kept alive, at each
    concurrency of the plan. Its tracks are checked exact as the project's are."""
    targets = track["many"]
    python_floor.load(database_url, key, track["env"], targets, track["feature_id"])
    runs = []
    with Server(database_url, workers=plan.worker_count, kind=plan.server, threads=plan.threads, app=FLOOR_APP) as srv:
        for name, path, body in (
            ("floor: check", "/v1/balances.check", {"required_balance": 1}),
            ("floor: track", "/v1/balances.track", {"value": 1}),
        ):
            requests = [
                loadgen.post_json(
                    path, {"customer_id": cid, "feature_id": track["feature_id"], **body}, bearer=key, target=cid
                )
                for cid in targets
            ]
            random.Random(7).shuffle(requests)
            for c in plan.track_concurrency:
                before = python_floor.balances(database_url, track["feature_id"])
                with CpuMeter(srv) as cpu:
                    result = loadgen.run_load(
                        srv.port, name, requests, concurrency=c, seconds=plan.seconds, keep_alive=True
                    )
                result.cpu = cpu.per_answer(result.requests)
                after = python_floor.balances(database_url, track["feature_id"])
                moved = {cid: before[cid] - after[cid] for cid in targets if after[cid] != before[cid]}
                expected = {cid: n for cid, n in result.ok_by_target.items() if n} if name.endswith("track") else {}
                row = result_row(result) | {"exact": moved == expected}
                runs.append(row)
                say(
                    f"  {name:<28} c={c:<3} keep-alive {row['throughput']:8.1f}/s  p50 {row['p50_ms']:7.2f}  "
                    f"p99 {row['p99_ms']:7.2f} ms  errors {row['errors']}  exact {'yes' if row['exact'] else 'NO'}  "
                    f"cpu/answer: server {row['server_cpu_ms']} ms, database {row['db_cpu_ms']} ms"
                )
    return runs
