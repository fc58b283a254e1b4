"""Adapter: the site's PDUs read in the background for the fleet's power gate
(provision.flow.admission): one thread per PDU takes a reading every `every_s` and keeps the last
good one, so the gate never waits on SNMP and always knows how old its view is.

A PDU that stops answering keeps its last good reading (with its age, so the gate can see it go
stale) and says why the latest attempt failed; a reading that was never taken is no load, never 0 W.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from provision.model.errors import ProvisionError
from provision.model.pdus import Pdu
from provision.pdu.meters import CircuitLoad, PduReading
from provision.pdu.readings import pdu_load

READ_EVERY_S = 15.0  # the burn-in sampler's interval: a reading is at most this old plus its timeouts


class PduWatch:
    """The last reading of each watched PDU; `load(name)` answers at once (None: not watched)."""

    def __init__(
        self,
        pdus: Iterable[Pdu],
        every_s: float = READ_EVERY_S,
        read: Callable[[Pdu], PduReading] = pdu_load,
    ) -> None:
        self.pdus = {p.name: p for p in pdus}
        self.every_s = every_s
        self.read = read
        self._lock = threading.Lock()
        self._loads: dict[str, CircuitLoad] = {n: CircuitLoad(n, None, None) for n in self.pdus}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def load(self, name: str) -> CircuitLoad | None:
        with self._lock:
            return self._loads.get(name)

    def read_once(self, name: str) -> CircuitLoad:
        """Take one reading of `name` now and keep it; a failure keeps the last good reading."""
        pdu = self.pdus[name]
        try:
            reading = self.read(pdu)
        except ProvisionError as exc:  # an unreadable secret: said, the gate falls back to the estimate
            failed: str | None = str(exc)
            load_w, taken_at = None, time.time()
        else:
            load_w, taken_at = reading.load_w, reading.taken_at
            failed = reading.inconclusive
            if failed is None and load_w is None:
                failed = f"{name} reports no whole circuit load (an inlet or outlet without power)"
        with self._lock:
            last = self._loads[name]
            if failed is None:
                self._loads[name] = CircuitLoad(name, load_w, taken_at)
            else:
                self._loads[name] = CircuitLoad(name, last.load_w, last.taken_at, failed)
            return self._loads[name]

    def _loop(self, name: str) -> None:
        while not self._stop.is_set():
            self.read_once(name)
            self._stop.wait(self.every_s)

    def start(self) -> None:
        for name in self.pdus:
            t = threading.Thread(target=self._loop, args=(name,), name=f"pdu-watch-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        # A read under way ends within its SNMP timeouts: wait that long once, not once per PDU.
        longest = max((p.timeout_s * (1 + p.retries) for p in self.pdus.values()), default=0.0)
        deadline = time.monotonic() + longest + 1.0
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()


@contextmanager
def watch_pdus(
    site_pdus: Iterable[Pdu], names: Iterable[str], every_s: float = READ_EVERY_S
) -> Iterator[Callable[[str], CircuitLoad | None] | None]:
    """The site PDUs named in `names` (the PDUs of the hosts being run) watched for the length of
    the block; yields their `load` lookup, or None when the site declares none of them (no SNMP:
    the gate counts the profiles' estimate alone)."""
    wanted = set(names)
    pdus = [p for p in site_pdus if p.name in wanted]
    if not pdus:
        yield None
        return
    watch = PduWatch(pdus, every_s)
    watch.start()
    try:
        yield watch.load
    finally:
        watch.stop()
