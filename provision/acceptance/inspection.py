"""Pre-OS validation: a Redfish inventory against the host's profile, as Findings. Pure.

Each check is a small function (Profile, HardwareInventory[, Host]) -> list[Finding], reusable by
the full validation engine. Data the BMC did not expose gives `inconclusive`, never `pass`.
Components name the part: slot, locator or serial, so a person knows which one to pull.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from burnin.hardware import Drive, HardwareInventory, known, normalize_wwn
from burnin.schema import Finding, Verdict, make_finding
from provision.acceptance.firmware import check_firmware_state
from provision.acceptance.posture import posture_findings
from provision.model.hosts import DiskId, Host
from provision.model.posture import BmcPosture
from provision.model.profile import DriveClass, DriveInterface, Profile

SOURCE = "redfish"
EVIDENCE_ID = "redfish.inventory"  # the Evidence every pre-OS finding rests on: the inventory read
CAPACITY_TOLERANCE = 0.001  # drives of one model differ by a few MB between vendors' firmware
# BMCs compute DIMM MiB their own way: 16384 (GiB), 16000 (GB as MB), 15625 (GB/1.024), 15258 (GB
# in MiB). 7.5% absorbs all of them; DIMM sizes step by 1.33x or more, so no wrong size passes.
DIMM_SIZE_TOLERANCE = 0.075


def dimm_size_ok(want_mib: int, got_mib: int) -> bool:
    return abs(got_mib - want_mib) <= want_mib * DIMM_SIZE_TOLERANCE


def finding(
    check: str, component: str, expected: object, observed: object, verdict: Verdict, required: bool = True
) -> Finding:
    observed_text = "not exposed by the BMC" if observed is None else str(observed)
    return make_finding(
        check, component, str(expected), observed_text, verdict, SOURCE, [EVIDENCE_ID], required
    )


def _eq(expected: object, observed: object) -> Verdict:
    if observed is None:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS if observed == expected else Verdict.FAIL


def _norm(text: str | None) -> str | None:
    return " ".join(text.split()).casefold() if text else None


def _counted(expected: int, observed: int, inv: HardwareInventory, *areas: str) -> Verdict:
    """A count, inconclusive where it is short of the mark and the BMC failed to answer for a part
    of `areas` (a member that answered 404, an error body): the missing one may be that part."""
    if observed != expected and any(a in inv.gaps for a in areas):
        return Verdict.INCONCLUSIVE
    return _eq(expected, observed)


def check_cpus(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    cpu = profile.cpu
    out = [
        finding(
            "cpu_sockets",
            "cpu",
            cpu.sockets,
            len(inv.cpus) if inv.cpus else None,
            _counted(cpu.sockets, len(inv.cpus), inv, "processors") if inv.cpus else Verdict.INCONCLUSIVE,
        )
    ]
    for c in inv.cpus:
        part = f"cpu:{c.socket}"
        out.append(finding("cpu_model", part, cpu.model, c.model, _eq(_norm(cpu.model), _norm(c.model))))
        out.append(
            finding("cpu_cores", part, cpu.cores_per_socket, c.cores, _eq(cpu.cores_per_socket, c.cores))
        )
    return out


def check_memory(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    mem, cpu = profile.memory, profile.cpu
    if not inv.dimms:
        return [finding("dimm_count", "memory", mem.dimm_count, None, Verdict.INCONCLUSIVE)]
    present = [d for d in inv.dimms if d.present]
    absent = [d for d in inv.dimms if not d.present]
    observed = f"{len(present)} populated" + (
        f"; empty slots: {', '.join(d.locator for d in absent)}"
        if absent and len(absent) <= 8
        else (f"; {len(absent)} empty slots" if absent else "")
    )
    if "memory" in inv.gaps:
        observed += f"; {inv.gaps['memory']}"
    out = [
        finding(
            "dimm_count",
            "memory",
            mem.dimm_count,
            observed,
            _counted(mem.dimm_count, len(present), inv, "memory"),
        )
    ]
    per_socket = mem.dimm_count // cpu.sockets
    sockets = sorted({d.socket for d in inv.dimms if d.socket is not None})
    unplaced = [d.locator for d in present if d.socket is None]
    if unplaced:  # iDRAC gives no MemoryLocation: the per-socket checks cannot be made for these
        out.append(
            finding(
                "dimm_count_socket",
                "memory:socket unknown",
                f"{per_socket} per socket",
                f"{len(unplaced)} DIMMs without a socket (no MemoryLocation): {', '.join(unplaced[:4])}"
                + (" ..." if len(unplaced) > 4 else ""),
                Verdict.INCONCLUSIVE,
            )
        )
    # With every slot meant to be filled, an empty slot is the missing DIMM itself (whether or not
    # the BMC says which socket it belongs to: Supermicro's Memory resources often do not).
    if per_socket == cpu.dimm_slots_per_socket:
        for d in absent:
            out.append(finding("dimm_present", f"dimm:{d.locator}", "populated", "empty slot", Verdict.FAIL))
    for s in sockets:
        mine = [d for d in present if d.socket == s]
        empty = [d.locator for d in absent if d.socket == s]
        if len(mine) != per_socket:
            if not empty and per_socket == cpu.dimm_slots_per_socket:
                # BMCs that list only installed DIMMs (iDRAC): name the channels nobody answers for.
                seen = {d.channel for d in mine}
                empty = [f"channel {c}" for c in range(1, per_socket + 1) if str(c) not in seen]
            out.append(
                finding(
                    "dimm_count_socket",
                    f"memory:socket {s}",
                    per_socket,
                    f"{len(mine)} populated (empty: {', '.join(empty) or 'none listed'})",
                    Verdict.FAIL,
                )
            )
    want_mib = mem.dimm_size_gib * 1024
    allowed = set(mem.configured_mts_allowed)
    for d in present:
        part = f"dimm:{d.locator}" + (f" (serial {d.serial})" if d.serial else "")
        out.append(
            finding(
                "dimm_size",
                part,
                f"{want_mib} MiB",
                d.size_mib and f"{d.size_mib} MiB",
                Verdict.INCONCLUSIVE
                if d.size_mib is None
                else (Verdict.PASS if dimm_size_ok(want_mib, d.size_mib) else Verdict.FAIL),
            )
        )
        out.append(finding("dimm_type", part, mem.type, d.type, _eq(mem.type, d.type)))
        speed = (
            Verdict.INCONCLUSIVE
            if d.configured_mts is None
            else (Verdict.PASS if d.configured_mts in allowed else Verdict.FAIL)
        )
        out.append(
            finding(
                "dimm_speed",
                part,
                f"one of {sorted(allowed)} MT/s",
                d.configured_mts and f"{d.configured_mts} MT/s",
                speed,
            )
        )
    return out


def check_gpus(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    g = profile.gpus
    if g is None:
        if inv.gpus:
            return [finding("gpu_count", "gpu", 0, len(inv.gpus), Verdict.WARN, required=False)]
        return []
    if not inv.gpus:
        # Zero GPUs proves absence only where the BMC shows its PCIe devices; many list no GPU at all.
        if inv.pcie and "processors" not in inv.gaps:
            return [finding("gpu_count", "gpu", g.count, "0 (none among the PCIe devices)", Verdict.FAIL)]
        return [finding("gpu_count", "gpu", g.count, None, Verdict.INCONCLUSIVE)]
    count = _counted(g.count, len(inv.gpus), inv, "processors", "pcie")
    out = [finding("gpu_count", "gpu", g.count, len(inv.gpus), count)]
    for gpu in inv.gpus:
        bits = [b for b in (gpu.slot, f"serial {gpu.serial}" if gpu.serial else None) if b]
        part = f"gpu:{gpu.index}" + (f" ({', '.join(bits)})" if bits else "")
        name = _norm(gpu.name)
        want = _norm(g.name) or ""
        if name is None:
            verdict = Verdict.INCONCLUSIVE
        elif name == want:
            verdict = Verdict.PASS
        else:  # BMCs shorten marketing names ("L40S" for "NVIDIA L40S"); the device id decides below
            verdict = Verdict.WARN if name in want or want in name else Verdict.FAIL
        out.append(finding("gpu_name", part, g.name, gpu.name, verdict))
        dev = gpu.pci_device_id.lower() if gpu.pci_device_id else None
        out.append(
            finding(
                "gpu_pci_device_id", part, g.pci_device_id.lower(), dev, _eq(g.pci_device_id.lower(), dev)
            )
        )
        gen, width = gpu.pcie_gen_current, gpu.pcie_width_current
        if gen is None or width is None:
            link = Verdict.INCONCLUSIVE
        else:
            link = Verdict.PASS if gen >= g.pcie_gen and width >= g.pcie_width else Verdict.FAIL
        seen = None if gen is None or width is None else f"Gen{gen} x{width}"
        out.append(finding("gpu_pcie_link", part, f"Gen{g.pcie_gen} x{g.pcie_width}", seen, link))
    return out


def _same_drive(listed: DiskId, drive: Drive) -> bool:
    """hosts.yaml names a drive by serial or WWN; the BMC writes the WWN its own way."""
    serial = known(listed.serial)
    if serial and serial == known(drive.serial):
        return True
    wwn = normalize_wwn(listed.wwn)
    return wwn is not None and wwn == normalize_wwn(drive.wwn)


def _role_of(drive: Drive, cls: DriveClass, host: Host | None) -> bool:
    if host is not None:
        listed = host.boot_disks if cls.role.value == "boot" else host.scratch_disks
        if listed:
            return any(_same_drive(d, drive) for d in listed)
    want = "NVMe" if cls.interface is DriveInterface.nvme else "SATA"
    return (drive.protocol or "").casefold() == want.casefold()


def check_drives(profile: Profile, inv: HardwareInventory, host: Host | None = None) -> list[Finding]:
    out: list[Finding] = []
    unknown = [d for d in inv.drives if d.protocol is None]
    for cls in profile.storage:
        role = f"storage:{cls.role.value}"
        mine = [d for d in inv.drives if _role_of(d, cls, host)]
        if unknown or not inv.drives or (len(mine) != cls.count and {"drives", "storage"} & set(inv.gaps)):
            verdict = Verdict.INCONCLUSIVE  # protocol not exposed: cannot tell boot from scratch
            observed = (
                f"{len(mine)} matched; {len(unknown)} drives without a protocol; "
                + "; ".join(inv.gaps.get(a, "") for a in ("drives", "storage") if a in inv.gaps)
                if inv.drives
                else None
            )
        else:
            verdict, observed = _eq(cls.count, len(mine)), f"{len(mine)} {cls.interface.value} drives"
        out.append(finding("drive_count", role, f"{cls.count} x {cls.interface.value}", observed, verdict))
        for d in mine:
            part = f"drive:{d.name}" + (f" (serial {d.serial})" if d.serial else "")
            if d.capacity_bytes is None:
                size = Verdict.INCONCLUSIVE
            else:
                size = (
                    Verdict.PASS
                    if abs(d.capacity_bytes - cls.capacity_bytes) <= cls.capacity_bytes * CAPACITY_TOLERANCE
                    else Verdict.FAIL
                )
            out.append(
                finding(
                    "drive_capacity",
                    part,
                    f"{cls.capacity_bytes} bytes ({cls.seed_capacity})",
                    d.capacity_bytes and f"{d.capacity_bytes} bytes",
                    size,
                )
            )
    return out


def check_nics(profile: Profile, inv: HardwareInventory, host: Host | None = None) -> list[Finding]:
    out: list[Finding] = []
    macs = {i.name: i.mac.lower() for i in host.interfaces} if host else {}
    by_mac = {n.mac: n for n in inv.nics if n.mac}
    for nic in profile.network:
        part = f"nic:{nic.name}"
        mac = macs.get(nic.name)
        found = by_mac.get(mac) if mac else next((n for n in inv.nics if n.name == nic.name), None)
        if found is None:
            # Without a MAC in hosts.yaml an interface is found by name only, which BMCs rarely match.
            verdict = Verdict.FAIL if inv.nics and mac else Verdict.INCONCLUSIVE
            out.append(
                finding(
                    "nic_present",
                    part,
                    mac or "present",
                    "absent" if inv.nics else None,
                    verdict,
                    required=nic.required,
                )
            )
            continue
        out.append(
            finding(
                "nic_present",
                f"{part} ({found.mac})",
                mac or "present",
                found.mac,
                Verdict.PASS,
                required=nic.required,
            )
        )
        want = nic.speed_gbps * 1000
        speed = (
            Verdict.INCONCLUSIVE
            if not found.speed_mbps
            else (Verdict.PASS if found.speed_mbps >= want else Verdict.FAIL)
        )
        out.append(
            finding(
                "nic_speed",
                f"{part} ({found.mac})",
                f">= {want} Mb/s",
                found.speed_mbps and f"{found.speed_mbps} Mb/s",
                speed,
                required=nic.required,
            )
        )
    return out


def check_system(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    vendor = inv.system.manufacturer
    want = profile.chassis.vendor
    if vendor is None:
        verdict = Verdict.INCONCLUSIVE
    else:
        verdict = Verdict.PASS if want.casefold() in vendor.casefold() else Verdict.WARN
    return [finding("system_vendor", "system", want, vendor, verdict, required=False)]


_BAD_STATES = {"UnavailableOffline": Verdict.FAIL, "Disabled": Verdict.WARN, "Quiesced": Verdict.WARN}
_HEALTH = {"Critical": Verdict.FAIL, "Warning": Verdict.WARN}


def check_health(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    """Every part's Status as the BMC states it: Critical fails, Warning warns, an offline part
    fails. One finding per part that is not well, one summary for those that are."""
    out: list[Finding] = []
    for s in inv.health:
        kind = s.part.split(":", 1)[0]
        verdicts = [_HEALTH.get(s.health or "", Verdict.PASS), _HEALTH.get(s.rollup or "", Verdict.PASS)]
        # A port nobody cabled, a redundancy policy off: "Disabled" says nothing of their health.
        if (
            kind not in ("nic", "pcie", "psu_redundancy", "storage", "controller")
            or s.state == "UnavailableOffline"
        ):
            verdicts.append(_BAD_STATES.get(s.state or "", Verdict.PASS))
        verdict = Verdict.worst(verdicts)
        if verdict is Verdict.PASS:
            continue
        said = [f"Health {s.health}" if s.health else "", f"HealthRollup {s.rollup}" if s.rollup else ""]
        said += [f"State {s.state}" if s.state else "", f"BMC says: {s.message}" if s.message else ""]
        part = s.part + (f" ({s.location})" if s.location else "")
        out.append(finding("part_health", part, "OK", ", ".join(w for w in said if w), verdict))
    if not out:  # one finding for the parts that are well
        kinds = ", ".join(sorted({s.part.split(":", 1)[0] for s in inv.health}))
        seen = f"{len(inv.health)} parts OK ({kinds})" if inv.health else None
        verdict = Verdict.PASS if inv.health else Verdict.INCONCLUSIVE
        out.append(finding("part_health", "node", "every part OK", seen, verdict, required=False))
    return out


def check_psus(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    """PSU count, capacity and health against `power.psus`, and whether the PSUs left once the
    redundancy is held back still carry the full burn (CPUs and GPUs at their limits)."""
    want = profile.power.psus
    if want is None:
        return []
    if not inv.psus:
        return [finding("psu_count", "power", want.count, None, Verdict.INCONCLUSIVE)]
    out = [
        finding(
            "psu_count", "power", want.count, len(inv.psus), _counted(want.count, len(inv.psus), inv, "power")
        )
    ]
    for psu in inv.psus:
        part = f"psu:{psu.name}" + (f" ({psu.location})" if psu.location else "")
        cap = psu.capacity_w
        verdict = (
            Verdict.INCONCLUSIVE
            if cap is None
            else (Verdict.PASS if cap >= want.capacity_w else Verdict.FAIL)
        )
        seen = None if cap is None else f"{cap:g} W"
        out.append(finding("psu_capacity", part, f">= {want.capacity_w} W", seen, verdict))
    good = [p for p in inv.psus if p.health == "OK" and p.state not in ("UnavailableOffline", "Disabled")]
    unknown = [p for p in inv.psus if p.health is None]
    if len(good) >= want.count:
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE if len(good) + len(unknown) >= want.count else Verdict.FAIL
    bad = [f"{p.name} {p.health or 'health unknown'}" for p in inv.psus if p not in good]
    out.append(
        finding(
            "psu_redundancy", "power", f"{want.count} PSUs healthy ({want.redundancy})",
            f"{len(good)} of {len(inv.psus)} healthy" + (f": {', '.join(bad)}" if bad else ""), verdict,
        )
    )  # fmt: skip
    caps = [p.capacity_w for p in good if p.capacity_w is not None]
    need, carrying = profile.full_burn_w, want.carrying
    if len(caps) < carrying:
        usable, verdict = None, Verdict.INCONCLUSIVE if unknown or len(good) >= carrying else Verdict.FAIL
    else:
        usable = carrying * min(caps)
        verdict = Verdict.PASS if usable >= need else Verdict.FAIL
    out.append(
        finding(
            "psu_headroom", "power", f">= {need} W (full burn) on {carrying} PSUs, {want.redundancy}",
            None if usable is None else f"{carrying} x {min(caps):g} W = {usable:g} W", verdict,
        )
    )  # fmt: skip
    return out


CHECKS: tuple[Callable[[Profile, HardwareInventory], list[Finding]], ...] = (
    check_system,
    check_cpus,
    check_memory,
    check_gpus,
    check_psus,
    check_health,
    check_firmware_state,
)


def inspect_findings(
    profile: Profile, inv: HardwareInventory, host: Host | None = None, posture: BmcPosture | None = None
) -> list[Finding]:
    out = [f for check in CHECKS for f in check(profile, inv)]
    out += check_drives(profile, inv, host) + check_nics(profile, inv, host)
    out += posture_findings(posture) if posture is not None else []  # warnings: IPMI, HTTP, accounts, certs
    seen: dict[str, int] = {}
    for i, f in enumerate(out):  # two parts a BMC names alike still get a finding each
        seen[f.id] = seen.get(f.id, 0) + 1
        if seen[f.id] > 1:
            out[i] = replace(f, id=f"{f.id}#{seen[f.id]}")
    return out


def overall(findings: list[Finding]) -> Verdict:
    return Verdict.worst([f.verdict for f in findings])
