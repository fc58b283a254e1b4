"""The agent's plan document: checked before anything runs, so a bad plan is one clear line.

{"run_id": "...", "host": "...", "sample_interval_s": 1,
 "suites": [{"suite": "cpu", "duration_s": 20, "required": true, "options": {}}],
 "expect": {"cpu": {...}, "memory": {...}, "nvme": {...}, "boot_disks": {...}, "gpus": {...}},
 "allow_destructive": [{"serial": "..."}, {"wwn": "..."}]}
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict


class PlanError(ValueError):
    """The plan is not usable; the message names the file, the field, what was expected and got."""


def check_plan(plan: Any, where: str = "plan") -> Dict[str, Any]:
    def bad(field: str, expected: str, got: Any) -> PlanError:
        return PlanError(f"{where}: {field}: expected {expected}, got {got!r}")

    if not isinstance(plan, dict):
        raise bad("(top level)", "a JSON object", type(plan).__name__)
    run_id = plan.get("run_id")
    if not isinstance(run_id, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", run_id):
        raise bad("run_id", "letters, digits, '.', '_' or '-'", run_id)
    if not isinstance(plan.get("host", ""), str):
        raise bad("host", "a string", plan.get("host"))
    interval = plan.get("sample_interval_s", 1.0)
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
        raise bad("sample_interval_s", "a number > 0", interval)
    suites = plan.get("suites")
    if not isinstance(suites, list) or not suites:
        raise bad("suites", "a non-empty list", suites)
    for i, spec in enumerate(suites):
        if not isinstance(spec, dict) or not isinstance(spec.get("suite"), str):
            raise bad(f"suites[{i}].suite", "a suite name", spec)
        dur = spec.get("duration_s", 0)
        if not isinstance(dur, (int, float)) or isinstance(dur, bool) or dur < 0:
            raise bad(f"suites[{i}].duration_s", "a number >= 0", dur)
        if not isinstance(spec.get("options", {}), dict):
            raise bad(f"suites[{i}].options", "an object", spec.get("options"))
        if not isinstance(spec.get("required", True), bool):
            raise bad(f"suites[{i}].required", "true or false", spec.get("required"))
    if not isinstance(plan.get("expect", {}), dict):
        raise bad("expect", "an object", plan.get("expect"))
    allow = plan.get("allow_destructive", [])
    if not isinstance(allow, list) or not all(isinstance(a, dict) for a in allow):
        raise bad("allow_destructive", "a list of {serial|wwn|path+backing_file} objects", allow)
    for i, entry in enumerate(allow):
        if not (entry.get("serial") or entry.get("wwn") or (entry.get("path") and entry.get("backing_file"))):
            raise bad(f"allow_destructive[{i}]", "serial, wwn, or path with backing_file", entry)
    return plan


def load_plan(path: Path) -> Dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlanError(f"{path}: cannot read the plan: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlanError(f"{path}:{getattr(exc, 'lineno', 1)}: expected JSON, got {exc}") from None
    return check_plan(data, str(path))
