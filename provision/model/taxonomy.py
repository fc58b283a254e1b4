"""The Inferno taxonomy: how hosts, racks, PDUs, pools, labels, namespaces and taints are named.

Pure. The grammar (also in the README):
  host       inferno-host-<role>-<n> | inferno-host-master     role: [a-z][a-z0-9]*, n: 1, 2, ...
  rack       circle-<n>-<sin>         n: 1..9, sin: the circle's sin in Dante's Inferno
  PDU        inferno-pdu-circle<n>-<k>
  switch     inferno-switch-<role>-<n>
  pool       inferno-pool-<role>
  label      inferno.circle=<n>
  namespace  inferno-circle-<n>
  taint      inferno/<word>=<value>:<effect>; the seed's: inferno/gpu=true:NoSchedule (GPU pool),
             inferno/experiment=true:PreferNoSchedule (experimental pool)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Inferno, cantos III-XXXIV: the nine circles and what each punishes.
SINS: dict[int, str] = {
    1: "limbo",
    2: "lust",
    3: "gluttony",
    4: "greed",
    5: "wrath",
    6: "heresy",
    7: "violence",
    8: "fraud",
    9: "treachery",
}

HOST_RE = re.compile(r"^inferno-host-(?:master|(?P<role>[a-z][a-z0-9]*)-(?P<n>[1-9][0-9]*))$")
RACK_RE = re.compile(r"^circle-(?P<n>[0-9]+)-(?P<sin>[a-z]+)$")
PDU_RE = re.compile(r"^inferno-pdu-circle(?P<n>[0-9]+)-(?P<k>[1-9][0-9]*)$")
SWITCH_RE = re.compile(r"^inferno-switch-[a-z][a-z0-9]*-[1-9][0-9]*$")
POOL_RE = re.compile(r"^inferno-pool-(?P<role>[a-z][a-z0-9]*)$")
NAMESPACE_RE = re.compile(r"^inferno-circle-(?P<n>[0-9]+)$")
TAINT_KEY_RE = re.compile(r"^inferno/[a-z][a-z0-9-]*$")
CIRCLE_LABEL = "inferno.circle"

# The seed's pools and the circle each one's label selects.
SEED_POOLS: dict[str, int] = {"inferno-pool-gpu": 2, "inferno-pool-exper": 6, "inferno-pool-master": 1}
# The seed's taints: key -> (value, effect), and the pool that must carry each.
SEED_TAINTS: dict[str, tuple[str, str]] = {
    "inferno/gpu": ("true", "NoSchedule"),
    "inferno/experiment": ("true", "PreferNoSchedule"),
}
TAINT_OF_POOL: dict[str, str] = {
    "inferno-pool-gpu": "inferno/gpu",
    "inferno-pool-exper": "inferno/experiment",
}
GPU_RESOURCE = "nvidia.com/gpu"

HOST_GRAMMAR = "inferno-host-<role>-<n> or inferno-host-master"
RACK_GRAMMAR = (
    "circle-<n>-<sin> with n 1..9 and its sin (" + ", ".join(f"{n} {s}" for n, s in SINS.items()) + ")"
)
PDU_GRAMMAR = "inferno-pdu-circle<n>-<k>"
POOL_GRAMMAR = "inferno-pool-<role>"
NAMESPACE_GRAMMAR = "inferno-circle-<n>"
SWITCH_GRAMMAR = "inferno-switch-<role>-<n>"


@dataclass(frozen=True)
class Rack:
    circle: int
    sin: str


def parse_rack(name: str) -> Rack | None:
    """The rack's circle, or None when the name breaks the grammar or the sin is not that circle's."""
    m = RACK_RE.match(name)
    if m is None:
        return None
    circle = int(m["n"])
    if SINS.get(circle) != m["sin"]:
        return None
    return Rack(circle, m["sin"])


def rack_problem(name: str) -> str | None:
    """Why `name` is not a rack name, in words; None when it is one."""
    m = RACK_RE.match(name)
    if m is None:
        return f"a rack named {RACK_GRAMMAR}"
    circle = int(m["n"])
    if circle not in SINS:
        return "a circle from 1 to 9 in the rack name"
    if SINS[circle] != m["sin"]:
        return f"circle-{circle}-{SINS[circle]} (circle {circle} is {SINS[circle]}, not {m['sin']})"
    return None


def pdu_circle(name: str) -> int | None:
    m = PDU_RE.match(name)
    return int(m["n"]) if m and int(m["n"]) in SINS else None


def namespace_circle(name: str) -> int | None:
    m = NAMESPACE_RE.match(name)
    return int(m["n"]) if m and int(m["n"]) in SINS else None


def is_host_name(name: str) -> bool:
    return HOST_RE.match(name) is not None


def is_pool_name(name: str) -> bool:
    return POOL_RE.match(name) is not None


def is_switch_name(name: str) -> bool:
    return SWITCH_RE.match(name) is not None


def namespace_for(circle: int) -> str:
    return f"inferno-circle-{circle}"
