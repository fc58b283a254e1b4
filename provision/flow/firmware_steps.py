"""Firmware updates, journaled: `provision firmware HOST --update COMPONENT=IMAGE` (one update) and
the `firmware` step of `provision host` (every part below the profile's baseline that has an image).

Each update is a `firmware` run in the state store whose document records the target, the image's
sha256 and version *before* the image is pushed: a run that dies after the push and is run again
reads the version back and follows up instead of pushing the same image a second time. Refused: a
downgrade without `allow_downgrade`, a part the BMC says is not updateable, a host burning in.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from burnin.schema import Finding, Verdict, make_finding
from provision.acceptance.firmware import FirmwareItem, below_baseline, firmware_items
from provision.bmc.inventory import collect_inventory
from provision.bmc.power import PowerAction, set_power
from provision.bmc.redfish import BmcClient, connect
from provision.bmc.update import follow, push, read_offer, read_version
from provision.flow.engine import StepCall, StepFn, StepName, StepResult
from provision.flow.hostenv import StepContext
from provision.install.bootserver import redact_text
from provision.install.firmware_images import check_offer, offer_image
from provision.model.errors import BadInput, BmcError, VerdictFailed
from provision.model.firmware import version_key
from provision.model.hosts import Host
from provision.store.state import HostState, RunStatus, StateStore

DOC = "firmware-update"  # + the target's inventory Id: one document per part updated
TASK_TIMEOUT_S = 3600.0  # a BMC image takes minutes to write and verify; some take most of an hour
Progress = Callable[[str], None]
Serve = Callable[[StateStore], AbstractContextManager[object]]


def _image_digest(image: str) -> str:
    if image.startswith(("http://", "https://")):
        return "url:" + hashlib.sha256(image.encode()).hexdigest()  # the BMC fetches it, we never do
    if not Path(image).is_file():
        return "missing"
    with Path(image).open("rb") as fh:  # images run to hundreds of MiB: hashed as read, never held
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _target(items: list[FirmwareItem], component: str, system: str | None = None) -> FirmwareItem:
    """A part by its name ("gpu:GPU3", "bios"), its inventory Id, or a kind with one updateable entry.
    A BIOS the FirmwareInventory does not list is targeted through its System (sushy-emulator)."""
    want = component.casefold()
    bios = next((it for it in items if it.component == "bios" and it.name == "bios"), None)
    if want == "bios" and bios is not None and bios.path is None and system:
        return replace(bios, path=system)
    listed = [it for it in items if it.path]
    named = [
        it for it in listed if want in (it.name.casefold(), (it.path or "").rsplit("/", 1)[-1].casefold())
    ]
    kind = [it for it in listed if it.component == want]
    found = named or (kind if len(kind) == 1 else [])
    if not found:
        choices = ", ".join(it.name for it in listed) or "none"
        why = f"{len(kind)} {want} entries: name one" if len(kind) > 1 else "no such entry"
        raise BadInput(f"--update {component}: {why} (FirmwareInventory entries: {choices})")
    return found[0]


def _doc_name(item: FirmwareItem) -> str:
    tail = re.sub(r"[^A-Za-z0-9_.-]", "_", (item.path or item.name).rstrip("/").rsplit("/", 1)[-1])
    return f"{DOC}-{tail}.json"


def _already_pushed(store: StateStore, host: str, key: dict[str, str]) -> str | None:
    """The task of an earlier run (any kind) that pushed this very image to this target, if one did."""
    for run in reversed(store.list_runs(host)):
        for ref in store.documents(run.id):
            if not ref.name.startswith(DOC):
                continue
            doc = json.loads(store.get_document(run.id, ref.name))
            if all(doc.get(k) == v for k, v in key.items()) and doc.get("state") in ("pushed", "done"):
                return str(doc.get("task") or "")
    return None


def _offered(
    stack: ExitStack,
    store: StateStore,
    run_id: str,
    host: str,
    image: Path,
    boot_url: str | None,
    serve: Serve | None,
    progress: Progress | None,
) -> str:
    """A local image for a BMC without multipart push: offered by the boot server (started by `serve`
    where given) behind a token of its own, until the stack closes; checked reachable first."""
    if boot_url is None:
        raise BadInput(f"{image}: the BMC offers no multipart push and no boot server can offer the file")
    if serve is not None:
        stack.enter_context(serve(store))
    url = stack.enter_context(offer_image(store, run_id, host, image, boot_url))
    check_offer(url)
    if progress:
        progress(f"{image.name}: offered to the BMC by the boot server at {boot_url} (token-gated)")
    return url


def _push(
    store: StateStore,
    bmc: BmcClient,
    run_id: str,
    host: str,
    image: str,
    targets: list[str],
    apply_time: str,
    journal: dict[str, Any],
    name: str,
    boot_url: str | None,
    serve: Serve | None,
    progress: Progress | None,
) -> str:
    """Push the image, journaled before and after, and follow its Task; the Task's end, in words."""
    offer = read_offer(bmc)
    with ExitStack() as stack:  # a boot server offer stays open until the Task ends: the BMC fetches then
        source = image
        if not image.startswith(("http://", "https://")) and offer.multipart_uri is None:
            source = _offered(stack, store, run_id, host, Path(image), boot_url, serve, progress)
        store.put_document(run_id, name, {**journal, "state": "pushing"})
        try:
            task, how = push(bmc, offer, source, targets, apply_time)
        except BmcError as exc:  # a BMC may echo the ImageURI, token and all, in its error
            raise BmcError(redact_text(str(exc), source)) from None
        journal.update(state="pushed", task=task, via=how + (" (boot server)" if source != image else ""))
        store.put_document(run_id, name, journal)
        if not task:
            return "none (done within the request)"
        outcome = follow(bmc, task, TASK_TIMEOUT_S, progress=progress)
    if not outcome.ok:
        journal["state"] = "failed"
    return outcome.state + (f": {'; '.join(outcome.messages)}" if outcome.messages else "")


def _apply_by_reset(
    bmc: BmcClient, host: Host, item: FirmwareItem, version: str, now: str | None, progress: Progress | None
) -> str | None:
    """OnReset, or a BMC that installs at the next boot: power cycle, then read back until it shows."""
    path = str(item.path)
    if progress:
        progress(f"{item.name}: {now} after the task; power cycling to apply")
    was = bmc.power_state()
    set_power(bmc, PowerAction.cycle, host.bmc.power_timeout_s)
    deadline = time.monotonic() + host.bmc.power_timeout_s  # the version shows once it is On
    while (after := read_version(bmc, path)) != version and time.monotonic() < deadline:
        time.sleep(1.0)
    if was == "Off":  # an Off host stays Off: nothing may boot before its provisioning run is open
        set_power(bmc, PowerAction.force_off, host.bmc.power_timeout_s)
    return after


def update_component(
    store: StateStore,
    bmc: BmcClient,
    host: Host,
    item: FirmwareItem,
    image: str,
    image_version: str,
    apply_time: str,
    allow_downgrade: bool,
    progress: Progress | None = None,
    run_id: str | None = None,
    boot_url: str | None = None,
    serve: Serve | None = None,
    image_sha256: str | None = None,
) -> dict[str, Any]:
    """One update, journaled (in `run_id`, else a `firmware` run of its own); the result carries its
    `firmware_update` finding. A local image for a BMC without multipart push is offered by the boot
    server at `boot_url` (`serve(store)`: a context that runs one there, for a standalone update)."""
    before = item.version
    if item.updateable is False:
        raise BadInput(f"{host.name}: {item.label}: the BMC lists it as not updateable (Updateable: false)")
    have, want = version_key(before), version_key(image_version)
    if have is not None and want is not None and want < have and not allow_downgrade:
        raise BadInput(
            f"{host.name}: {item.label} runs {before}; the image brings {image_version}, older: "
            "refused without --allow-downgrade"
        )
    key = {"target": str(item.path), "sha256": _image_digest(image), "image_version": image_version}
    if image_sha256 is not None and key["sha256"] != image_sha256:
        raise BadInput(
            f"{host.name}: {image}: sha256: expected {image_sha256} (the profile's), got {key['sha256']}: "
            "not this image, nothing was pushed"
        )
    result: dict[str, Any] = {"component": item.name, "before": before, "image_version": image_version}
    run = store.get_run(run_id) if run_id else store.create_run(host.name, "firmware")
    name = _doc_name(item)
    # A URL's query may carry a token (the boot server's): journaled without it.
    shown = image.split("?", 1)[0] if image.startswith(("http://", "https://")) else Path(image).name
    journal: dict[str, Any] = {**key, "image": shown, "before": before, "apply_time": apply_time}
    earlier = _already_pushed(store, host.name, key)
    task_state = "not needed"
    try:
        if before == image_version:
            journal["state"] = "done"  # already there: nothing to flash
        elif earlier is not None:
            journal.update(state="pushed", task=earlier, resumed=True)  # by an earlier run: never again
            task_state = "pushed by an earlier run"
        else:
            task_state = _push(
                store, bmc, run.id, host.name, image, [str(item.path)], apply_time, journal, name,
                boot_url, serve, progress,
            )  # fmt: skip
        after = read_version(bmc, str(item.path))
        if journal["state"] == "pushed" and after != image_version:
            after = _apply_by_reset(bmc, host, item, image_version, after, progress)
    except BaseException:  # a run of its own stopped half way is failed, not left running
        if run_id is None:
            store.finish_run(run.id, RunStatus.failed)
        raise
    ok = after == image_version
    journal.update(state="done" if ok else "failed", after=after)
    store.put_document(run.id, name, journal)
    if run_id is None:
        store.finish_run(run.id, RunStatus.succeeded if ok else RunStatus.failed)
    observed = f"{after or 'no version reported'} (was {before or 'unknown'}; task {task_state})"
    result.update(after=after, verdict="pass" if ok else "fail", run_id=run.id)
    result["finding"] = make_finding(
        "firmware_update", item.label, image_version, observed, Verdict.PASS if ok else Verdict.FAIL,
        "redfish", [f"firmware.update:{run.id}"],
    )  # fmt: skip
    return result


def run_update(
    state_dir: Path,
    host: Host,
    component: str,
    image: str,
    image_version: str,
    apply_time: str,
    allow_downgrade: bool,
    progress: Progress | None = None,
    boot_url: str | None = None,
    serve: Serve | None = None,
) -> dict[str, Any]:
    """`provision firmware --update`: refused while the host burns in; holds the host's lock."""
    with StateStore.open(state_dir) as store:
        if store.get_host_state(host.name) is HostState.burning_in:
            raise BadInput(f"{host.name}: a burn-in is running: no firmware update until it ends")
        with store.host_lock(host.name), connect(host.bmc) as bmc, bmc.resources() as fetch:
            inv = collect_inventory(fetch, host.bmc.system)
            system = next((e.path for e in inv.enclosures if e.role == "host"), None)
            item = _target(firmware_items(inv), component, system)
            return update_component(
                store, bmc, host, item, image, image_version, apply_time, allow_downgrade, progress,
                boot_url=boot_url, serve=serve,
            )  # fmt: skip


class FirmwareSteps:
    """The `firmware` step of `provision host`: every part below the profile's baseline that has an
    image is updated before the install (OnReset: each update power cycles and reads back itself).
    Resumable: an image journaled as pushed, in this run or an earlier one, is never pushed again."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx

    def steps(self) -> dict[StepName, StepFn]:
        return {StepName.firmware: self.firmware}

    def firmware(self, call: StepCall) -> StepResult:
        env = self.ctx.env
        baseline = env.profile.firmware
        if baseline is None or not any(r.image for r in baseline.baseline.values()):
            return StepResult(
                message="the profile's baseline names no update image: nothing to flash", skipped=True
            )
        findings: list[Finding] = []
        with connect(env.host.bmc) as bmc:
            with bmc.resources() as fetch:
                inv = collect_inventory(fetch, env.host.bmc.system)
            system = next((e.path for e in inv.enclosures if e.role == "host"), None)
            for kind, item in below_baseline(inv, baseline):
                rule = baseline.baseline[kind]
                if item.path is None:
                    item = _target([item], kind.value, system) if kind.value == "bios" else item
                if item.path is None:
                    raise VerdictFailed(
                        f"{self.ctx.name}: {item.label} runs {item.version}, below {rule.rule}, and the BMC "
                        "lists no FirmwareInventory entry to update it through"
                    )
                self.ctx.note(call, f"{item.label}: {item.version} -> {rule.image_version}")
                image = str(rule.image_file(env.profiles_dir) or rule.image)
                result = update_component(
                    self.ctx.store, bmc, env.host, item, image, str(rule.image_version),
                    "OnReset", False, lambda line: self.ctx.note(call, line), run_id=self.ctx.run.id,
                    boot_url=env.boot_url, image_sha256=rule.sha256,
                )  # fmt: skip
                findings.append(result["finding"])
        failed = [f for f in findings if f.verdict is Verdict.FAIL]
        if failed:
            shown = "; ".join(f"{f.component}: expected {f.expected}, got {f.observed}" for f in failed[:5])
            raise VerdictFailed(f"{self.ctx.name}: firmware update did not take: {shown}")
        docs = tuple(
            sorted({d.name for d in self.ctx.store.documents(self.ctx.run.id) if d.name.startswith(DOC)})
        )
        message = (
            f"{len(findings)} part(s) updated to the baseline"
            if findings
            else "every part meets the baseline"
        )
        return StepResult(
            message=message, evidence=docs, facts={"firmware_updated": [f.component for f in findings]}
        )
