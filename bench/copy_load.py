"""The generator's COPY plumbing: a model's table as COPY text (every field the generator doesn't give gets
its model default) and the timed steps it prints."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

from bench.dataset import ts


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, datetime):
        return ts(value.astimezone(UTC))
    return str(value)


class Table:
    """COPY into a model's table: the generator gives some fields (by attname), in order; every
    other concrete field gets its model default, so fields added later keep the generator working."""

    def __init__(self, model, fields: list[str]):
        meta = model._meta
        by_attname = {f.attname: f for f in meta.concrete_fields}
        unknown = [name for name in fields if name not in by_attname]
        if unknown:
            raise SystemExit(f"{meta.db_table} has no columns {unknown}")
        others = [f for f in meta.concrete_fields if f.attname not in fields]
        for f in others:
            if not f.has_default() and not f.null:
                raise SystemExit(f"{meta.db_table}.{f.column} has no default: teach bench/generate_*.py about it")
        self.table = meta.db_table
        self.columns = [by_attname[name].column for name in fields] + [f.column for f in others]
        self.suffix = "".join("\t" + _copy_text(f.get_default() if f.has_default() else None) for f in others)
        quoted = ", ".join(f'"{c}"' for c in self.columns)
        self.sql = f'COPY "{self.table}" ({quoted}) FROM STDIN'

    def load(self, cursor, lines, batch: int = 20_000) -> int:
        """Write `lines` (each the given fields, tab-separated, no newline) and return their count."""
        count = 0
        buf: list[str] = []
        suffix = self.suffix + "\n"
        with cursor.copy(self.sql) as copy:
            for line in lines:
                buf.append(line + suffix)
                if len(buf) >= batch:
                    copy.write("".join(buf))
                    count += len(buf)
                    buf.clear()
            if buf:
                copy.write("".join(buf))
                count += len(buf)
        return count


class Progress:
    def __init__(self, out=sys.stdout):
        self.out = out
        self.t0 = time.perf_counter()
        self.steps: dict[str, float] = {}

    def step(self, name: str, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        took = time.perf_counter() - start
        self.steps[name] = round(took, 2)
        detail = f" ({result:,} rows, {result / took:,.0f}/s)" if isinstance(result, int) and took > 0 else ""
        print(f"  {name:<28} {took:7.1f} s{detail}", file=self.out, flush=True)
        return result
