"""The steps that judge and hand over: validate (gate 2), report, handoff.

The run's documents in the state store form a run directory the acceptance code reads as it is
(result.json, inventory-redfish.json, telemetry.jsonl), so `provision report --run-dir` shows the
same record this flow produced. A reinstall's record names the run it follows and the parts that
changed since.
"""

from __future__ import annotations

import json
import time
from html import escape
from importlib.metadata import version
from pathlib import Path
from typing import Any

from burnin.schema import to_dict
from provision.acceptance.evaluation import Acceptance, evaluate
from provision.acceptance.report.html import render_html
from provision.acceptance.report.junit import render_junit
from provision.acceptance.runfiles import RECORD_FILE, RunFiles, load_run_dir, read_golden
from provision.acceptance.validation import RunVerdict
from provision.flow.engine import StepCall, StepFn, StepName, StepResult
from provision.flow.hostenv import StepContext
from provision.handoff.manifests import driver_mode, manifests, render_manifests
from provision.handoff.zfs import zfs_plan
from provision.model.errors import VerdictFailed
from provision.store.lifecycle import HostState


def reinstall_section(info: dict[str, Any]) -> str:
    """The HTML a reinstall's report adds under its verdict: the previous run and what changed."""
    prev = info.get("previous_run")
    rows = "".join(f"<li>{escape(str(c))}</li>" for c in info.get("changes", []))
    verdict = escape(str(info.get("previous_verdict")))
    report = escape(str(info.get("previous_report")))
    head = (
        f"<p>Reinstall after a hardware change; previous run <span class=mono>{escape(str(prev))}</span>, "
        f"{verdict} (report <span class=mono>{report}</span>).</p>"
        if prev
        else "<p>Reinstall; no earlier accepted run to compare with.</p>"
    )
    changed = f"<ul>{rows}</ul>" if rows else "<p>No hardware change found.</p>"
    return f'<section id="reinstall"><h2>What changed</h2>{head}{changed}</section>'


class AcceptSteps:
    """The judging steps: validate, report, handoff."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx

    def steps(self) -> dict[StepName, StepFn]:
        return {
            StepName.validate: self.validate,
            StepName.report: self.report,
            StepName.handoff: self.handoff,
        }

    def _run_dir(self) -> Path:
        return Path(self.ctx.store.state_dir) / "runs" / self.ctx.run.id

    def _files(self) -> RunFiles:
        return load_run_dir(self._run_dir(), {tuple(self.ctx.env.profile.acceptance.part_power_series)})

    def _accept(self) -> Acceptance:
        files = self._files()
        profile = self.ctx.env.profile
        return evaluate(
            files,
            host_name=self.ctx.name,
            profile=profile,
            host=self.ctx.env.host,
            golden=read_golden(self.ctx.env.profiles_dir, profile.name),
            kind=self.ctx.env.kind,
            generated_at=time.time(),
            tool_version=version("inferno-provision"),
        )

    def validate(self, call: StepCall) -> StepResult:
        acc = self._accept()
        self.ctx.store.put_document(
            self.ctx.run.id, "findings.json", {"findings": [to_dict(f) for f in acc.findings]}
        )
        counts = acc.record["counts"]
        verdict = acc.verdict.value
        if acc.verdict is not RunVerdict.inconclusive:  # inconclusive proves nothing: the state stays
            state = HostState.accepted if acc.verdict is RunVerdict.accepted else HostState.rejected
            self.ctx.state(state, f"verdict {verdict}: {counts}")
        shown = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        return StepResult(
            message=f"verdict {verdict} ({shown})", evidence=("findings.json",), facts={"verdict": verdict}
        )

    def report(self, call: StepCall) -> StepResult:
        acc = self._accept()
        record = dict(acc.record)
        extra = ""
        if self.ctx.env.kind == "reinstall":
            info = {
                "previous_run": call.facts.get("previous_run"),
                "previous_verdict": call.facts.get("previous_verdict"),
                "previous_report": f"{call.facts.get('previous_run')}/{RECORD_FILE}"
                if call.facts.get("previous_run")
                else None,
                "changes": list(call.facts.get("changes") or []),
                "weighted_suites": list(call.facts.get("weigh_suites") or []),
            }
            record["reinstall"] = info
            extra = reinstall_section(info)
        html = render_html(record, self._files().telemetry)
        if extra:
            # Right under the verdict: what a person signing a reinstall must see first.
            at = html.find("</section>")
            html = (
                html[: at + len("</section>")] + extra + html[at + len("</section>") :]
                if at >= 0
                else html + extra
            )
        self.ctx.store.put_document(self.ctx.run.id, RECORD_FILE, record)
        self.ctx.store.put_document(self.ctx.run.id, "report.html", html.encode())
        self.ctx.store.put_document(self.ctx.run.id, "report.junit.xml", render_junit(record).encode())
        where = self._run_dir() / "report.html"
        return StepResult(
            message=f"reports written: {where}",
            evidence=(RECORD_FILE, "report.html", "report.junit.xml"),
            facts={"report": str(where)},
        )

    def handoff(self, call: StepCall) -> StepResult:
        verdict = call.facts.get("verdict")
        if verdict != "accepted":
            # The node, if it exists, keeps the quarantine taint: nothing of ours schedules there.
            return StepResult(message=f"not handed off: verdict {verdict}", skipped=True)
        profile, host = self.ctx.env.profile, self.ctx.env.host
        record = json.loads(self.ctx.store.get_document(self.ctx.run.id, RECORD_FILE))
        zfs = zfs_plan(profile, host, record)
        if zfs.refusals:
            raise VerdictFailed(f"{self.ctx.name}: ZFS pool {zfs.pool} refused: " + "; ".join(zfs.refusals))
        docs = manifests(profile, host, record)
        self.ctx.store.put_document(
            self.ctx.run.id, "handoff-manifests.yaml", render_manifests(docs).encode()
        )
        script = "#!/bin/sh\nset -eu\n" + "\n".join(zfs.commands) + "\n"
        self.ctx.store.put_document(self.ctx.run.id, "zfs-create.sh", script.encode())
        driver = driver_mode(profile, record)
        evidence = ("handoff-manifests.yaml", "zfs-create.sh")
        kubeconfig = self.ctx.env.extras.get("kubeconfig")
        if not kubeconfig:
            return StepResult(
                message=f"manifests written ({len(docs)} objects; {driver['statement']}); apply them with "
                f"'provision handoff {self.ctx.name} --kubeconfig FILE'",
                evidence=evidence,
                facts={"handed_off": False},
            )
        # The Kubernetes client loads only when a cluster is named. The join (an RHCOS reinstall, a
        # BareMetalHost) and the labels are steps of a handoff run of their own, resumed as such.
        from provision.flow.handoff_steps import connect, raise_for, run_handoff

        record_run = str(record["run"]["run_id"])  # what `provision handoff` resumes by, too
        summary = run_handoff(self.ctx.env, connect(kubeconfig), docs, record_run, call.waiter.cancel)
        raise_for(summary)
        steps = ", ".join(summary.ran)
        return StepResult(
            message=f"handed off (join {profile.handoff.join}): node Ready; run {summary.run_id}: {steps}",
            evidence=evidence,
            facts={"handed_off": True, "handoff_run": summary.run_id},
        )
