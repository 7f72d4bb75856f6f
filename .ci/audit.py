#!/usr/bin/env python3
"""`make audit`: pip-audit over the dependencies pinned in pyproject.toml.

Fails (exit 1) when any pinned dependency has a known vulnerability. When the
vulnerability service cannot be asked (no network, a mirror that does not serve
PyPI's per-version JSON), pip-audit itself would pass silently, listing the packages
as "skipped"; this says so loudly instead, naming the reason, and exits 0 (the build
goes on: the dependencies were not checked, not found clean) — or 2 with
AUDIT_STRICT=1, for a CI that has network access and must never skip. docs/security.md.

A dependency pip-audit could not check is asked again through PyPI's project JSON
(https://pypi.org/pypi/<name>/json), which a mirror that hides the per-version JSON may
still serve: its `vulnerabilities` are PyPI's advisories for the project's newest
release, so they count for a pin that IS the newest release; an older pin stays
"not checked".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def pinned() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        deps.extend(extra)
    return deps


Latest = Callable[[str], tuple[str, list[dict[str, Any]]] | None]


def latest_release(name: str) -> tuple[str, list[dict[str, Any]]] | None:
    """(newest version, PyPI's advisories for it) from the project JSON, or None."""
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=15) as r:
            data = json.load(r)
        return str(data["info"]["version"]), list(data.get("vulnerabilities") or [])
    except (OSError, ValueError, KeyError):
        return None


def ask_again(deps: list[dict[str, Any]], latest: Latest) -> None:
    """Fill `vulns` of skipped dependencies whose pin is the newest release (in place)."""
    for d in deps:
        if not d.get("skip_reason"):
            continue
        found = latest(d["name"])
        if found is None or found[0] != d.get("version"):
            if found is not None:
                d["skip_reason"] += f" (and {d.get('version')} is not the newest, {found[0]})"
            continue
        d.pop("skip_reason")
        d["vulns"] = [{"id": v.get("id"), "fix_versions": v.get("fixed_in") or []}
                      for v in found[1] if not v.get("withdrawn")]
        d["checked_by"] = "pypi-project-json"


def judge(report: dict[str, Any], strict: bool,
          latest: Latest | None = None) -> tuple[int, list[str]]:
    """pip-audit's JSON report -> (exit status, lines to print). `latest` asks PyPI's
    project JSON for what pip-audit skipped (None: nobody is asked again)."""
    deps = report.get("dependencies", [])
    if latest is not None:
        ask_again(deps, latest)
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    again = [d for d in deps if d.get("checked_by")]
    lines: list[str] = []
    if again:
        lines.append(f"audit: {len(again)} pinned dependencies checked against PyPI's "
                     "advisories for their (newest) release through the project JSON")
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
            f"of {len(deps)} pinned dependencies "
            f"({', '.join(d['name'] + ' ' + str(d.get('version')) for d in skipped)}); "
            f"pip-audit says: {skipped[0]['skip_reason']!r}. That means PyPI's JSON API "
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
    # a skipped dependency comes without its version: the pin says it
    pins = {name.lower().replace("_", "-"): version
            for name, _, version in (d.partition("==") for d in pinned())}
    for d in report.get("dependencies", []):
        if not d.get("version"):
            d["version"] = pins.get(str(d.get("name", "")).lower().replace("_", "-"))
    status, lines = judge(report, strict, latest_release)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
