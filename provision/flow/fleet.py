"""Many hosts at once: every host advances, one log file per host, past one host's failure to the end.

Each host runs in a thread of its own in this process (the work is waiting on BMCs, HTTP callbacks
and SSH, so threads cost little) with its own progress going to `<log_dir>/<host>.log`; the
caller's progress gets every host's events too. What a step may do at once with other hosts' steps
(BMC requests, installs, agent pushes, burns on a PDU) is decided per step by
provision.flow.admission; `parallel` only bounds how many hosts are in flight at all (None: every
host). A host that cannot even start (locked by another run, bad input) is a row of the summary like
any other, never the end of the fleet. Ctrl-C cancels every host's run; each one stops at its next
wait (an admission wait included) and journals the interruption.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.flow.engine import Cancel, Progress, Summary
from provision.flow.logprogress import PlainProgress
from provision.model.catalog import Catalog
from provision.model.errors import BadInput, ProvisionError
from provision.model.hosts import Host


@dataclass(frozen=True)
class FleetRow:
    host: str
    outcome: str  # ok / failed / interrupted / error (could not start)
    verdict: str | None  # accepted / rejected, when validation ran
    run_id: str | None
    failed_step: str | None
    message: str
    elapsed_s: float
    log: str
    exit_code: int = 0
    report: str | None = None  # the HTML report, once written

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "outcome": self.outcome,
            "verdict": self.verdict,
            "run_id": self.run_id,
            "failed_step": self.failed_step,
            "message": self.message,
            "elapsed_s": round(self.elapsed_s, 3),
            "log": self.log,
            "exit_code": self.exit_code,
            "report": self.report,
        }


def select_hosts(catalog: Catalog, all_hosts: bool, rack: str | None, circle: int | None) -> list[Host]:
    """The hosts of `--all`, `--rack R` or `--circle N` (exactly one of them), in name order."""
    chosen = [f for f, on in (("--all", all_hosts), ("--rack", rack), ("--circle", circle)) if on]
    if len(chosen) != 1:
        raise BadInput(
            f"fleet: expected exactly one of --all, --rack, --circle, got {', '.join(chosen) or 'none'}"
        )
    hosts = sorted(catalog.hosts.values(), key=lambda h: h.name)
    if rack is not None:
        hosts = [h for h in hosts if h.rack == rack]
        if not hosts:
            racks = ", ".join(sorted({h.rack for h in catalog.hosts.values()}))
            raise BadInput(f"--rack: expected a rack with hosts ({racks}), got {rack!r}")
    elif circle is not None:
        hosts = [h for h in hosts if catalog.profile_of(h).platform.circle == circle]
        circles = sorted({catalog.profile_of(h).platform.circle for h in catalog.hosts.values()})
        if not hosts:
            raise BadInput(
                f"--circle: expected a circle with hosts ({', '.join(map(str, circles))}), got {circle}"
            )
    return hosts


class _Tee:
    """Progress to the host's log file and to the fleet's shared view."""

    def __init__(self, *targets: Progress) -> None:
        self.targets = targets

    def step_started(self, host: str, step: str, does: str) -> None:
        for t in self.targets:
            t.step_started(host, step, does)

    def step_skipped(self, host: str, step: str, why: str) -> None:
        for t in self.targets:
            t.step_skipped(host, step, why)

    def step_finished(self, host: str, step: str, outcome: str, elapsed_s: float, message: str) -> None:
        for t in self.targets:
            t.step_finished(host, step, outcome, elapsed_s, message)

    def waiting(self, host: str, step: str, what: str, elapsed_s: float, timeout_s: float) -> None:
        for t in self.targets:
            t.waiting(host, step, what, elapsed_s, timeout_s)

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None:
        for t in self.targets:
            t.note(host, step, message, data)


RunOne = Callable[[str, Progress, Cancel], Summary]


class _Slots:
    """At most `size` hosts in flight, handed out strictly in host order."""

    def __init__(self, size: int, hosts: Sequence[str]) -> None:
        self.size, self.busy, self.next = size, 0, 0
        self.order = {h: i for i, h in enumerate(hosts)}
        self.cond = threading.Condition()

    def take(self, host: str, cancel: Cancel, on_wait: Callable[[], None]) -> bool:
        me = self.order[host]
        with self.cond:
            told = False
            while not (self.busy < self.size and me == self.next):
                if cancel.is_set:
                    return False
                if not told and me - self.next >= self.size - self.busy:
                    on_wait()
                    told = True
                self.cond.wait(0.5)
            if cancel.is_set:
                return False
            self.busy += 1
            self.next += 1
            self.cond.notify_all()
            return True

    def give_back(self) -> None:
        with self.cond:
            self.busy -= 1
            self.cond.notify_all()


def run_fleet(
    hosts: Sequence[str],
    run_one: RunOne,
    progress: Progress,
    log_dir: Path,
    parallel: int | None,
    cancel: Cancel,
    clock: Callable[[], float] = time.monotonic,
) -> list[FleetRow]:
    """Run `run_one` for every host at once, at most `parallel` in flight (None: all); one row per
    host, in host order."""
    if parallel is not None and parallel < 1:
        raise BadInput(f"--parallel: expected a whole number >= 1, got {parallel}")
    log_dir.mkdir(parents=True, exist_ok=True)
    slots = _Slots(parallel, hosts) if parallel is not None and parallel < len(hosts) else None

    def in_flight(host: str, progress: Progress) -> bool:
        """Wait for a slot of --parallel (given in host order); False when cancelled first."""
        if slots is None:
            return not cancel.is_set
        start = clock()
        if not slots.take(
            host,
            cancel,
            lambda: progress.waiting(
                host, "-", f"a slot: {parallel} host(s) in flight (--parallel)", 0.0, 0.0
            ),
        ):
            return False
        if clock() - start >= 0.5:
            progress.note(host, "-", f"in flight after {clock() - start:.0f} s")
        return True

    def one(host: str) -> FleetRow:
        log = log_dir / f"{host}.log"
        start = clock()
        with open(log, "a", encoding="utf-8") as out:
            mine = PlainProgress(out, prefix_host=False)
            if not in_flight(host, mine):
                return FleetRow(host, "interrupted", None, None, None, "not started", 0.0, str(log), 130)
            try:
                s = run_one(host, _Tee(mine, progress), cancel)
            except ProvisionError as exc:
                mine.note(host, "-", f"could not run: {exc}")
                elapsed = clock() - start
                return FleetRow(host, "error", None, None, None, str(exc), elapsed, str(log), exc.exit_code)
            finally:
                if slots is not None:
                    slots.give_back()
        verdict = s.facts.get("verdict")
        elapsed = clock() - start
        return FleetRow(
            host, s.outcome, verdict, s.run_id, s.failed_step, s.message, elapsed, str(log), s.exit_code
        )

    rows: dict[str, FleetRow] = {}
    workers = max(1, len(hosts))
    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provision-host") as pool:
        futures = {pool.submit(one, h): h for h in hosts}
        pending = set(futures)
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.5)
                for f in done:
                    rows[futures[f]] = f.result()
        except KeyboardInterrupt:
            cancel.set("Ctrl-C")
            for f in pending:
                f.cancel()
            for f, h in futures.items():
                if f.cancelled():
                    rows[h] = FleetRow(h, "interrupted", None, None, None, "not started", 0.0, "", 130)
                else:
                    rows[h] = f.result()
    return [rows[h] for h in hosts]


def summary_table(rows: Sequence[FleetRow]) -> str:
    """The fleet's end: one line per host, then the counts."""
    width = max([len(r.host) for r in rows] + [4])
    lines = [f"{'host':<{width}}  {'outcome':<11}  {'verdict':<8}  {'elapsed':>8}  detail"]
    for r in rows:
        detail = r.message if r.outcome != "ok" else f"run {r.run_id}"
        if r.failed_step:
            detail = f"{r.failed_step}: {detail}"
        lines.append(
            f"{r.host:<{width}}  {r.outcome:<11}  {r.verdict or '-':<8}  {r.elapsed_s:>7.1f}s  {detail}"
        )
    counts: dict[str, int] = {}
    for r in rows:
        key = r.verdict or r.outcome
        counts[key] = counts.get(key, 0) + 1
    lines.append(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return "\n".join(lines)
