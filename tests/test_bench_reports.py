"""The reports benchmark driver (bench/reports.py): it runs whichever report benchmark
modules exist, says which are missing, and keeps one module's failure from hiding
the others' figures."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from bench import reports


@pytest.fixture
def fake_modules() -> Iterator[dict[str, types.ModuleType]]:
    made: dict[str, types.ModuleType] = {}
    yield made
    for name in made:
        sys.modules.pop(f"bench.{name}", None)


def _module(made: dict[str, types.ModuleType], name: str, **attrs: object) -> None:
    mod = types.ModuleType(f"bench.{name}")
    for k, v in attrs.items():
        setattr(mod, k, v)
    sys.modules[f"bench.{name}"] = mod
    made[name] = mod


async def test_runs_a_module_with_run(fake_modules: dict[str, types.ModuleType]) -> None:
    seen: list[str] = []

    async def run(url: str) -> list[tuple[str, float]]:
        seen.append(url)
        return [("monthly channel report", 0.25), ("top products", 2)]

    _module(fake_modules, "fake_sales", run=run)
    status, figures = await reports.run_module("fake_sales", "postgresql://x/y")
    assert status == "ok"
    assert figures == [("monthly channel report", 0.25), ("top products", 2.0)]
    assert seen == ["postgresql://x/y"]


async def test_missing_and_failing_modules(fake_modules: dict[str, types.ModuleType]) -> None:
    assert await reports.run_module("no_such_report_module", "u") == ("missing", None)

    async def run(url: str) -> list[tuple[str, float]]:
        raise RuntimeError("boom")

    _module(fake_modules, "fake_broken", run=run)
    status, figures = await reports.run_module("fake_broken", "u")
    assert status == "failed: RuntimeError: boom" and figures is None
    _module(fake_modules, "fake_empty")
    status, _ = await reports.run_module("fake_empty", "u")
    assert status.startswith("failed: neither")


def test_table_marks_figures_over_target() -> None:
    text = reports.table([
        {"module": "report_sales", "status": "ok", "target_s": 1.0, "figures": [
            {"name": "month", "seconds": 0.5, "within_target": True},
            {"name": "year", "seconds": 1.5, "within_target": False}]},
        {"module": "reconcile", "status": "missing", "target_s": 10.0, "figures": []}])
    lines = text.splitlines()
    assert lines[1].split()[-1] == "yes" and lines[2].split()[-1] == "NO"
    assert lines[3].split() == ["reconcile", "missing"]
