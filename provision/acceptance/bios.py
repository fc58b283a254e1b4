"""BIOS settings as findings: the profile's `bios:` block against what the BMC reports, the names
and values checked against the BMC's AttributeRegistry, and the in-OS cross-checks (threads per
core vs SMT, NUMA nodes vs NPS x sockets, IOMMU groups when the IOMMU is on). Pure.

An attribute the BMC does not report, a common setting with no attribute on this vendor, a BMC
without a Bios resource: each is `inconclusive`, never `pass`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from burnin.hardware import HardwareInventory
from burnin.schema import Finding, Verdict, make_finding
from provision.model.bios import EVIDENCE_ID, BiosSettings, BiosValue, Desired, RegistryEntry, same_value
from provision.model.profile import Profile

SOURCE = "redfish"
NOT_REPORTED = "not reported by the BMC"
HIDDEN = "(hidden)"


def is_secret(name: str, registry: Mapping[str, RegistryEntry] | None = None) -> bool:
    """A BIOS password (setup, system, HDD): its value is never shown, stored or compared aloud."""
    entry = (registry or {}).get(name)
    return "password" in name.casefold() or (
        entry is not None and (entry.type or "").casefold() == "password"
    )


def redacted(
    values: Mapping[str, Any], registry: Mapping[str, RegistryEntry] | None = None
) -> dict[str, Any]:
    return {k: (HIDDEN if is_secret(k, registry) else v) for k, v in values.items()}


def _f(
    check: str,
    component: str,
    expected: object,
    observed: object,
    verdict: Verdict,
    source: str = SOURCE,
    evidence: str = EVIDENCE_ID,
) -> Finding:
    return make_finding(check, component, str(expected), str(observed), verdict, source, [evidence])


def _shown(value: object) -> str:
    return "(empty)" if value == "" else str(value)


def _want(name: str, value: BiosValue, desired: Desired) -> str:
    came = desired.origin.get(name, "attributes")
    shown = HIDDEN if is_secret(name) else _shown(value)
    return shown if came == "attributes" else f"{shown} ({came}: set in the profile)"


def registry_problem(entry: RegistryEntry | None, value: BiosValue, registry: str) -> tuple[str, str] | None:
    """(expected, observed) when the registry refuses `value` for this attribute, else None."""
    if entry is None:
        return "an attribute the BMC's registry lists", f"not in {registry}"
    if entry.read_only or entry.immutable:
        return "a writable attribute", f"{'read-only' if entry.read_only else 'immutable'} in {registry}"
    kind = (entry.type or "").casefold()
    if kind == "enumeration" and entry.values and str(value) not in entry.values:
        return f"one of {', '.join(entry.values)}", f"{_shown(value)} (not a value of {registry})"
    if kind == "boolean" and not isinstance(value, bool):
        return "true or false", f"{_shown(value)} (the registry types it Boolean)"
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "an integer", f"{_shown(value)} (the registry types it Integer)"
        if (entry.lower is not None and value < entry.lower) or (
            entry.upper is not None and value > entry.upper
        ):
            return f"{entry.lower}<=x<={entry.upper}", f"{value} (out of the registry's range)"
    return None


def check_registry(
    desired: Desired, registry: Mapping[str, RegistryEntry] | None, registry_name: str | None
) -> list[Finding]:
    """`bios_attribute_valid`, failing, for each desired name or value the registry refuses (none
    when every one is valid, or when the BMC offers no registry to check against)."""
    if registry is None:
        return []
    name = registry_name or "the AttributeRegistry"
    out = []
    for attr, value in desired.attributes.items():
        problem = registry_problem(registry.get(attr), value, name)
        if problem is not None:
            expected, observed = problem
            out.append(_f("bios_attribute_valid", f"bios:{attr}", expected, observed, Verdict.FAIL))
    return out


def check_settings(
    desired: Desired,
    current: Mapping[str, Any] | None,
    pending: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """`bios_setting` per desired attribute: pass when the BIOS runs with it, fail when it does not
    (saying so when the change is pending, to apply at the next reset), inconclusive when unread."""
    out: list[Finding] = []
    for common, why in desired.unmapped.items():
        out.append(
            _f("bios_setting", f"bios:{common}", "a vendor attribute for it", why, Verdict.INCONCLUSIVE)
        )
    if current is None:
        if desired.attributes:
            out.append(
                _f(
                    "bios_setting",
                    "bios",
                    ", ".join(f"{k}={_shown(v)}" for k, v in desired.attributes.items()),
                    "the BMC exposes no Bios resource for this system",
                    Verdict.INCONCLUSIVE,
                )
            )
        return out
    for attr, value in desired.attributes.items():
        want = _want(attr, value, desired)
        if is_secret(attr):
            shown = HIDDEN if attr in current else NOT_REPORTED
            verdict = Verdict.INCONCLUSIVE  # a BMC reports no password; set one through the vendor's tools
            out.append(
                _f("bios_setting", f"bios:{attr}", want, f"{shown} (a password is never compared)", verdict)
            )
            continue
        if current.get(attr) is None:  # absent, or null: iDRAC shows some attributes as null
            out.append(_f("bios_setting", f"bios:{attr}", want, NOT_REPORTED, Verdict.INCONCLUSIVE))
            continue
        got = current[attr]
        if same_value(value, got):
            out.append(_f("bios_setting", f"bios:{attr}", want, _shown(got), Verdict.PASS))
            continue
        observed = _shown(got)
        if pending and attr in pending and same_value(value, pending[attr]):
            observed += f" (pending: {_shown(pending[attr])}, applies at the next reset)"
        out.append(_f("bios_setting", f"bios:{attr}", want, observed, Verdict.FAIL))
    return out


def changes_needed(desired: Desired, current: Mapping[str, Any]) -> dict[str, BiosValue]:
    """The desired attributes the BIOS does not run with now (what `--apply` PATCHes)."""
    return {k: v for k, v in desired.attributes.items() if not same_value(v, current.get(k))}


# -- in-OS cross-checks --------------------------------------------------------------------------


def _threads_per_core(inv: HardwareInventory) -> int | None:
    cores = sum(c.cores or 0 for c in inv.cpus)
    threads = sum(c.threads or 0 for c in inv.cpus)
    if cores and threads and all(c.cores and c.threads for c in inv.cpus):
        return threads // cores
    if cores and inv.logical_cpus and all(c.cores for c in inv.cpus):
        return inv.logical_cpus // cores
    return None


def check_in_os(settings: BiosSettings | None, sockets: int, inv: HardwareInventory) -> list[Finding]:
    """What the OS shows of the BIOS settings the profile asks for (none when it asks for none)."""
    if settings is None:
        return []
    out: list[Finding] = []
    if settings.smt is not None:
        want = 2 if settings.smt else 1
        got = _threads_per_core(inv)
        verdict = Verdict.INCONCLUSIVE if got is None else (Verdict.PASS if got == want else Verdict.FAIL)
        out.append(
            _f(
                "bios_smt_in_os",
                "cpu",
                f"{want} thread(s) per core (smt: {str(settings.smt).lower()})",
                "(not reported)" if got is None else f"{got} thread(s) per core",
                verdict,
                "os",
                "inventory.lscpu",
            )
        )
    if settings.nps is not None:
        want = 1 if settings.nps == 0 else settings.nps * sockets
        got = inv.numa_nodes
        verdict = Verdict.INCONCLUSIVE if got is None else (Verdict.PASS if got == want else Verdict.FAIL)
        out.append(
            _f(
                "bios_nps_in_os",
                "numa",
                f"{want} NUMA node(s) (nps: {settings.nps} x {sockets} socket(s))",
                "(not reported)" if got is None else f"{got} NUMA node(s)",
                verdict,
                "os",
                "inventory.lscpu",
            )
        )
    if settings.iommu:
        groups = inv.iommu_groups
        verdict = Verdict.INCONCLUSIVE if groups is None else (Verdict.PASS if groups > 0 else Verdict.FAIL)
        observed = (
            "(not reported)" if groups is None else f"{groups} IOMMU group(s) in /sys/kernel/iommu_groups"
        )
        out.append(
            _f(
                "bios_iommu_in_os",
                "iommu",
                "IOMMU groups present (iommu: true)",
                observed,
                verdict,
                "os",
                "sysfs:/sys/kernel/iommu_groups",
            )
        )
    return out


def check_bios_in_os(profile: Profile, inv: HardwareInventory) -> list[Finding]:
    """The validation engine's entry: the in-OS cross-checks of this profile's `bios:` block."""
    return check_in_os(profile.bios, profile.cpu.sockets, inv)


__all__ = [
    "HIDDEN",
    "changes_needed",
    "check_bios_in_os",
    "check_in_os",
    "check_registry",
    "check_settings",
    "is_secret",
    "redacted",
    "registry_problem",
]
