"""The controller's Prometheus endpoint (`--metrics-listen`), scraped over HTTP and read with
Prometheus's own text parser: during a real flow (sushy-emulator BMC, installer stand-in, loopback
sshd), from `provision serve` over a store with hosts in every state, and around real BMC requests
that fail (404, nothing listening)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from provision.bmc.credentials import Credentials
from provision.bmc.redfish import connect
from provision.flow.metrics import FleetMetrics, serving, set_pdu_watts
from provision.model.catalog import load_catalog
from provision.model.errors import BmcError
from provision.store.state import HostState, StateStore
from tests.conftest import PROFILES, REPO
from tests.support.flowhost import flow_host
from tests.support.procs import free_port, stop_pid, wait_for_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = answer.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    """`name`'s samples by the value of `label` (summed over the other labels)."""
    out: dict[str, float] = {}
    for (n, labels), v in samples.items():
        if n == name:
            key = dict(labels)[label]
            out[key] = out.get(key, 0.0) + v
    return out


def test_metrics_during_a_real_flow_count_states_steps_and_redfish_requests(tmp_path: Path) -> None:
    with flow_host(tmp_path, cpu_s=8) as h:  # 8 s of burn-in: the scrape sees the host burning in
        with StateStore.open(h.state) as store:  # two hosts of an earlier fleet, already judged
            store.set_host_state("old-node-a", HostState.accepted, "test")
            store.set_host_state("old-node-b", HostState.rejected, "test")
        port = free_port()
        proc = subprocess.Popen(
            h.argv("--metrics-listen", f"127.0.0.1:{port}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=h.env,
            cwd=REPO,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            samples: Samples = {}
            for line in proc.stdout:
                event = json.loads(line) if line.startswith("{") else {}
                if event.get("event") == "step_finished" and event.get("step") == "start_burnin":
                    samples = scrape(port)  # the steps so far were counted before they were shown
                    break
            assert samples, (
                f"the flow never finished start_burnin: {proc.stderr.read() if proc.stderr else ''}"
            )
            rest = proc.stdout.read()
            # Not accepted (exit 1): this machine is not the profile's hardware; but the run ended.
            assert proc.wait(timeout=240) == 1, rest
            assert '"outcome": "ok"' in rest.splitlines()[-1], rest
        finally:
            stop_pid(proc.pid)
        hosts = labelled(samples, "provision_hosts", "state")
        assert set(hosts) == {str(s) for s in HostState}  # every state, zeros included
        assert (hosts["accepted"], hosts["rejected"], sum(hosts.values())) == (1, 1, 3)
        assert hosts["burning-in"] == 1  # the flow's host
        for step in ("inspect", "pxe_boot", "wait_install", "boot_disk", "wait_ssh", "start_burnin"):
            assert value(samples, "provision_step_duration_seconds_count", step=step) == 1, step
            assert value(samples, "provision_step_outcomes_total", step=step, outcome="ok") == 1, step
        assert value(samples, "provision_step_duration_seconds_count", step="report") is None  # not yet
        wait_s = value(samples, "provision_step_duration_seconds_sum", step="wait_install")
        assert wait_s is not None and wait_s > 0
        requests = labelled(samples, "provision_bmc_request_duration_seconds_count", "method")
        assert requests.get("GET", 0) > 0 and requests.get("POST", 0) > 0, requests  # reads; a reset
        assert value(samples, "provision_bmc_request_duration_seconds_count", method="GET", outcome="ok")
        # Nothing listens once the controller has ended.
        with pytest.raises(urllib.error.URLError):
            scrape(port)


@pytest.fixture
def metrics() -> Iterator[tuple[FleetMetrics, int]]:
    m = FleetMetrics(lambda: ["accepted", "accepted", "enrolled"])
    port = free_port()
    with serving(m, ("127.0.0.1", port)):
        yield m, port


def test_bmc_errors_are_counted_by_method_and_outcome(
    tmp_path: Path, metrics: tuple[FleetMetrics, int]
) -> None:
    _, port = metrics
    with flow_host(tmp_path) as h:
        bmc = load_catalog(h.profiles).hosts[h.name].bmc
        creds = Credentials("admin", "password")
        with connect(bmc, credentials=creds) as client:
            assert client.try_json("/redfish/v1/Systems/no-such-system") is None  # a 404
        closed = bmc.model_copy(update={"url": f"http://127.0.0.1:{free_port()}"})
        with pytest.raises(BmcError), connect(closed, credentials=creds):
            pass
    samples = scrape(port)
    assert value(samples, "provision_bmc_request_errors_total", method="GET", outcome="http_4xx") == 1
    transport = value(samples, "provision_bmc_request_errors_total", method="GET", outcome="transport")
    assert transport is not None and transport >= 1
    assert value(samples, "provision_bmc_request_errors_total", method="GET", outcome="ok") is None
    ok = value(samples, "provision_bmc_request_duration_seconds_count", method="GET", outcome="ok")
    assert ok is not None and ok >= 1
    assert labelled(samples, "provision_hosts", "state")["accepted"] == 2


def test_pdu_watts_come_from_the_hook_and_an_unreadable_pdu_has_no_sample(
    metrics: tuple[FleetMetrics, int],
) -> None:
    _, port = metrics
    set_pdu_watts("inferno-pdu-circle2-1", 4100.5)
    set_pdu_watts("inferno-pdu-circle2-2", 900.0)
    set_pdu_watts("inferno-pdu-circle2-2", None)  # could not be read: never 0 W
    try:
        watts = labelled(scrape(port), "provision_pdu_watts", "pdu")
    finally:
        set_pdu_watts("inferno-pdu-circle2-1", None)
    assert watts == {"inferno-pdu-circle2-1": 4100.5}


def test_serve_reports_hosts_per_state_from_the_store(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with StateStore.open(state) as store:
        store.set_host_state("inferno-host-compute-1", HostState.accepted, "test")
        store.set_host_state("inferno-host-exper-1", HostState.rejected, "test")
    port, metrics_port = free_port(), free_port()
    base = [sys.executable, "-m", "provision", "--profiles", str(PROFILES), "--state", str(state), "serve"]
    proc = subprocess.Popen(
        [*base, "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        wait_for_port(metrics_port, proc=proc)
        hosts = labelled(scrape(metrics_port), "provision_hosts", "state")
    finally:
        stop_pid(proc.pid)
    # The inventory's third host (inferno-host-master) was never seen: enrolled.
    assert {s: n for s, n in hosts.items() if n} == {"accepted": 1, "rejected": 1, "enrolled": 1}


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("localhost", "--metrics-listen: expected ADDRESS:PORT like 127.0.0.1:9464, got 'localhost'"),
        ("127.0.0.1:0", "--metrics-listen: expected ADDRESS:PORT like 127.0.0.1:9464, got '127.0.0.1:0'"),
        ("192.0.2.1:9464", "--metrics-listen: expected an address this machine can listen on, got 192.0.2.1"),
    ],
)  # fmt: skip
def test_a_bad_metrics_address_is_one_line(tmp_path: Path, listen: str, expected: str) -> None:
    base = [sys.executable, "-m", "provision", "--profiles", str(PROFILES), "--state", str(tmp_path), "serve"]
    proc = subprocess.run(
        [*base, "--listen", f"127.0.0.1:{free_port()}", "--metrics-listen", listen],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
