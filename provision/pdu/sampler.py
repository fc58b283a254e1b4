"""Adapter: during the burn-in, the host's PDU outlet (and its whole circuit) sampled beside the BMC's
chassis reading, into the run's `power.jsonl`.

The file is JSON lines the telemetry parser reads (provision.acceptance.timeseries), so its series
plot beside the agent's (NVML, RAPL) ones:
    {"meta": {"pdu": "inferno-pdu-circle2-1", "outlet": 3, "rating_w": 4992.0, ...}}   (first line)
    {"t": 1732790001.0, "v": {"pdu.outlet_w": 1180.0, "pdu.outlet_a": 5.71,
                              "pdu.circuit_w": 2790.0, "node.power_w": 1212.0}}
    {"t": 1732790016.0, "v": {"node.power_w": 1209.0}, "errors": {"pdu": "no answer within ..."}}
A reading that failed leaves its series out of that line and says why under "errors": never 0 W.
`node.power_w` is the profile's default `node_power_series` (the BMC's whole-chassis reading).

The document is rewritten whole at each sample (a few hundred bytes a line; a 72-hour run at the
default interval is ~2 MiB) and read back when a resumed controller follows the run again.

During a burn-in the samples are taken by a thread of their own (`in_background`), so a PDU or BMC
that hangs delays only its own samples, never the follow loop's (SSH, the agent's events, Ctrl-C).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

from provision.bmc.redfish import BmcClient, connect
from provision.model.errors import BmcError, ProvisionError
from provision.model.hosts import Host
from provision.model.pdus import Pdu, find_pdu
from provision.pdu.meters import CIRCUIT_W, NODE_W, OUTLET_A, OUTLET_W, POWER_FILE
from provision.pdu.readings import pdu_load

__all__ = ["POWER_FILE", "PowerSampler", "bmc_power_w", "burnin_power", "in_background"]

SAMPLE_INTERVAL_S = 15.0

Doc = dict[str, Any]


def bmc_power_w(get: Callable[[str], Doc | None]) -> float | None:
    """The chassis' whole-system draw from Redfish: the largest legacy PowerControl reading (the
    enclosure's own meter; a GPU baseboard's is a part of it), else the sum of the PSUs' input power
    (PowerSubsystem). None when the BMC reports neither. `get`: a GET returning None on 404."""
    chassis = get("/redfish/v1/Chassis") or {}
    readings: list[float] = []
    for member in chassis.get("Members") or []:
        doc = get(str(member.get("@odata.id", ""))) if isinstance(member, dict) else None
        if not doc:
            continue
        power_ref = (doc.get("Power") or {}).get("@odata.id")
        power = get(str(power_ref)) if power_ref else None
        for ctl in (power or {}).get("PowerControl") or []:
            watts = ctl.get("PowerConsumedWatts") if isinstance(ctl, dict) else None
            if isinstance(watts, int | float) and not isinstance(watts, bool):
                readings.append(float(watts))
        sub_ref = (doc.get("PowerSubsystem") or {}).get("@odata.id")
        if power is None and sub_ref:
            readings += _psu_input(get, str(sub_ref))
    return max(readings) if readings else None


def _psu_input(get: Callable[[str], Doc | None], sub_ref: str) -> list[float]:
    sub = get(sub_ref) or {}
    psus_ref = (sub.get("PowerSupplies") or {}).get("@odata.id")
    members = ((get(str(psus_ref)) or {}).get("Members") or []) if psus_ref else []
    total, seen = 0.0, False
    for member in members:
        psu = get(str(member.get("@odata.id", ""))) or {} if isinstance(member, dict) else {}
        metrics_ref = (psu.get("Metrics") or {}).get("@odata.id")
        metrics = (get(str(metrics_ref)) or {}) if metrics_ref else {}
        reading = (metrics.get("InputPowerWatts") or {}).get("Reading")
        if isinstance(reading, int | float) and not isinstance(reading, bool):
            total += float(reading)
            seen = True
    return [total] if seen else []


class PowerSampler:
    """Takes a sample when one is due; keeps every line and hands the whole document to `save`."""

    def __init__(
        self,
        site_pdu: Pdu,
        outlet: int,
        host: str,
        save: Callable[[bytes], None],
        existing: bytes = b"",
        bmc_power: Callable[[], float | None] | None = None,
        interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self.pdu, self.outlet, self.host = site_pdu, outlet, host
        self.save, self.bmc_power, self.interval_s = save, bmc_power, interval_s
        self.lines = [line for line in existing.decode("utf-8", "replace").splitlines() if line.strip()]
        self.last = 0.0
        if not self.lines:
            meta = {
                "pdu": site_pdu.name,
                "outlet": outlet,
                "host": host,
                "mib": str(site_pdu.mib),
                "rating_w": site_pdu.rating_w,
                "rating": site_pdu.rating_text,
                "interval_s": interval_s,
            }
            self.lines.append(json.dumps({"meta": meta}, sort_keys=True))

    def due(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) - self.last >= self.interval_s

    def sample(self) -> dict[str, Any]:
        """One line: the outlet, the circuit and the BMC, each or its error. Returns the line."""
        self.last = time.monotonic()
        values: dict[str, float] = {}
        errors: dict[str, str] = {}
        try:
            reading = pdu_load(self.pdu)
        except ProvisionError as exc:  # a secret that cannot be read: said, the burn-in goes on
            errors["pdu"] = str(exc)
        else:
            if reading.inconclusive:
                errors["pdu"] = reading.inconclusive
            else:
                meter = reading.outlet(self.outlet)
                if meter is None or meter.power_w is None:
                    errors["pdu"] = f"{self.pdu.name} reports no power for outlet {self.outlet}"
                else:
                    values[OUTLET_W] = meter.power_w
                    if meter.current_a is not None:
                        values[OUTLET_A] = meter.current_a
                if reading.load_w is not None:
                    values[CIRCUIT_W] = reading.load_w
        if self.bmc_power is not None:
            try:
                watts = self.bmc_power()
            except ProvisionError as exc:
                errors["bmc"] = str(exc)
            else:
                if watts is None:
                    errors["bmc"] = "the BMC reports no chassis power (PowerControl or PSU input)"
                else:
                    values[NODE_W] = watts
        return self._keep(values, errors)

    def _keep(self, values: dict[str, float], errors: dict[str, str]) -> dict[str, Any]:
        line: dict[str, Any] = {"t": round(time.time(), 3), "v": values}
        if errors:
            line["errors"] = errors
        self.lines.append(json.dumps(line, sort_keys=True))
        self.save(("\n".join(self.lines) + "\n").encode())
        return line

    def broke(self, why: str) -> None:
        """The sampling itself failed (the store refused the document, a bug): said as the PDU's and
        the BMC's error, so the checks of the rest of the burn-in are inconclusive, never silent."""
        # Where the store is what failed, the samples already kept are what the checks get.
        with suppress(ProvisionError):
            self._keep({}, {"pdu": why, "bmc": why})


@contextmanager
def in_background(sampler: PowerSampler | None) -> Iterator[None]:
    """Take `sampler`'s samples every interval in a thread of its own for the length of the block
    (one per burn-in follow); stopped and joined at its end, a sample under way let finish within
    the PDU's timeouts. None (the site declares no PDU for the host): nothing runs."""
    if sampler is None:
        yield
        return
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                try:
                    sampler.sample()
                except ProvisionError as exc:  # the store refused the document: said, sampling goes on
                    sampler.broke(f"power sample not kept: {exc}")
                stop.wait(sampler.interval_s)
        except Exception as exc:  # a bug must not end the samples silently
            sampler.broke(f"power sampler stopped: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, name=f"power-sampler-{sampler.host}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(sampler.pdu.timeout_s * (1 + sampler.pdu.retries) + 5.0)


@contextmanager
def burnin_power(
    site_pdus: tuple[Pdu, ...], host: Host, load: Callable[[], bytes], save: Callable[[bytes], None]
) -> Iterator[PowerSampler | None]:
    """The sampler of `host`'s outlet for the length of a burn-in follow, or None where the site does
    not declare the host's PDU (a PDU is optional equipment). The BMC is connected at the first
    sample and kept for the next ones; a BMC that fails is reconnected at the next sample."""
    site_pdu = find_pdu(site_pdus, host.pdu)
    if site_pdu is None:
        yield None
        return
    with ExitStack() as stack:
        client: list[BmcClient] = []

        def bmc_power() -> float | None:
            if not client:
                client.append(stack.enter_context(connect(host.bmc)))
            try:
                return bmc_power_w(client[0].try_json)
            except BmcError:
                client.clear()
                raise

        yield PowerSampler(site_pdu, host.pdu_outlet, host.name, save, load(), bmc_power)
