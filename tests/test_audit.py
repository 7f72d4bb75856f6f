"""`make audit` (.ci/audit.py): a vulnerability fails the build; a service that could
not be asked is said out loud, never a silent pass (docs/security.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "audit.py"


def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_pinned_dependency_is_audited() -> None:
    deps = audit().pinned()
    assert "fastapi==0.165.0" in deps and "pip-audit==2.10.1" in deps
    assert all("==" in d for d in deps), "the audit needs exact pins"


def test_a_vulnerability_fails_and_is_named() -> None:
    report = {"dependencies": [
        {"name": "jinja2", "version": "3.1.6", "vulns": [
            {"id": "GHSA-xxxx", "fix_versions": ["3.1.7"]}]},
        {"name": "httpx", "version": "0.28.1", "vulns": []}]}
    status, lines = audit().judge(report, strict=False)
    assert status == 1
    assert "VULNERABLE jinja2 3.1.6: GHSA-xxxx (fixed in 3.1.7)" in lines


def test_an_unreachable_service_is_said_not_passed_silently() -> None:
    report = {"dependencies": [
        {"name": "httpx", "version": "0.28.1",
         "skip_reason": "Dependency not found on PyPI and could not be audited"}]}
    status, lines = audit().judge(report, strict=False)
    assert status == 0 and "NOT CHECKED" in lines[-1] and "NOT audited" in lines[-1]
    assert audit().judge(report, strict=True)[0] == 2


def test_a_clean_report_passes() -> None:
    report = {"dependencies": [{"name": "httpx", "version": "0.28.1", "vulns": []}]}
    status, lines = audit().judge(report, strict=False)
    assert status == 0 and "no known vulnerabilities in 1" in lines[0]


def test_a_skipped_pin_that_is_the_newest_release_is_checked_through_the_project_json(
) -> None:
    def report() -> dict[str, object]:
        return {"dependencies": [
            {"name": "jinja2", "version": "3.1.6", "skip_reason": "not found"},
            {"name": "httpx", "version": "0.28.1", "skip_reason": "not found"}]}
    newest = {"jinja2": ("3.1.6", [{"id": "PYSEC-1", "fixed_in": ["3.1.7"]},
                                   {"id": "PYSEC-0", "withdrawn": "2026-01-01"}]),
              "httpx": ("0.29.0", [])}
    status, lines = audit().judge(report(), strict=False, latest=newest.get)
    assert status == 1 and "VULNERABLE jinja2 3.1.6: PYSEC-1 (fixed in 3.1.7)" in lines
    newest["jinja2"] = ("3.1.6", [])
    status, lines = audit().judge(report(), strict=False, latest=newest.get)
    assert status == 0 and "NOT CHECKED" in lines[-1] and "httpx 0.28.1" in lines[-1]
    assert "jinja2" not in lines[-1] and "is not the newest, 0.29.0" in lines[-1]
