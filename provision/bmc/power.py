"""Power control policy over a connected BMC: act only when needed, then wait for the state.

Asking for the state the host is already in succeeds without an action. Some BMCs answer such a
request (or one racing a transition) with 400/409: after a refresh, being in the target state is
success. Every change waits for the target state, bounded by the host's `power_timeout_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from provision.bmc.types import BmcHttpError
from provision.model.errors import BmcError


class PowerAction(StrEnum):
    status = "status"
    on = "on"
    off = "off"  # graceful shutdown
    force_off = "force_off"
    cycle = "cycle"  # force off, wait Off, on, wait On


ON_STATES = {"On"}
OFF_STATES = {"Off"}
TRANSIENT_STATES = {"PoweringOn", "PoweringOff", None}


class PowerBmc(Protocol):
    url: str
    system_path: str

    def power_state(self) -> str | None: ...
    def allowed_resets(self) -> set[str]: ...
    def reset(self, reset_type: str) -> None: ...


@dataclass
class PowerResult:
    action: str
    state: str | None  # after
    previous: str | None
    changed: bool
    elapsed_s: float
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PowerClock:
    """Injected so tests of the policy need no real waiting; the adapter uses the real clock."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def wait_for(
    bmc: PowerBmc,
    targets: set[str],
    timeout_s: float,
    clock: PowerClock = PowerClock(),
    budget_s: float | None = None,
    settle_s: float = 0.0,
) -> tuple[str | None, float]:
    """Poll until the power state is one of `targets`; BmcError naming the last state on timeout.
    `budget_s` is the whole action's limit, for the message, when this wait is its remainder.
    Polls back off (0.25 s doubling to 2 s); `settle_s`: wait that long before the first read (right
    after a reset the BMC still reports the old state: reading then is a request wasted)."""
    start = clock.now()
    delay = 0.25
    if settle_s > 0:
        clock.sleep(max(min(settle_s, timeout_s), 0.0))
        delay = min(settle_s * 2, 2.0)
    state = bmc.power_state()
    while state not in targets:
        waited = clock.now() - start
        if waited >= timeout_s:
            raise BmcError(
                f"{bmc.url}{bmc.system_path}: power did not reach {'/'.join(sorted(targets))} "
                f"within {budget_s or timeout_s:g} s (last reported: {state})"
            )
        clock.sleep(min(delay, max(timeout_s - waited, 0.01)))
        delay = min(delay * 2, 2.0)
        state = bmc.power_state()
    return state, clock.now() - start


SETTLE_S = 0.5  # after a reset, before the first power-state read
CONFLICT_RETRY_S = 10.0  # Dell iDRAC refuses On with 409 for up to ~60 s after a power-off


def _request(bmc: PowerBmc, reset_type: str, targets: set[str], deadline: float, clock: PowerClock) -> bool:
    """Send one reset. True if sent, False if the BMC refused because it is already there.

    A 409 that outlives the adapter's retries is retried here until the action's deadline:
    iDRAC answers ActionParameterValueConflict to On for about a minute after a power-off.
    """
    while True:
        try:
            bmc.reset(reset_type)
        except BmcHttpError as exc:
            if exc.status in (400, 409) and bmc.power_state() in targets:
                return False
            left = deadline - clock.now()
            if exc.status != 409 or left <= 0:
                raise
            clock.sleep(min(CONFLICT_RETRY_S, left))
            continue
        return True


def _pick(allowed: set[str], *choices: str) -> str | None:
    # An empty set means the BMC did not advertise AllowableValues (iDRAC10): trust the first choice.
    if not allowed:
        return choices[0]
    return next((c for c in choices if c in allowed), None)


def set_power(
    bmc: PowerBmc, action: PowerAction, timeout_s: float, clock: PowerClock = PowerClock()
) -> PowerResult:
    start = clock.now()
    previous = bmc.power_state()
    result = PowerResult(action=action.value, state=previous, previous=previous, changed=False, elapsed_s=0.0)
    if action is PowerAction.status:
        return result

    def go(kinds: tuple[str, ...], targets: set[str]) -> None:
        allowed = bmc.allowed_resets()
        kind = _pick(allowed, *kinds)
        if kind is None:
            hint = "; use --force" if kinds == ("GracefulShutdown",) else ""
            raise BmcError(
                f"{bmc.url}{bmc.system_path}: the BMC offers none of {', '.join(kinds)} "
                f"(allowed: {', '.join(sorted(allowed))}){hint}"
            )
        sent = _request(bmc, kind, targets, start + timeout_s, clock)
        if sent:
            result.changed = True
            result.steps.append(kind)
        left = timeout_s - (clock.now() - start)
        result.state, _ = wait_for(bmc, targets, left, clock, timeout_s, settle_s=SETTLE_S if sent else 0.0)

    # A host between states finishes that transition first, so "already there" is decided on a settled state.
    if previous in TRANSIENT_STATES - {None}:
        previous, _ = wait_for(bmc, ON_STATES | OFF_STATES, timeout_s, clock)
        result.previous = result.state = previous

    if action is PowerAction.on:
        if previous not in ON_STATES:
            go(("On", "ForceOn"), ON_STATES)
    elif action is PowerAction.off:
        if previous not in OFF_STATES:
            go(("GracefulShutdown",), OFF_STATES)
    elif action is PowerAction.force_off:
        if previous not in OFF_STATES:
            go(("ForceOff",), OFF_STATES)
    elif action is PowerAction.cycle:
        # Off then On, each confirmed, rather than ForceRestart: some BMCs keep reporting On through a
        # restart (Ironic sleeps 15 s), and two confirmed steps survive a retried request.
        if previous not in OFF_STATES:
            go(("ForceOff",), OFF_STATES)
        go(("On", "ForceOn"), ON_STATES)
    result.elapsed_s = round(clock.now() - start, 3)
    return result
