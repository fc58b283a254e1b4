"""Firmware as desired state, judged: every firmware an inventory knows (the BMC's FirmwareInventory
and each part's own: GPU VBIOS, drive Revision, PSU, NIC, storage controller), one row per component;
then uniformity (identical parts, same model, run the same version) and the profile's baseline.

Pure. A version nobody reported is `inconclusive`, never `pass`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from burnin.hardware import HardwareInventory
from burnin.schema import Finding, Verdict, make_finding
from provision.model.firmware import FirmwareBaseline, FirmwareKind, UniformityPolicy
from provision.model.profile import Profile

EVIDENCE_ID = "redfish.inventory"  # the firmware rows come from the inventory read (inspection's)
_SINGLE = ("bios", "bmc")  # one per host: the FirmwareInventory entry and the System's own are one


@dataclass(frozen=True)
class FirmwareItem:
    component: str  # FirmwareKind value, or "other"
    name: str  # the part: "gpu:GPU3", "drive:Disk1", "BIOS"
    version: str | None
    model: str | None = None
    location: str | None = None
    serial: str | None = None
    updateable: bool | None = None
    path: str | None = None  # SoftwareInventory @odata.id, where the BMC lists one (an update target)
    source: str = "part"  # "FirmwareInventory" or "part"

    @property
    def label(self) -> str:
        bits = [b for b in (self.location, f"serial {self.serial}" if self.serial else None) if b]
        return self.name + (f" ({', '.join(bits)})" if bits else "")


def _tail(path: str | None) -> str:
    return (path or "").rstrip("/").rsplit("/", 1)[-1]


def firmware_items(inv: HardwareInventory) -> list[FirmwareItem]:
    """Each component's firmware once: a FirmwareInventory entry for a part already listed (same
    serial, or its RelatedItem is that part) lends the part its version where missing, whether it
    is updateable and its inventory path."""
    s = inv.system
    items = [
        FirmwareItem("bios", "bios", s.bios_version, model=s.model, serial=s.serial),
        FirmwareItem("bmc", "bmc", s.bmc_version),
    ]
    for g in inv.gpus:
        items.append(FirmwareItem("gpu", f"gpu:{g.index}", g.vbios, g.name, g.slot, g.serial))
    for d in inv.drives:
        items.append(FirmwareItem("drive", f"drive:{d.name}", d.firmware, d.model, None, d.serial))
    for p in inv.psus:
        items.append(FirmwareItem("psu", f"psu:{p.name}", p.firmware, p.model, p.location, p.serial))
    for c in inv.storage_controllers:
        items.append(FirmwareItem("storage_controller", f"controller:{c.name}", c.firmware, c.model))
    for fw in inv.firmware:
        kind = fw.component or "other"
        version = fw.version or None
        at = next((i for i, it in enumerate(items) if _same(it, kind, fw.serial, fw.related, fw.name)), None)
        if at is None:
            name = fw.name if kind in ("other", "cpld") else f"{kind}:{fw.name}"
            items.append(
                FirmwareItem(
                    kind, name, version, fw.model, fw.location, fw.serial, fw.updateable, fw.path,
                    "FirmwareInventory",
                )
            )  # fmt: skip
            continue
        it = items[at]
        items[at] = replace(
            it,
            version=it.version or version,
            model=it.model or fw.model,
            location=it.location or fw.location,
            serial=it.serial or fw.serial,
            updateable=fw.updateable,
            path=fw.path,
            source="FirmwareInventory" if it.version is None else it.source,
        )
    return items


def _same(item: FirmwareItem, kind: str, serial: str | None, related: str | None, name: str) -> bool:
    if item.component != kind:
        return False
    if kind in _SINGLE:
        return item.path is None  # the first entry of the kind joins the System's/manager's own
    if serial and item.serial:
        return serial == item.serial
    part = item.name.split(":", 1)[-1]
    return (bool(related) and _tail(related) == part) or _tail(name) == part


def _finding(
    check: str, item: str, expected: str, observed: str | None, verdict: Verdict, required: bool = True
) -> Finding:
    seen = "no version reported by the BMC" if observed is None else observed
    return make_finding(check, item, expected, seen, verdict, "redfish", [EVIDENCE_ID], required)


def check_uniformity(items: list[FirmwareItem], policy: UniformityPolicy) -> list[Finding]:
    """Identical parts (same kind and model, two or more) run one version: a part that differs from
    the version most of its siblings run is named; with no majority, the whole group is."""
    bad = Verdict.FAIL if policy is UniformityPolicy.fail else Verdict.WARN
    groups: dict[tuple[str, str], list[FirmwareItem]] = {}
    for it in items:
        if it.model and it.component != "other":
            groups.setdefault((it.component, it.model), []).append(it)
    out: list[Finding] = []
    for (kind, model), parts in sorted(groups.items()):
        if len(parts) < 2:
            continue
        group = f"{kind}:{model} x{len(parts)}"
        known = [p for p in parts if p.version]
        unknown = [p.name for p in parts if not p.version]
        counts = Counter(p.version for p in known)
        spread = "; ".join(f"{v} on {', '.join(p.name for p in known if p.version == v)}" for v in counts)
        if unknown:
            out.append(
                _finding(
                    "firmware_uniform", group, f"one version across {len(parts)} {model}",
                    (f"{spread}; " if spread else "") + f"no version from {', '.join(unknown)}",
                    Verdict.INCONCLUSIVE,
                )
            )  # fmt: skip
        if len(counts) <= 1:
            if not unknown:
                version = next(iter(counts))
                out.append(
                    _finding(
                        "firmware_uniform", group, f"one version across {len(parts)} {model}",
                        f"{version} on all {len(parts)}", Verdict.PASS,
                    )
                )  # fmt: skip
            continue
        (top, n), *rest = counts.most_common()
        if rest and rest[0][1] == n:  # no majority: which one is odd cannot be told
            out.append(
                _finding("firmware_uniform", group, f"one version across {len(parts)} {model}", spread, bad)
            )
            continue
        want = f"{top} (as {n} of its {len(parts) - 1} siblings, {model})"
        for p in known:
            if p.version != top:
                out.append(_finding("firmware_uniform", p.label, want, f"{p.version}; all: {spread}", bad))
    return out


def check_baseline(items: list[FirmwareItem], baseline: FirmwareBaseline) -> list[Finding]:
    """Each kind the profile names: every such part at an allowed version or the minimum."""
    out: list[Finding] = []
    for kind, rule in baseline.baseline.items():
        mine = [it for it in items if it.component == kind.value and rule.applies_to(it.model)]
        if not mine:
            what = kind.value + (f" {rule.model}" if rule.model else "")
            out.append(_finding("firmware_baseline", what, rule.rule, None, Verdict.INCONCLUSIVE))
            continue
        for it in mine:
            ok = None if it.version is None else rule.satisfied_by(it.version)
            verdict = Verdict.INCONCLUSIVE if ok is None else (Verdict.PASS if ok else Verdict.FAIL)
            seen = it.version if ok is not None or it.version is None else f"{it.version} (not a version)"
            out.append(_finding("firmware_baseline", it.label, rule.rule, seen, verdict))
    return out


def check_firmware_state(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    """Uniformity (by the profile's policy, fail by default) and the baseline, where the profile has one."""
    items, baseline = firmware_items(inv), profile.firmware
    policy = baseline.uniformity if baseline else UniformityPolicy.fail
    out = check_uniformity(items, policy)
    if baseline is not None:
        out += check_baseline(items, baseline)
    return out


def below_baseline(
    inv: HardwareInventory, baseline: FirmwareBaseline
) -> list[tuple[FirmwareKind, FirmwareItem]]:
    """The parts a baseline with an `image` would update: those whose version fails the rule."""
    out = []
    items = firmware_items(inv)
    for kind, rule in baseline.baseline.items():
        for it in items:
            mine = it.component == kind.value and rule.applies_to(it.model)
            if mine and it.version and rule.image and rule.satisfied_by(it.version) is False:
                out.append((kind, it))
    return out
