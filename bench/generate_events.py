"""The benchmark's history: the events of the last `days` (the heavy customer's interleaved with everyone
else's) and the audit entries, written with COPY.

Mixed into bench/generate.py's Generator, whose helpers (`_cursor`, `_created`, `_loading_session`) and
settings (`scale`, `typical`, `now`) it uses."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

from bench.copy_load import Table
from bench.dataset import PRO, REGIONS, SCALE, TYPICAL_PROPS, VALUES, plan_of, ts


class EventRows:
    def events(self, cat: dict) -> int:
        """Events in time order over the last `days`, the heavy customer's interleaved with everyone
        else's as they would arrive; an event only belongs to a customer that existed by then."""
        from billing.models import Event

        table = Table(
            Event,
            [
                "id",
                "customer_id",
                "feature_id",
                "event_name",
                "value",
                "timestamp",
                "properties",
                "idempotency_key",
                "api_key_id",
                "created_at",
            ],
        )
        scale, typical = self.scale, self.typical
        n_events, n_heavy, n_customers = scale.events, scale.heavy_events, scale.customers
        heavy_ids = [f.pk for f in cat["heavy_features"]]
        weights = [1 / (n + 1) for n in range(len(heavy_ids))]  # Zipf: a few features carry most usage
        total_w = sum(weights)
        heavy_pick: list[str] = []
        for fid, w in zip(heavy_ids, weights, strict=True):
            heavy_pick += [str(fid)] * max(1, round(1000 * w / total_w))
        n_pick = len(heavy_pick)
        plans = bytes(plan_of(k, scale, typical) for k in range(n_customers))
        messages, api_calls = str(cat["features"]["messages"].pk), str(cat["features"]["api_calls"].pk)
        start = self.now - timedelta(days=scale.days)
        start_us = int(start.timestamp() * 1_000_000)
        span_us = scale.days * 86_400 * 1_000_000
        first_created = self._created(0).timestamp() * 1_000_000
        created_span = 3 * scale.days * 86_400 * 1_000_000
        values, n_values = VALUES, len(VALUES)
        props_heavy, props_typical = REGIONS, TYPICAL_PROPS

        def lines(part: int, lo: int, hi: int):
            rand = random.Random(scale.seed + 2 + part).random
            minute = -1
            prefix = ""
            for i in range(lo, hi):
                t = start_us + i * span_us // n_events
                m, rest = divmod(t, 60_000_000)
                if m != minute:
                    minute = m
                    prefix = f"{datetime.fromtimestamp(m * 60, UTC):%Y-%m-%d %H:%M}:"
                stamp = f"{prefix}{rest // 1_000_000:02d}.{rest % 1_000_000:06d}+00"
                if (i * n_heavy) // n_events != ((i + 1) * n_heavy) // n_events:
                    customer = 1
                    feature = heavy_pick[int(rand() * n_pick)]
                    props = props_heavy[i % 5]
                else:
                    limit = int(n_customers * (t - first_created) / created_span)
                    r = rand()
                    k = 1 + int((limit - 1) * r * r)
                    plan = plans[k]
                    feature = api_calls if plan == SCALE or (plan == PRO and i & 1) else messages
                    customer = k + 1
                    props = props_typical[i % 5]
                yield f"{i + 1}\t{customer}\t{feature}\t\t{values[i % n_values]}\t{stamp}\t{props}\t\\N\t\\N\t{stamp}"

        # Two loaders, each on its own connection, keep both cores busy (PostgreSQL's COPY is the
        # slower side of the pipe).
        parts = 2 if n_events >= 100_000 else 1
        bounds = [n_events * p // parts for p in range(parts + 1)]
        counts = [0] * parts
        errors: list[BaseException] = []

        def load(part: int) -> None:
            from django.db import connection

            try:
                with self._cursor() as cur:
                    self._loading_session(cur)
                    counts[part] = table.load(cur, lines(part, bounds[part], bounds[part + 1]))
            except BaseException as exc:  # re-raised below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=load, args=(part,)) for part in range(parts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return sum(counts)

    def audit_entries(self, cat: dict) -> int:
        from customers.models import AuditEntry

        table = Table(
            AuditEntry,
            [
                "id",
                "created_at",
                "actor_label",
                "action",
                "env",
                "customer_id",
                "customer_ref",
                "target_type",
                "target_id",
                "before",
                "after",
                "reason",
            ],
        )
        heavy_balances = list(range(1, len(cat["heavy_features"]) + 1))  # customer 1's balances come first

        def lines():
            for n in range(300):
                when = ts(self.now - timedelta(hours=29 * n))
                balance = heavy_balances[n % len(heavy_balances)]
                yield (
                    f"{n + 1}\t{when}\tsupport\tbalance.add\tlive\t1\torg_megacorp\tbalance\t{balance}\t"
                    f'{{"remaining": {1000 + n}}}\t{{"remaining": {1500 + n}}}\tGoodwill credit, ticket #{4000 + n}'
                )

        with self._cursor() as cur:
            count = table.load(cur, lines())
        from billing.models import CustomerReward

        CustomerReward.objects.create(customer_id=1, reward=cat["rewards"][0])
        return count
