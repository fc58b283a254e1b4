"""The controller's live metrics for Prometheus (`--metrics-listen ADDRESS:PORT` on `provision host`,
`reinstall` and `serve`): text exposition format 0.0.4 on /metrics.

- `provision_hosts{state}`: gauge, hosts per lifecycle state, read from the store at each scrape
- `provision_step_duration_seconds{step}`: histogram, wall time of each finished flow step
- `provision_step_outcomes_total{step,outcome}`: counter, finished steps by outcome
- `provision_bmc_request_duration_seconds{method,outcome}`: histogram, every HTTP request to a BMC;
  outcome `ok` (< 400), `http_4xx`, `http_5xx` or `transport` (no answer)
- `provision_bmc_request_errors_total{method,outcome}`: counter, the BMC requests not `ok`
- `provision_pdu_watts{pdu}`: gauge, each PDU's latest reading as given to `set_pdu_watts`

The prometheus_client objects stay in this module; each `FleetMetrics` has a registry of its own.
Adapter: an HTTP server thread, bound only where the operator says.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from provision.bmc.requestlog import observe_requests
from provision.flow.waitjournal import WaitJournal
from provision.flow.waits import Progress
from provision.model.errors import BadInput
from provision.store.lifecycle import HostState
from provision.store.state import StateStore

# Steps last from a second (render_kickstart) to a day (follow_burnin of an acceptance plan).
STEP_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400, 172800)
BMC_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class PduWatts:
    """The latest watts per PDU, set by whoever reads the PDUs (provision.pdu through the fleet's
    admission); shown by every live FleetMetrics. A PDU that cannot be read is dropped, never 0 W."""

    def __init__(self) -> None:
        self._watts: dict[str, float] = {}
        self._lock = threading.Lock()

    def set(self, pdu: str, watts: float | None) -> None:
        with self._lock:
            if watts is None:
                self._watts.pop(pdu, None)
            else:
                self._watts[pdu] = float(watts)

    def items(self) -> list[tuple[str, float]]:
        with self._lock:
            return sorted(self._watts.items())


PDU_WATTS = PduWatts()


def set_pdu_watts(pdu: str, watts: float | None) -> None:
    """Record PDU `pdu`'s latest reading in watts (None: it could not be read, so no sample)."""
    PDU_WATTS.set(pdu, watts)


class _Live(Collector):
    """What is read at scrape time: hosts per state (from the store), PDU watts."""

    def __init__(self, states: Callable[[], Iterable[str]], pdus: PduWatts) -> None:
        self.states = states
        self.pdus = pdus

    def collect(self) -> Iterator[GaugeMetricFamily]:
        hosts = GaugeMetricFamily("provision_hosts", "Hosts per lifecycle state.", labels=["state"])
        counts = dict.fromkeys((str(s) for s in HostState), 0)
        for state in self.states():
            counts[state] = counts.get(state, 0) + 1
        for state, n in counts.items():
            hosts.add_metric([state], n)
        yield hosts
        watts = GaugeMetricFamily("provision_pdu_watts", "Latest power reading of each PDU.", labels=["pdu"])
        for pdu, w in self.pdus.items():
            watts.add_metric([pdu], w)
        yield watts


class FleetMetrics:
    """The registry one controller serves; `progress` feeds it step durations."""

    def __init__(self, states: Callable[[], Iterable[str]], pdus: PduWatts = PDU_WATTS) -> None:
        self.registry = CollectorRegistry()
        self.steps = Histogram(
            "provision_step_duration_seconds",
            "Wall time of each finished flow step.",
            ["step"],
            buckets=STEP_BUCKETS_S,
            registry=self.registry,
        )
        self.outcomes = Counter(
            "provision_step_outcomes",
            "Finished flow steps by outcome.",
            ["step", "outcome"],
            registry=self.registry,
        )
        self.bmc = Histogram(
            "provision_bmc_request_duration_seconds",
            "HTTP requests to BMCs.",
            ["method", "outcome"],
            buckets=BMC_BUCKETS_S,
            registry=self.registry,
        )
        self.bmc_errors = Counter(
            "provision_bmc_request_errors",
            "HTTP requests to BMCs that failed (an error status or no answer).",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.registry.register(_Live(states, pdus))

    def step_finished(self, step: str, outcome: str, elapsed_s: float) -> None:
        self.steps.labels(step).observe(max(0.0, elapsed_s))
        self.outcomes.labels(step, outcome).inc()

    def bmc_request(self, method: str, outcome: str, elapsed_s: float) -> None:
        self.bmc.labels(method, outcome).observe(max(0.0, elapsed_s))
        if outcome != "ok":
            self.bmc_errors.labels(method, outcome).inc()


class MetricsProgress:
    """A Progress that counts finished steps into `metrics`, then passes every call on."""

    def __init__(self, inner: Progress, metrics: FleetMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def step_started(self, host: str, step: str, does: str) -> None:
        self.inner.step_started(host, step, does)

    def step_skipped(self, host: str, step: str, why: str) -> None:
        self.inner.step_skipped(host, step, why)

    def step_finished(self, host: str, step: str, outcome: str, elapsed_s: float, message: str) -> None:
        self.metrics.step_finished(step, outcome, elapsed_s)
        self.inner.step_finished(host, step, outcome, elapsed_s, message)

    def waiting(self, host: str, step: str, what: str, elapsed_s: float, timeout_s: float) -> None:
        self.inner.waiting(host, step, what, elapsed_s, timeout_s)

    def note(self, host: str, step: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.inner.note(host, step, message, data)


def parse_metrics_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"--metrics-listen: expected ADDRESS:PORT like 127.0.0.1:9464, got {listen!r}")
    return host.strip("[]"), int(port)


@contextmanager
def serving(metrics: FleetMetrics, address: tuple[str, int]) -> Iterator[None]:
    """Serve `metrics` on http://ADDRESS:PORT/metrics and count every BMC request while the block runs."""
    host, port = address
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise BadInput(f"--metrics-listen: expected an address this machine can listen on, got "
                       f"{host}:{port} ({exc.strerror or exc})") from None  # fmt: skip
    observe_requests(metrics.bmc_request)
    try:
        yield
    finally:
        observe_requests(None)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def store_states(store: StateStore, inventory: Iterable[str]) -> Callable[[], list[str]]:
    """The states to count at a scrape: the store's hosts, and the inventory's hosts it has never
    seen as `enrolled`."""
    names = set(inventory)

    def states() -> list[str]:
        rows = {r.name: str(r.state) for r in store.list_hosts()}
        return [*rows.values(), *(str(HostState.enrolled) for _ in names - rows.keys())]

    return states


def observed_progress(
    stack: ExitStack, progress: Progress, store: StateStore, inventory: Iterable[str], listen: str | None
) -> Progress:
    """The controller's progress with each host's wait recorded in the store (for `status --watch`)
    and, with `listen` (--metrics-listen), its metrics served there until `stack` closes."""
    progress = WaitJournal(progress, store)
    if listen is None:
        return progress
    metrics = FleetMetrics(store_states(store, inventory))
    stack.enter_context(serving(metrics, parse_metrics_listen(listen)))
    return MetricsProgress(progress, metrics)
