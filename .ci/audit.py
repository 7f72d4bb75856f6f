#!/usr/bin/env python3
"""`make audit`: pip-audit over the dependencies pinned in pyproject.toml.

Fails (exit 1) when any pinned dependency has a known vulnerability. When the
vulnerability service cannot be asked (no network, a mirror that does not serve
PyPI's per-version JSON), pip-audit itself would pass silently, listing the packages
as "skipped"; this says so loudly instead, naming the reason, and exits 0 (the build
goes on: the dependencies were not checked, not found clean) — or 2 with
AUDIT_STRICT=1, for a CI that has network access and must never skip. docs/security.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def pinned() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        deps.extend(extra)
    return deps


def judge(report: dict[str, Any], strict: bool) -> tuple[int, list[str]]:
    """pip-audit's JSON report -> (exit status, lines to print)."""
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    lines: list[str] = []
    for d in vulnerable:
        for v in d["vulns"]:
            fixed = ", ".join(v.get("fix_versions") or []) or "no fix yet"
            lines.append(f"VULNERABLE {d['name']} {d.get('version', '?')}: {v.get('id')} "
                         f"(fixed in {fixed})")
    if vulnerable:
        lines.append(f"audit: {len(vulnerable)} of {len(deps)} pinned dependencies have "
                     "known vulnerabilities: upgrade them in pyproject.toml")
        return 1, lines
    if skipped:
        lines.append(
            f"audit: NOT CHECKED: the vulnerability service could not check {len(skipped)} "
            f"of {len(deps)} pinned dependencies; pip-audit says: "
            f"{skipped[0]['skip_reason']!r}. That means PyPI's JSON API "
            "(https://pypi.org/pypi/<name>/<version>/json) did not answer for them: "
            "no network access, or a package mirror that does not serve it. These "
            "dependencies were NOT audited.")
        return (2 if strict else 0), lines
    lines.append(f"audit: no known vulnerabilities in {len(deps)} pinned dependencies")
    return 0, lines


def main() -> int:
    strict = os.environ.get("AUDIT_STRICT") == "1"
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(pinned()) + "\n")
        requirements = f.name
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip_audit", "-r", requirements, "--no-deps",
             "--disable-pip", "--progress-spinner", "off", "--format", "json",
             "--vulnerability-service", "pypi"],
            capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(requirements)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"audit: NOT CHECKED: pip-audit could not reach the vulnerability service "
              f"(exit status {done.returncode}): {last}")
        return 2 if strict else 0
    status, lines = judge(report, strict)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
