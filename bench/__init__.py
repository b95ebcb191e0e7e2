"""Benchmarks at scale: a PostgreSQL data generator (COPY) and one command that measures the dashboard
and the API against the framework's and the database's own floors. See docs/benchmarks.md."""
