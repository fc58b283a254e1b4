"""Fleet admission: every host of a fleet advances at once; a step waits only for what it needs.

What a step needs (STEP_NEEDS), each counted in a Ledger under a key, against a limit:
- `bmc:<address>`: inspect, firmware, bios, pxe_boot and boot_disk talk to the host's BMC; at most
  `limits.bmc_requests` of them at once per BMC address.
- `installs`: from pxe_boot to the end of wait_install the host pulls the install image from the
  boot server; at most `limits.installs` at once.
- `agent_pushes`: start_burnin ships the burn-in agent over SSH; at most `limits.agent_pushes`.
- `pdu:<name>`: from start_burnin to the end of follow_burnin the host burns. It enters only when
  its PDU has room for its profile's burn peak (the full burn the lint computes; when that exceeds
  the host's own feed, the soak staggers CPU under full GPU load: GPUs + the rest of the box + the
  CPU share that fits) beside what already burns there, within the PDU's continuous budget (80%
  rule: the smallest continuous rating of the feeds of the hosts on it, or a lower site figure).

Holds end with the step (or with the span's last step); a failed or interrupted step releases
every hold of its host, and so does the end of a host's run (a run cancelled between two steps).
A step that continues work already under way on the host (wait_install, follow_burnin after a
controller restart) takes its hold without waiting: the install or the burn goes on regardless,
and the ledger must count it. A host whose burn peak exceeds its PDU's whole budget fails at once
(it would wait forever). A waiting host says what it waits for through Progress.waiting.

The power gate's view of a PDU (`measured`, given where the site declares the PDU's SNMP: the
fleet reads it in the background, provision.pdu.watch) is the larger of
- the estimate: the burn peaks the ledger holds there, and
- the measurement, when its reading is fresh (taken within `fresh_s`): the circuit's measured load
  plus the burn peaks this controller admitted there after the reading was taken (not yet in it).
So the gate never admits more than the estimate alone would, and admits less where the PDU carries
more than the estimate (load that is not the fleet's on the same circuit: switches, another team's
servers, a host burning outside this run). A burn already in a reading counts there at the phase it
was in; its peak stays in the estimate, which bounds the view from below. A stale reading, or a PDU
that does not answer, falls back to the estimate, and the waiting host's line says which and why.

The Ledger is an interface so that several controllers can share one (backed by the state store);
LocalLedger is the in-process one. The burns admitted since a reading are this controller's only:
another controller's new burns count through the shared estimate.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from provision.flow.engine import StepCall, StepFn, StepName, StepResult
from provision.model.errors import BadInput
from provision.model.hosts import Host
from provision.model.limits import Limits
from provision.model.profile import Profile
from provision.pdu.meters import CircuitLoad

# A PDU's last reading (provision.pdu.watch), None where the PDU is not read.
Measured = Callable[[str], CircuitLoad | None]
FRESH_S = 60.0  # a reading older than this no longer counts: the estimate alone decides


class Ledger(Protocol):
    """Amounts held under keys. acquire is an atomic check-and-add; a holder that already holds the
    key gets True again without adding (a resumed step re-acquires what it may still hold)."""

    def acquire(self, key: str, amount: float, limit: float, holder: str) -> bool: ...

    def release(self, key: str, holder: str) -> None: ...

    def in_use(self, key: str) -> float: ...


class LocalLedger:
    """The in-process ledger: a lock and a dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, float]] = defaultdict(dict)

    def acquire(self, key: str, amount: float, limit: float, holder: str) -> bool:
        with self._lock:
            held = self._held[key]
            if holder in held:
                return True
            if sum(held.values()) + amount > limit + 1e-9:
                return False
            held[holder] = amount
            return True

    def release(self, key: str, holder: str) -> None:
        with self._lock:
            self._held[key].pop(holder, None)

    def in_use(self, key: str) -> float:
        with self._lock:
            return sum(self._held[key].values())


class AdmissionRefused(BadInput):
    """A step can never be admitted (a burn peak above its PDU's whole budget)."""


class Kind:
    bmc = "bmc"
    installs = "installs"
    agent_pushes = "agent_pushes"
    power = "power"


@dataclass(frozen=True)
class Need:
    kind: str
    until: StepName  # the step at whose successful end the hold is released


ADMISSION_FACT = "admission"  # the fact of a guarded step's journal row: admitted_at, released_at

# What each step needs, in the order it is acquired (the long waits first, so a host waiting for
# power holds no push slot meanwhile).
STEP_NEEDS: dict[StepName, tuple[Need, ...]] = {
    StepName.inspect: (Need(Kind.bmc, StepName.inspect),),
    StepName.firmware: (Need(Kind.bmc, StepName.firmware),),
    StepName.bios: (Need(Kind.bmc, StepName.bios),),
    StepName.pxe_boot: (Need(Kind.installs, StepName.wait_install), Need(Kind.bmc, StepName.pxe_boot)),
    StepName.wait_install: (Need(Kind.installs, StepName.wait_install),),
    StepName.boot_disk: (Need(Kind.bmc, StepName.boot_disk),),
    StepName.start_burnin: (
        Need(Kind.power, StepName.follow_burnin),
        Need(Kind.agent_pushes, StepName.start_burnin),
    ),
    StepName.follow_burnin: (Need(Kind.power, StepName.follow_burnin),),
}
# Steps that continue work already under way on the host: they count it, never wait for it.
CONTINUES = {StepName.wait_install: Kind.installs, StepName.follow_burnin: Kind.power}
UNBOUNDED = 1e18  # the limit such a step acquires against: finite, as a store ledger requires


def burn_peak_w(profile: Profile) -> float:
    """The most a host draws while it burns in: the lint's full burn, or, when that exceeds the
    host's feed, the soak's staggered burn (GPUs and the rest of the box full, CPUs at the share
    that fits: Profile.soak_cpu_load_pct)."""
    return (
        profile.gpu_burn_w + profile.power.other_draw_w + profile.cpu_burn_w * profile.soak_cpu_load_pct / 100
    )


def pdu_budgets(feeds: Iterable[tuple[str, Profile]], limits: Limits) -> dict[str, float]:
    """Each PDU's continuous budget: the smallest continuous rating of the feeds on it (as the lint
    judges a shared PDU), lowered by the site's `limits.pdu_budget_w` where it names the PDU."""
    out: dict[str, float] = {}
    for pdu, profile in feeds:
        out[pdu] = min(out.get(pdu, math.inf), profile.power.continuous_w)
    for pdu, watts in limits.pdu_budget_w.items():
        out[pdu] = min(out.get(pdu, math.inf), watts)
    return out


def bmc_address(host: Host) -> str:
    split = urlsplit(host.bmc.url)
    return split.netloc or host.bmc.url


def _kw(watts: float) -> str:
    return f"{watts / 1000:.3g}"


class Admission:
    """The gates of one controller: limits, the ledger, and which host holds what."""

    def __init__(
        self,
        limits: Limits,
        pdu_budget_w: dict[str, float],
        ledger: Ledger | None = None,
        measured: Measured | None = None,
        poll_s: float = 0.5,
        report_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        fresh_s: float = FRESH_S,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self.pdu_budget_w = pdu_budget_w
        self.ledger: Ledger = ledger or LocalLedger()
        self.measured = measured  # pdu name -> its last reading: see the module's docstring
        self.poll_s = poll_s
        self.report_every_s = report_every_s
        self.clock = clock
        self.fresh_s = fresh_s
        self.wall = wall  # readings are stamped in epoch seconds
        self._changed = threading.Condition()
        self._power = threading.Lock()  # a PDU's view and the acquire against it, one host at a time
        # key -> holder -> (burn peak W, wall time admitted): what a reading taken before misses
        self._admitted: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
        self._mine: dict[str, dict[str, Need]] = defaultdict(dict)  # holder -> key -> need
        self._mine_lock = threading.Lock()

    # -- what a need costs -----------------------------------------------------------------------
    def _key(self, kind: str, host: Host) -> str:
        if kind == Kind.bmc:
            return f"bmc:{bmc_address(host)}"
        if kind == Kind.power:
            return f"pdu:{host.pdu}"
        return kind

    def _cost(self, kind: str, host: Host, profile: Profile) -> tuple[float, float]:
        """(amount, limit) of one need."""
        if kind == Kind.power:
            budget = self.pdu_budget_w.get(host.pdu, profile.power.continuous_w)
            return burn_peak_w(profile), min(budget, profile.power.continuous_w)
        limit = {
            Kind.bmc: self.limits.bmc_requests,
            Kind.installs: self.limits.installs,
            Kind.agent_pushes: self.limits.agent_pushes,
        }[kind]
        return 1.0, float(limit)

    def _load(self, key: str) -> float:
        return self._view(key)[0]

    def _view(self, key: str) -> tuple[float, str]:
        """What the key holds now, and for a PDU how that was judged (for the waiting line)."""
        est = self.ledger.in_use(key)
        if self.measured is None or not key.startswith("pdu:"):
            return est, ""
        seen = self.measured(key.removeprefix("pdu:"))
        if seen is None:
            return est, ""  # not a PDU the site reads
        if seen.load_w is None or seen.taken_at is None:
            return est, f"estimated: {seen.failed or 'no reading yet'}"
        age_s = max(0.0, self.wall() - seen.taken_at)
        if age_s > self.fresh_s:
            why = f"the last reading is {age_s:.0f} s old (older than {self.fresh_s:.0f} s)"
            return est, f"estimated: {why}" + (f"; {seen.failed}" if seen.failed else "")
        with self._mine_lock:
            since = sum(w for w, at in self._admitted[key].values() if at > seen.taken_at)
        measured = seen.load_w + since
        if measured < est:
            return est, f"estimated (measured {_kw(seen.load_w)} kW {age_s:.0f} s ago)"
        plus = f" + {_kw(since)} kW admitted since" if since else ""
        return measured, f"measured {age_s:.0f} s ago{plus}"

    def describe(self, kind: str, host: Host, profile: Profile) -> str:
        """What a waiting host waits for, for a person."""
        key = self._key(kind, host)
        amount, limit = self._cost(kind, host, profile)
        load, how = self._view(key)
        if kind == Kind.power:
            how = f" {how}" if how else ""
            return (
                f"power: {host.pdu} at {_kw(load)} of {_kw(limit)} kW{how} (this burn needs {_kw(amount)} kW)"
            )
        if kind == Kind.bmc:
            return f"BMC {bmc_address(host)}: {load:.0f} of {limit:.0f} requests in flight"
        return f"{kind.replace('_', ' ')}: {load:.0f} of {limit:.0f} at once"

    # -- holding -----------------------------------------------------------------------------------
    def _try(self, key: str, amount: float, limit: float, holder: str) -> bool:
        if not key.startswith("pdu:"):
            return self.ledger.acquire(key, amount, limit, holder)
        with self._power:
            extra = self._load(key) - self.ledger.in_use(key)
            if not self.ledger.acquire(key, amount, limit - max(0.0, extra), holder):
                return False
            with self._mine_lock:
                self._admitted[key].setdefault(holder, (amount, self.wall()))
            return True

    def acquire(self, call: StepCall, need: Need, host: Host, profile: Profile) -> None:
        """Hold what `need` asks for, waiting (cancellable, with progress) until there is room."""
        key = self._key(need.kind, host)
        amount, limit = self._cost(need.kind, host, profile)
        with self._mine_lock:
            if key in self._mine[host.name]:
                return
        if amount > limit:
            raise AdmissionRefused(
                f"{host.name}: power: its burn peak of {_kw(amount)} kW exceeds the whole continuous "
                f"budget of {host.pdu} ({_kw(limit)} kW); it can never burn there: move it to another "
                "PDU, or lower its profile's burn (GPU power limit, CPU TDP)"
            )
        if CONTINUES.get(call.step) == need.kind:
            limit = UNBOUNDED  # the work goes on on the host regardless: count it, never wait
        waiter = call.waiter
        start = last_report = self.clock()
        reported = False
        while True:
            waiter.cancel.check()
            if self._try(key, amount, limit, host.name):
                break
            now = self.clock()
            if not reported or now - last_report >= self.report_every_s:
                waiter.progress.waiting(
                    host.name, call.step.value, self.describe(need.kind, host, profile), now - start, 0.0
                )
                reported, last_report = True, now
            with self._changed:
                self._changed.wait(self.poll_s)
        with self._mine_lock:
            self._mine[host.name][key] = need

    def release(self, host: str, ended: StepName | None = None) -> None:
        """Release the host's holds that end with step `ended`; every hold when `ended` is None."""
        with self._mine_lock:
            mine = self._mine.get(host, {})
            keys = [k for k, n in mine.items() if ended is None or n.until == ended]
            for k in keys:
                del mine[k]
        for k in keys:
            self.ledger.release(k, host)
            with self._mine_lock:
                self._admitted[k].pop(host, None)
        if keys:
            with self._changed:
                self._changed.notify_all()

    def held(self, host: str) -> list[str]:
        with self._mine_lock:
            return sorted(self._mine.get(host, {}))

    # -- steps -------------------------------------------------------------------------------------
    def guard(self, host: Host, profile: Profile, steps: dict[StepName, StepFn]) -> dict[StepName, StepFn]:
        """The same steps, each admitted before it runs and releasing after."""
        return {name: self._guarded(host, profile, name, fn) for name, fn in steps.items()}

    def _guarded(self, host: Host, profile: Profile, name: StepName, fn: StepFn) -> StepFn:
        needs = STEP_NEEDS.get(name, ())
        if not needs:
            return fn

        def step(call: StepCall) -> StepResult:
            try:
                for need in needs:
                    self.acquire(call, need, host, profile)
                admitted_at = time.time()
                result = fn(call)
            except BaseException:
                self.release(host.name)
                raise
            self.release(host.name, name)
            # Journaled with the step: when it was admitted and when its holds ended, so what held
            # a resource at once can be proven from the journal (the step's own start includes the
            # wait; its end is journaled after the release).
            stamps = {"admitted_at": round(admitted_at, 6), "released_at": round(time.time(), 6)}
            return dataclasses.replace(result, facts={**result.facts, ADMISSION_FACT: stamps})

        return step
