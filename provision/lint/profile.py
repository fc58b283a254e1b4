"""Lint of one hardware profile: its names against the taxonomy, its numbers against each other. Pure."""

from __future__ import annotations

from provision.lint import plan as lint_plan
from provision.lint.finding import Findings
from provision.model import taxonomy as tx
from provision.model.checks import evidence_class, is_known_check
from provision.model.profile import Platform, Profile
from provision.model.yamlfile import Document

# What each receptacle is rated for (A). C19/C20 is 16 A under IEC (20 A under UL; take the lower).
RECEPTACLE_AMPS: dict[str, int] = {
    "NEMA 5-15R": 15,
    "NEMA 5-20R": 20,
    "NEMA 6-15R": 15,
    "NEMA 6-20R": 20,
    "NEMA 6-30R": 30,
    "NEMA L6-20R": 20,
    "NEMA L6-30R": 30,
    "IEC C13": 10,
    "IEC C19": 16,
    "IEC C20": 16,
}
SEED_RESERVED_CPU_PCT = 10.0
SEED_RESERVED_MEMORY_MIB = 1024
SEED_OS = ("Rocky Linux", "9.3")


def check(p: Profile, doc: Document, out: Findings) -> None:
    _taxonomy(p, doc, out)
    _memory(p, doc, out)
    _gpus(p, doc, out)
    _power(p, doc, out)
    _waivers(p, doc, out)
    _seed_capacity(p, doc, out)
    lint_plan.check(p, doc, out)


def _waivers(p: Profile, doc: Document, out: Findings) -> None:
    """Each `acceptance.not_required` entry names a check the engine or the agent can emit, and
    waives no evidence class (suite completion, stress results, ECC, XIDs) outside a lab profile."""
    own = [f.check for f in p.acceptance.floors] + [c.check for c in p.acceptance.counters]
    for i, w in enumerate(p.acceptance.not_required):
        loc = ("acceptance", "not_required", i, "check")
        if not is_known_check(w.check, own):
            out.error(
                "waiver-unknown-check",
                doc,
                loc,
                f"{w.check!r} is no check the validation engine or the agent emits: it would waive nothing",
            )
        elif (cls := evidence_class(w.check)) and not p.lab:
            out.error(
                "waiver-evidence-class",
                doc,
                loc,
                f"{w.check!r} is evidence ({cls}) that only a profile marked `lab: true` may waive",
            )


def _taxonomy(p: Profile, doc: Document, out: Findings) -> None:
    circle = _rack_circle(p.platform, doc, out)
    _pdu(p, circle, doc, out)
    _circle_label(p.platform, circle, doc, out)
    _namespace(p.platform, circle, doc, out)
    _pool(p.platform, circle, doc, out)
    _taints(p, doc, out)
    _switches(p, doc, out)
    _seed_platform(p.platform, doc, out)


def _rack_circle(pf: Platform, doc: Document, out: Findings) -> int:
    """The host's circle: the rack's when the rack name parses (the other names must agree with it)."""
    problem = tx.rack_problem(pf.rack)
    rack = tx.parse_rack(pf.rack)
    if problem:
        out.error("taxonomy.rack", doc, ("platform", "rack"), f"expected {problem}, got {pf.rack!r}")
    elif rack and pf.circle != rack.circle:
        out.error(
            "taxonomy.circle",
            doc,
            ("platform", "circle"),
            f"expected {rack.circle} (the circle of rack {pf.rack}), got {pf.circle}",
        )
    return rack.circle if rack else pf.circle


def _pdu(p: Profile, circle: int, doc: Document, out: Findings) -> None:
    pdu_circle = tx.pdu_circle(p.power.pdu)
    if pdu_circle is None:
        out.error("taxonomy.pdu", doc, ("power", "pdu"), f"expected {tx.PDU_GRAMMAR}, got {p.power.pdu!r}")
    elif pdu_circle != circle:
        out.error(
            "taxonomy.pdu-circle",
            doc,
            ("power", "pdu"),
            f"expected a PDU of circle {circle} (inferno-pdu-circle{circle}-<k>), got {p.power.pdu!r}",
        )


def _circle_label(pf: Platform, circle: int, doc: Document, out: Findings) -> None:
    label = pf.labels.get(tx.CIRCLE_LABEL)
    if label is None:
        out.error(
            "taxonomy.label",
            doc,
            ("platform", "labels"),
            f"expected the label {tx.CIRCLE_LABEL}={circle}, got no {tx.CIRCLE_LABEL} label",
        )
    elif label != str(circle):
        out.error(
            "taxonomy.label-circle",
            doc,
            ("platform", "labels", tx.CIRCLE_LABEL),
            f"expected {tx.CIRCLE_LABEL}={circle} (rack {pf.rack}), got {tx.CIRCLE_LABEL}={label}",
        )


def _namespace(pf: Platform, circle: int, doc: Document, out: Findings) -> None:
    ns_circle = tx.namespace_circle(pf.namespace)
    if ns_circle is None:
        out.error(
            "taxonomy.namespace",
            doc,
            ("platform", "namespace"),
            f"expected {tx.NAMESPACE_GRAMMAR}, got {pf.namespace!r}",
        )
    elif ns_circle != circle:
        out.error(
            "taxonomy.namespace-circle",
            doc,
            ("platform", "namespace"),
            f"expected {tx.namespace_for(circle)} (rack {pf.rack}), got {pf.namespace!r}",
        )


def _pool(pf: Platform, circle: int, doc: Document, out: Findings) -> None:
    if not tx.is_pool_name(pf.pool):
        out.error("taxonomy.pool", doc, ("platform", "pool"), f"expected {tx.POOL_GRAMMAR}, got {pf.pool!r}")
    elif pf.pool in tx.SEED_POOLS and tx.SEED_POOLS[pf.pool] != circle:
        out.error(
            "taxonomy.pool-circle",
            doc,
            ("platform", "pool"),
            f"expected a pool of circle {circle}; {pf.pool} selects {tx.CIRCLE_LABEL}="
            f"{tx.SEED_POOLS[pf.pool]} in the seed, got {pf.pool!r}",
        )


def _switches(p: Profile, doc: Document, out: Findings) -> None:
    for i, nic in enumerate(p.network):
        if nic.peer is not None and not tx.is_switch_name(nic.peer):
            out.error(
                "taxonomy.switch",
                doc,
                ("network", i, "peer"),
                f"expected {tx.SWITCH_GRAMMAR}, got {nic.peer!r}",
            )


def _seed_platform(pf: Platform, doc: Document, out: Findings) -> None:
    """Departures from the seed's node reservations and OS: allowed, but said."""
    if pf.reserved_cpu_pct != SEED_RESERVED_CPU_PCT:
        out.warning(
            "seed.reserved-cpu",
            doc,
            ("platform", "reserved_cpu_pct"),
            f"the seed reserves {SEED_RESERVED_CPU_PCT:g}% of the CPUs for node daemons; "
            f"this profile reserves {pf.reserved_cpu_pct:g}%",
        )
    if pf.reserved_memory_mib != SEED_RESERVED_MEMORY_MIB:
        out.warning(
            "seed.reserved-memory",
            doc,
            ("platform", "reserved_memory_mib"),
            f"the seed reserves {SEED_RESERVED_MEMORY_MIB} MiB of memory for node daemons; "
            f"this profile reserves {pf.reserved_memory_mib} MiB",
        )
    if (pf.os.name, pf.os.version) != SEED_OS:
        out.warning(
            "seed.os",
            doc,
            ("platform", "os"),
            f"the seed runs {SEED_OS[0]} {SEED_OS[1]}; this profile installs {pf.os.name} {pf.os.version}",
        )


def _taints(p: Profile, doc: Document, out: Findings) -> None:
    pf = p.platform
    keys = [t.key for t in pf.taints]
    for i, taint in enumerate(pf.taints):
        loc = ("platform", "taints", i)
        if not tx.TAINT_KEY_RE.match(taint.key):
            out.error("taxonomy.taint", doc, (*loc, "key"), f"expected inferno/<word>, got {taint.key!r}")
        elif taint.key in tx.SEED_TAINTS:
            value, effect = tx.SEED_TAINTS[taint.key]
            if (taint.value, str(taint.effect)) != (value, effect):
                out.error(
                    "taxonomy.taint-seed",
                    doc,
                    loc,
                    f"expected {taint.key}={value}:{effect} as the seed gives it, "
                    f"got {taint.key}={taint.value}:{taint.effect}",
                )
        if keys.count(taint.key) > 1 and keys.index(taint.key) != i:
            out.error(
                "taxonomy.taint-duplicate", doc, loc, f"expected each taint key once, got {taint.key} again"
            )
    wanted = tx.TAINT_OF_POOL.get(pf.pool)
    if wanted and wanted not in keys:
        value, effect = tx.SEED_TAINTS[wanted]
        out.error(
            "taxonomy.taint-missing",
            doc,
            ("platform", "taints"),
            f"expected {wanted}={value}:{effect} on every node of {pf.pool}, got no such taint",
        )
    if p.gpus is not None and p.gpus.resource_name != tx.GPU_RESOURCE:
        out.error(
            "taxonomy.gpu-resource",
            doc,
            ("gpus", "resource_name"),
            f"expected {tx.GPU_RESOURCE} (GPU nodes expose it in the seed), got {p.gpus.resource_name!r}",
        )


def _memory(p: Profile, doc: Document, out: Findings) -> None:
    cpu, m = p.cpu, p.memory
    if cpu.boost_mhz < cpu.base_mhz:
        out.error(
            "cpu.clocks",
            doc,
            ("cpu", "boost_mhz"),
            f"expected a boost clock >= the base clock {cpu.base_mhz} MHz, got {cpu.boost_mhz} MHz",
        )
    _memory_population(p, doc, out)
    _memory_bandwidth(p, doc, out)
    _memory_speed(p, doc, out)
    if m.triad_warn_below_pct < m.triad_fail_below_pct:
        out.error(
            "memory.triad",
            doc,
            ("memory", "triad_warn_below_pct"),
            f"expected a warn threshold >= the fail threshold {m.triad_fail_below_pct:g}%, "
            f"got {m.triad_warn_below_pct:g}%",
        )


def _memory_population(p: Profile, doc: Document, out: Findings) -> None:
    """The DIMMs against the CPU's channels and the board's slots."""
    cpu, m = p.cpu, p.memory
    slots = cpu.sockets * cpu.dimm_slots_per_socket
    if m.populated_channels_per_socket > cpu.memory_channels_per_socket:
        out.error(
            "memory.channels",
            doc,
            ("memory", "populated_channels_per_socket"),
            f"expected at most the {cpu.memory_channels_per_socket} channels of the {cpu.model}, "
            f"got {m.populated_channels_per_socket}",
        )
    if m.dimm_count % cpu.sockets:
        out.warning(
            "memory.unbalanced",
            doc,
            ("memory", "dimm_count"),
            f"{m.dimm_count} DIMMs do not split evenly over {cpu.sockets} sockets: one socket gets fewer "
            "channels and NUMA bandwidth is unbalanced",
        )
    per_socket = m.dimm_count // cpu.sockets
    if m.dimm_count > slots:
        fit = slots * m.dimm_size_gib
        out.warning(
            "memory.dimm-slots",
            doc,
            ("memory", "dimm_count"),
            f"the seed's {m.dimm_count} DIMMs ({m.total_gib} GiB) cannot be installed: {cpu.sockets} "
            f"socket(s) x {cpu.dimm_slots_per_socket} slots = {slots} slots "
            f"({cpu.memory_channels_per_socket} channels per socket, 1 DIMM per channel); at most "
            f"{slots} x {m.dimm_size_gib} GiB = {fit} GiB fit, and slots wired to an empty socket are "
            "dead. Expect the installed DIMMs, not the seed's count, at inspection",
        )
    elif per_socket < m.populated_channels_per_socket:
        out.error(
            "memory.populated",
            doc,
            ("memory", "populated_channels_per_socket"),
            f"expected at most {per_socket} populated channels ({m.dimm_count} DIMMs over {cpu.sockets} "
            f"socket(s)), got {m.populated_channels_per_socket}",
        )


def _memory_bandwidth(p: Profile, doc: Document, out: Findings) -> None:
    cpu, m = p.cpu, p.memory
    if m.populated_channels_per_socket >= cpu.memory_channels_per_socket:
        return
    full = m.configured_mts_expected * 8 * cpu.memory_channels_per_socket * cpu.sockets / 1000
    share = m.populated_channels_per_socket / cpu.memory_channels_per_socket
    out.warning(
        "memory.bandwidth",
        doc,
        ("memory", "populated_channels_per_socket"),
        f"{m.dimm_count} DIMMs over {cpu.sockets} socket(s) fill {m.populated_channels_per_socket} of "
        f"{cpu.memory_channels_per_socket} channels per socket: peak {p.memory_peak_gbs:.1f} GB/s at "
        f"{m.configured_mts_expected} MT/s, {_fraction(share)} of the {full:.1f} GB/s all channels "
        "would give; the burn-in expects the lower figure",
    )


def _memory_speed(p: Profile, doc: Document, out: Findings) -> None:
    """The configured speed against the allowed list and the DIMMs' rating."""
    m = p.memory
    if m.configured_mts_expected not in m.configured_mts_allowed:
        out.error(
            "memory.speed",
            doc,
            ("memory", "configured_mts_expected"),
            f"expected one of the allowed configured speeds {list(m.configured_mts_allowed)}, "
            f"got {m.configured_mts_expected}",
        )
    for i, mts in enumerate(m.configured_mts_allowed):
        if mts > m.rated_mts:
            out.error(
                "memory.speed-rated",
                doc,
                ("memory", "configured_mts_allowed", i),
                f"expected at most the DIMMs' rated {m.rated_mts} MT/s, got {mts}",
            )
    if m.configured_mts_expected < m.rated_mts:
        out.info(
            "memory.speed-configured",
            doc,
            ("memory", "configured_mts_expected"),
            f"DIMMs rated {m.rated_mts} MT/s train at {m.configured_mts_expected} MT/s on the {p.cpu.model}; "
            "validation checks the configured speed, not the rating",
        )


def _fraction(share: float) -> str:
    named = {1 / 3: "a third", 1 / 2: "half", 2 / 3: "two thirds", 1 / 4: "a quarter"}
    for value, words in named.items():
        if abs(share - value) < 1e-9:
            return f"{words} ({share:.0%})"
    return f"{share:.0%}"


def _gpus(p: Profile, doc: Document, out: Findings) -> None:
    g = p.gpus
    if g is None:
        return
    if g.count > p.chassis.gpu_slots:
        out.error(
            "gpus.slots",
            doc,
            ("gpus", "count"),
            f"expected at most the {p.chassis.gpu_slots} GPU slots of the {p.chassis.model}, got {g.count}",
        )
    if g.name != g.seed_name:
        out.info(
            "gpus.name",
            doc,
            ("gpus", "name"),
            f"the seed's {g.seed_name!r} is pinned to {g.name!r} "
            f"({g.power_limit_w} W, PCI {g.pci_device_id})",
        )


def _power(p: Profile, doc: Document, out: Findings) -> None:
    pw = p.power
    rating = RECEPTACLE_AMPS.get(pw.receptacle)
    if rating is None:
        out.warning(
            "power.receptacle",
            doc,
            ("power", "receptacle"),
            f"unknown receptacle {pw.receptacle!r}: its rating cannot be checked "
            f"(known: {', '.join(RECEPTACLE_AMPS)})",
        )
    elif pw.circuit_amps > rating:
        out.error(
            "power.receptacle-rating",
            doc,
            ("power", "circuit_amps"),
            f"expected at most the {rating} A a {pw.receptacle} is rated for, got {pw.circuit_amps} A",
        )
    burn = p.full_burn_w
    parts = f"{p.cpu.sockets} x {p.cpu.tdp_w} W CPU"
    if p.gpus:
        parts += f" + {p.gpus.count} x {p.gpus.power_limit_w} W GPU"
    parts += f" + {pw.other_draw_w} W other"
    if pw.expected_draw_w > pw.continuous_w:
        out.error(
            "power.feed",
            doc,
            ("power", "expected_draw_w"),
            f"expected at most the feed's continuous {pw.continuous_w:.0f} W ({pw.circuit_amps} A x "
            f"{pw.voltage_v} V x {pw.continuous_pct:g}%), got {pw.expected_draw_w} W",
        )
    cap = p.soak_cpu_load_pct
    if burn > pw.expected_draw_w:
        advice = (
            "size PSUs and cooling for the burn, not for the seed's figure"
            if not p.gpus
            else "the feed carries the whole burn: the soak loads CPUs and GPUs together at full load"
            if cap == 100
            else f"the soak loads the GPUs fully and the CPUs at {cap}% (the feed's share)"
        )
        out.warning(
            "power.expected-draw",
            doc,
            ("power", "expected_draw_w"),
            f"a full burn draws about {parts} = {burn} W, above the seed's {pw.expected_draw_w} W; "
            f"the feed's continuous rating is {pw.continuous_w:.0f} W; {advice}",
        )
    if cap == 0:
        out.error(
            "power.burn-feed",
            doc,
            ("power", "circuit_amps"),
            f"expected the GPUs' burn and the rest of the box within the feed's continuous "
            f"{pw.continuous_w:.0f} W ({pw.circuit_amps} A x {pw.voltage_v} V x {pw.continuous_pct:g}%), "
            f"got {p.gpu_burn_w + pw.other_draw_w} W before any CPU load",
        )


def _seed_capacity(p: Profile, doc: Document, out: Findings) -> None:
    """Each storage class' `seed_capacity` is a capacity ("3.84 TB", "1 GiB") within 3% of its
    `capacity_bytes` (drives report a little over their label, never a different size)."""
    import re

    units = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
    for i, cls in enumerate(p.storage):
        loc = ("storage", i, "seed_capacity")
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?)B\s*", cls.seed_capacity, re.IGNORECASE)
        if m is None:
            want = 'a capacity such as "3.84 TB", "960 GB" or "1 GiB"'
            out.error("storage.seed-capacity", doc, loc, f"expected {want}, got {cls.seed_capacity!r}")
            continue
        step = 1024 ** "kmgtp".index(m[2].lower()) * 1024 if m[3] else units[m[2].lower()]
        seed = float(m[1]) * (step if m[2] else 1)
        if abs(cls.capacity_bytes - seed) > 0.03 * seed:
            out.error(
                "storage.seed-capacity", doc, loc,
                f"expected about {cls.capacity_bytes:,} bytes (capacity_bytes, within 3%), "
                f"got {cls.seed_capacity!r} = {seed:,.0f} bytes",
            )  # fmt: skip
