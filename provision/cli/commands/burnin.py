"""`provision burnin HOST | --local`: run the burn-in agent over SSH on an installed host, or on
this machine, and keep the result under the state directory for `provision report`.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import click

from burnin.build import build as build_agent
from burnin.planfile import PlanError, check_plan
from burnin.runner import Runner
from burnin.schema import RunResult, Verdict, run_from_dict, to_dict
from provision.acceptance.runfiles import PRE_OS_FILE, RESULT_FILE
from provision.acceptance.runs import load_run
from provision.acceptance.validation import RunVerdict
from provision.agent.plan import PLAN_NAMES, build_plan
from provision.agent.ssh import REMOTE_DIR, RemoteAgent, SshTarget, run_remote
from provision.cli.acceptance import LOCAL_HOST, accept_files, power_sums
from provision.cli.app import App, emit
from provision.model.errors import BadInput, NotFound, VerdictFailed
from provision.model.files import MAX_INPUT_BYTES, FileRefused, read_regular, size_text
from provision.model.profile import Profile
from provision.store.state import RunStatus, StateStore

KIND = "burnin"


def _plan_source(plan: str) -> str | dict[str, Any]:
    if plan in PLAN_NAMES:
        return plan
    path = Path(plan)
    if not path.exists():
        raise BadInput(f"--plan: expected quick, acceptance or a plan FILE, got {plan!r} (no such file)")
    try:
        blob, _ = read_regular(path, MAX_INPUT_BYTES)  # a FIFO would block, a device never end
        data = json.loads(blob.decode("utf-8"))
    except FileRefused as exc:
        expected = f"a regular plan file of at most {size_text(MAX_INPUT_BYTES)}"
        raise BadInput(f"--plan {path}: expected {expected}, got {exc.got}") from None
    except OSError as exc:
        raise BadInput(f"--plan {path}: expected a readable plan file, got {exc.strerror}") from None
    except ValueError as exc:
        raise BadInput(f"{path}:{getattr(exc, 'lineno', 1)}: expected a JSON plan, got {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}:1: (top level): expected a JSON object, got {type(data).__name__}")
    return data


def summarize(result: dict[str, Any]) -> str:
    lines = [
        f"run {result['run_id']} on {result['host']}: agent verdict {result['verdict'].upper()}"
        f"  ({result['run_dir']})"
    ]
    acc = result.get("acceptance")
    lines.append(
        f"  against {acc['profile']}: {acc['verdict'].upper()}: {acc['reason']}"
        if acc
        else "  no profile: health and integrity only, not an acceptance"
    )
    for s in result["suites"]:
        lines.append(f"  {s['suite']:<11} {s['verdict']:<13} {s.get('error') or ''}")
        for f in s["findings"]:
            if f["verdict"] != "pass":
                req = "" if f["required"] else " (optional)"
                lines.append(
                    f"      {f['verdict']:<12} {f['id']}: expected {f['expected']}; "
                    f"observed {f['observed']}{req}"
                )
    return "\n".join(lines)


def _status(verdict: Verdict) -> RunStatus:
    """The run succeeded only when its verdict lets the host go on; the verdict itself is in the result."""
    return RunStatus.succeeded if verdict in (Verdict.PASS, Verdict.WARN) else RunStatus.failed


def _finish(
    app: App,
    store: StateStore,
    run_id: str,
    result: RunResult,
    profile: Profile | None,
    as_json: bool,
    files: dict[str, bytes] | None = None,
) -> None:
    """Keep the result with the raw files collected from the host (telemetry), then say the verdict:
    with a profile, the run held to the profile's acceptance contract (exit 0 only when accepted);
    without one (`--local` alone), the agent's own verdict on health and integrity."""
    for name, blob in sorted((files or {}).items()):
        store.put_document(run_id, name, blob)
    doc = to_dict(result)
    ref = store.put_document(run_id, RESULT_FILE, doc)
    store.put_document(run_id, "inventory.json", dict(result.inventory))
    store.add_event(result.host, "burnin_verdict", {"verdict": result.verdict.value}, run_id=run_id)
    store.finish_run(run_id, _status(result.verdict))
    doc["verdict"] = result.verdict.value
    doc["run_dir"] = str(ref.path.parent)
    acc = None
    if profile is not None:
        files_of_run = load_run(store, store.get_run(run_id), power_sums(app))
        acc = accept_files(app, files_of_run, KIND, profile.name)
        doc["acceptance"] = {
            "profile": profile.name,
            "verdict": acc.verdict.value,
            "reason": acc.record["reason"],
        }
    emit(doc, as_json, summarize)
    if acc is not None and acc.verdict is not RunVerdict.accepted:
        raise VerdictFailed(f"burn-in {run_id}: {acc.verdict.value}: {acc.record['reason']}")
    if result.verdict not in (Verdict.PASS, Verdict.WARN):  # exit 0 only for a run that passed
        raise VerdictFailed(f"burn-in {run_id}: verdict {result.verdict.value}")


def _keep_pre_os(store: StateStore, host: str, run_id: str) -> None:
    """Put the host's latest Redfish inventory (from `provision inspect`) with the run, so its report
    cross-checks the BMC's view against the agent's; which inspection it was is kept as an event."""
    for run in reversed(store.list_runs(host)):
        if run.id != run_id and PRE_OS_FILE in {d.name for d in store.documents(run.id)}:
            store.put_document(run_id, PRE_OS_FILE, store.get_document(run.id, PRE_OS_FILE))
            store.add_event(host, "pre_os_inventory", {"from_run": run.id}, run_id=run_id)
            return


def _local(app: App, plan_src: str | dict[str, Any], profile: Profile | None, as_json: bool) -> None:
    with StateStore.open(app.state_dir) as store:
        run = store.create_run(LOCAL_HOST, KIND)
        plan = build_plan(run.id, LOCAL_HOST, plan_src, profile=profile)
        try:
            check_plan(plan, "plan")
        except PlanError as exc:
            store.finish_run(run.id, RunStatus.failed)
            raise BadInput(str(exc)) from None
        runner = Runner(plan, store.state_dir / "runs" / run.id / "agent")
        previous = signal.signal(signal.SIGINT, lambda *_: runner.stop.set())
        try:
            result = runner.run()
        except BaseException:
            store.finish_run(run.id, RunStatus.interrupted)
            raise
        finally:
            signal.signal(signal.SIGINT, previous)
        _finish(app, store, run.id, result, profile, as_json)


def _remote(
    app: App,
    host_name: str,
    plan_src: str | dict[str, Any],
    identity: Path | None,
    known_hosts: Path | None,
    agent_dir: str,
    as_json: bool,
) -> None:
    host = app.catalog.host(host_name)
    profile = app.catalog.profile_of(host)
    address = host.ssh_address
    if address is None:
        raise BadInput(
            f"{app.profiles_dir / 'hosts.yaml'}: hosts.{host_name}.address: "
            "expected an address to reach the installed OS, got none"
        )
    target = SshTarget(address, host.ssh_port, host.ssh_user, identity, known_hosts)

    def progress(event: dict[str, Any]) -> None:
        shown = ("started", "attached", "suite_start", "suite_end", "reconnecting", "run_end")
        if not as_json and event.get("event") in shown:
            fields = {
                k: v for k, v in event.items() if k in ("suite", "verdict", "state", "attempt", "error")
            }
            click.echo(f"{host_name}: {event['event']} {json.dumps(fields)}", err=True)

    with StateStore.open(app.state_dir) as store, store.host_lock(host_name):
        run = store.create_run(host_name, KIND)
        plan = build_plan(run.id, host_name, plan_src, profile=profile, host=host)
        pyz = build_agent(app.files_dir / "agent" / "burnin-agent.pyz")
        try:
            got = run_remote(target, pyz, plan, progress, agent_factory=lambda t: RemoteAgent(t, agent_dir))
        except BaseException:
            store.finish_run(run.id, RunStatus.interrupted)
            raise
        _keep_pre_os(store, host_name, run.id)
        _finish(app, store, run.id, run_from_dict(got.result), profile, as_json, got.files)


@click.command()
@click.argument("host", required=False)
@click.option("--local", is_flag=True, help="Burn in this machine.")
@click.option("--plan", default="quick", show_default=True, help="quick, acceptance, or a plan FILE (JSON).")
@click.option("--profile", "profile_name", help="With --local: judge this machine against profile NAME.")
@click.option("--identity", type=click.Path(path_type=Path, dir_okay=False), help="SSH private key for HOST.")
@click.option(
    "--known-hosts",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Pinned host keys for HOST (default ~/.ssh/known_hosts); unknown keys are refused.",
)
@click.option(
    "--agent-dir",
    default=REMOTE_DIR,
    show_default=True,
    help="Directory on HOST for the agent and its runs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def burnin(
    app: App,
    host: str | None,
    local: bool,
    plan: str,
    profile_name: str | None,
    identity: Path | None,
    known_hosts: Path | None,
    agent_dir: str,
    as_json: bool,
) -> None:
    """Run the burn-in agent on HOST over SSH, or on this machine with --local."""
    if bool(host) == local:
        raise BadInput(
            "burnin: expected HOST or --local (exactly one), got " + ("both" if local else "neither")
        )
    plan_src = _plan_source(plan)
    if local:
        profile = None
        if profile_name:
            if profile_name not in app.catalog.profiles:
                known = ", ".join(sorted(app.catalog.profiles))
                raise NotFound(f"--profile: expected one of {known}, got {profile_name!r}")
            profile = app.catalog.profiles[profile_name]
        _local(app, plan_src, profile, as_json)
    else:
        _remote(app, str(host), plan_src, identity, known_hosts, agent_dir, as_json)
