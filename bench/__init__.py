"""Benchmarks against a real server on PostgreSQL: `make bench` (bench/run.sh)."""
