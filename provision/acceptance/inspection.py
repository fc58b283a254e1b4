"""Pre-OS validation: a Redfish inventory against the host's profile, as Findings. Pure.

Each check is a small function (Profile, HardwareInventory[, Host]) -> list[Finding], reusable by
the full validation engine. Data the BMC did not expose gives `inconclusive`, never `pass`.
Components name the part: slot, locator or serial, so a person knows which one to pull.
"""

from __future__ import annotations

from collections.abc import Callable

from burnin.hardware import Drive, HardwareInventory, normalize_wwn
from burnin.schema import Finding, Verdict, make_finding
from provision.model.hosts import DiskId, Host
from provision.model.profile import DriveClass, DriveInterface, Profile

SOURCE = "redfish"
EVIDENCE_ID = "redfish.inventory"  # the Evidence every pre-OS finding rests on: the inventory read
CAPACITY_TOLERANCE = 0.001  # drives of one model differ by a few MB between vendors' firmware


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


def check_cpus(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    cpu = profile.cpu
    out = [
        finding(
            "cpu_sockets",
            "cpu",
            cpu.sockets,
            len(inv.cpus) if inv.cpus else None,
            _eq(cpu.sockets, len(inv.cpus)) if inv.cpus else Verdict.INCONCLUSIVE,
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
    out = [finding("dimm_count", "memory", mem.dimm_count, observed, _eq(mem.dimm_count, len(present)))]
    per_socket = mem.dimm_count // cpu.sockets
    sockets = sorted({d.socket for d in inv.dimms if d.socket is not None})
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
                _eq(want_mib, d.size_mib),
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
    out = [finding("gpu_count", "gpu", g.count, len(inv.gpus), _eq(g.count, len(inv.gpus)))]
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
    if listed.serial and drive.serial and listed.serial.strip() == drive.serial.strip():
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
        if unknown or not inv.drives:
            verdict = Verdict.INCONCLUSIVE  # protocol not exposed: cannot tell boot from scratch
            observed = (
                f"{len(mine)} matched; {len(unknown)} drives without a protocol" if inv.drives else None
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


CHECKS: tuple[Callable[[Profile, HardwareInventory], list[Finding]], ...] = (
    check_system,
    check_cpus,
    check_memory,
    check_gpus,
)


def inspect_findings(profile: Profile, inv: HardwareInventory, host: Host | None = None) -> list[Finding]:
    out = [f for check in CHECKS for f in check(profile, inv)]
    return out + check_drives(profile, inv, host) + check_nics(profile, inv, host)


def overall(findings: list[Finding]) -> Verdict:
    return Verdict.worst([f.verdict for f in findings])
