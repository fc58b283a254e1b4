"""Each MIB family's columns (numeric OIDs) and how their raw integers become watts and amps. Pure:
`parse_walk` takes what provision.pdu.snmp walked (column -> index suffix -> value) and returns
meters.

Sources, checked against the vendors' MIB text as published (and as NUT, Observium and the
check_pdu_health plugins read them):
- Raritan PDU2-MIB (enterprise 13742.6): measurementsInletSensorValue 6.5.2.3.1.4 and
  measurementsOutletSensorValue 6.5.4.3.1.4, indexed pduId.inletId|outletId.sensorType with
  rmsCurrent(1), rmsVoltage(4), activePower(5); the value is an integer to divide by
  10^inletSensorDecimalDigits (6.3.3.4.1.7) / outletSensorDecimalDigits (6.3.5.4.1.7), same index;
  outletName 6.3.5.3.1.3 (pduId.outletId). Raritan's "SNMP MIB User Guide" section 1.4.
- APC PowerNet-MIB rPDU2 (318.1.1.26): rPDU2PhaseStatusCurrent 6.3.1.5 in tenths of amps,
  rPDU2PhaseStatusPower 6.3.1.7 in hundredths of kilowatts; rPDU2OutletMeteredStatusName 9.4.3.1.3,
  ...Number 9.4.3.1.4, ...Current 9.4.3.1.6 in tenths of amps, ...Power 9.4.3.1.7 in watts. -1 means
  "not supported by this model".
- Server Technology Sentry4-MIB (1718.4.1): st4InputCordActivePower 3.3.1.3 in watts (unit.cord),
  st4LineCurrent 4.3.1.3 in hundredths of amps (unit.cord.line), st4OutletName 8.2.1.3,
  st4OutletCurrent 8.3.1.3 in hundredths of amps, st4OutletActivePower 8.3.1.7 in watts
  (unit.cord.outlet); -1 is "not available".
- ENTITY-SENSOR-MIB (RFC 3433, 1.3.6.1.2.1.99.1.1.1): entPhySensorType .1 (amperes(5), watts(6)),
  entPhySensorScale .2 (units(9); each step is 10^3: milli(8), kilo(10)), entPhySensorPrecision .3
  (decimal places), entPhySensorValue .4, entPhySensorOperStatus .5 (ok(1)); value =
  raw x 10^(3 x (scale - 9)) / 10^precision. Which inlet or outlet a sensor belongs to is read from
  its entPhysicalName (ENTITY-MIB 1.3.6.1.2.1.47.1.1.1.1.7): "Inlet 1 ...", "Outlet 7 ...".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from provision.model.pdus import MibFamily
from provision.pdu.meters import Meter
from provision.pdu.snmp import Oid, Value

Columns = Mapping[str, Mapping[Oid, Value]]

_RARITAN = "1.3.6.1.4.1.13742.6"
_APC = "1.3.6.1.4.1.318.1.1.26"
_ST4 = "1.3.6.1.4.1.1718.4.1"
_ENT = "1.3.6.1.2.1.99.1.1.1"

COLUMNS: dict[MibFamily, dict[str, str]] = {
    MibFamily.raritan_pdu2: {
        "inlet_value": f"{_RARITAN}.5.2.3.1.4",
        "inlet_digits": f"{_RARITAN}.3.3.4.1.7",
        "outlet_value": f"{_RARITAN}.5.4.3.1.4",
        "outlet_digits": f"{_RARITAN}.3.5.4.1.7",
        "outlet_name": f"{_RARITAN}.3.5.3.1.3",
    },
    MibFamily.apc_rpdu2: {
        "phase_current": f"{_APC}.6.3.1.5",
        "phase_power": f"{_APC}.6.3.1.7",
        "outlet_name": f"{_APC}.9.4.3.1.3",
        "outlet_number": f"{_APC}.9.4.3.1.4",
        "outlet_current": f"{_APC}.9.4.3.1.6",
        "outlet_power": f"{_APC}.9.4.3.1.7",
    },
    MibFamily.servertech_sentry4: {
        "cord_power": f"{_ST4}.3.3.1.3",
        "line_current": f"{_ST4}.4.3.1.3",
        "outlet_name": f"{_ST4}.8.2.1.3",
        "outlet_current": f"{_ST4}.8.3.1.3",
        "outlet_power": f"{_ST4}.8.3.1.7",
    },
    MibFamily.entity_sensor: {
        "type": f"{_ENT}.1",
        "scale": f"{_ENT}.2",
        "precision": f"{_ENT}.3",
        "value": f"{_ENT}.4",
        "status": f"{_ENT}.5",
        "name": "1.3.6.1.2.1.47.1.1.1.1.7",
    },
}
# The columns without which a family gave no power reading at all (noSuchObject: the wrong family,
# or a model without meters): the reading is inconclusive, never zero watts.
POWER_COLUMNS: dict[MibFamily, tuple[str, ...]] = {
    MibFamily.raritan_pdu2: ("inlet_value", "outlet_value"),
    MibFamily.apc_rpdu2: ("phase_power", "outlet_power"),
    MibFamily.servertech_sentry4: ("cord_power", "outlet_power"),
    MibFamily.entity_sensor: ("value",),
}

_RARITAN_CURRENT, _RARITAN_POWER = 1, 5
_ENT_AMPERES, _ENT_WATTS, _ENT_UNITS, _ENT_OK = 5, 6, 9, 1
_ENT_NAME = re.compile(r"\b(inlet|outlet|input|phase)\s*#?\s*([0-9]{1,4})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    inlets: tuple[Meter, ...]
    outlets: tuple[Meter, ...]
    notes: tuple[str, ...] = ()


def _index(suffix: Oid) -> str:
    return ".".join(str(p) for p in suffix)


def _num(value: Value | None) -> int | None:
    return value if isinstance(value, int) else None


def _scaled(raw: Value | None, divisor: float) -> float | None:
    """A vendor's fixed-point integer in its unit; -1 ("not supported") and absence are None."""
    n = _num(raw)
    if n is None or n < 0:
        return None
    return round(n / divisor, 6)


def _raritan(cols: Columns, unit: int) -> Parsed:
    notes: list[str] = []

    def meters(kind: str, values: Mapping[Oid, Value], digits: Mapping[Oid, Value]) -> tuple[Meter, ...]:
        found: dict[int, dict[int, float | None]] = {}
        for suffix, raw in values.items():
            if len(suffix) != 3 or suffix[0] != unit or suffix[2] not in (_RARITAN_CURRENT, _RARITAN_POWER):
                continue
            d = _num(digits.get(suffix))
            if d is None:
                notes.append(f"{kind} {suffix[1]}: no decimal digits for sensor type {suffix[2]}")
                value = None
            else:
                value = _scaled(raw, 10**d)
            found.setdefault(suffix[1], {})[suffix[2]] = value
        names = cols.get("outlet_name", {}) if kind == "outlet" else {}
        return tuple(
            Meter(
                kind,
                n,
                f"{unit}.{n}",
                found[n].get(_RARITAN_POWER),
                found[n].get(_RARITAN_CURRENT),
                _text(names.get((unit, n))),
            )
            for n in sorted(found)
        )

    inlets = meters("inlet", cols.get("inlet_value", {}), cols.get("inlet_digits", {}))
    outlets = meters("outlet", cols.get("outlet_value", {}), cols.get("outlet_digits", {}))
    return Parsed(inlets, outlets, tuple(notes))


def _apc(cols: Columns, outlet_map: Mapping[int, str]) -> Parsed:
    current, power = cols.get("phase_current", {}), cols.get("phase_power", {})
    inlets = tuple(
        Meter(
            "inlet",
            suffix[-1],
            _index(suffix),
            None if (w := _scaled(power.get(suffix), 1)) is None else round(w * 10.0, 3),  # 0.01 kW
            _scaled(current.get(suffix), 10),
            f"phase {suffix[-1]}",
        )
        for suffix in sorted(set(power) | set(current))
    )
    numbers = _numbering(cols.get("outlet_number", {}), outlet_map)
    o_current, o_power, o_name = (
        cols.get("outlet_current", {}),
        cols.get("outlet_power", {}),
        cols.get("outlet_name", {}),
    )
    outlets = tuple(
        Meter(
            "outlet",
            numbers.get(suffix, suffix[-1]),
            _index(suffix),
            _scaled(o_power.get(suffix), 1),
            _scaled(o_current.get(suffix), 10),
            _text(o_name.get(suffix)),
        )
        for suffix in sorted(set(o_power) | set(o_current))
    )
    return Parsed(inlets, tuple(sorted(outlets, key=lambda m: m.number)))


def _sentry4(cols: Columns, unit: int, outlet_map: Mapping[int, str]) -> Parsed:
    lines = cols.get("line_current", {})
    cords = cols.get("cord_power", {})
    inlets = []
    for suffix in sorted(cords):
        if suffix[0] != unit:
            continue
        # A cord's current is its most loaded line's: the figure its breaker trips on.
        amps = [a for s, raw in lines.items() if s[:2] == suffix and (a := _scaled(raw, 100)) is not None]
        inlets.append(
            Meter(
                "inlet",
                suffix[1],
                _index(suffix),
                _scaled(cords[suffix], 1),
                max(amps) if amps else None,
                f"cord {suffix[1]}",
            )
        )
    o_current, o_power, o_name = (
        cols.get("outlet_current", {}),
        cols.get("outlet_power", {}),
        cols.get("outlet_name", {}),
    )
    suffixes = sorted(s for s in set(o_power) | set(o_current) if s[0] == unit)
    by_index = {index: number for number, index in outlet_map.items()}
    outlets = tuple(
        Meter(
            "outlet",
            by_index.get(_index(s), position),
            _index(s),
            _scaled(o_power.get(s), 1),
            _scaled(o_current.get(s), 100),
            _text(o_name.get(s)),
        )
        for position, s in enumerate(suffixes, start=1)
    )
    return Parsed(tuple(inlets), tuple(sorted(outlets, key=lambda m: m.number)))


def _entity(cols: Columns) -> Parsed:
    kinds, scales, precisions = cols.get("type", {}), cols.get("scale", {}), cols.get("precision", {})
    values, status, names = cols.get("value", {}), cols.get("status", {}), cols.get("name", {})
    found: dict[tuple[str, int], dict[str, float | None]] = {}
    labels: dict[tuple[str, int], tuple[str, str]] = {}
    notes = []
    for suffix, raw in sorted(values.items()):
        kind = _num(kinds.get(suffix))
        if kind not in (_ENT_AMPERES, _ENT_WATTS):
            continue
        name = _text(names.get(suffix)) or ""
        m = _ENT_NAME.search(name)
        if m is None:
            notes.append(
                f"sensor {_index(suffix)} ({name!r}): no inlet or outlet number in its entPhysicalName"
            )
            continue
        key = ("outlet" if m[1].lower() == "outlet" else "inlet", int(m[2]))
        scale, precision = _num(scales.get(suffix)), _num(precisions.get(suffix))
        ok = _num(
            status.get(suffix),
        ) in (None, _ENT_OK)
        value = None
        if ok and scale is not None and precision is not None and isinstance(raw, int):
            value = round(raw * 10.0 ** (3 * (scale - _ENT_UNITS)) / 10.0**precision, 6)
        found.setdefault(key, {})["w" if kind == _ENT_WATTS else "a"] = value
        labels.setdefault(key, (_index(suffix), name))
    meters = [
        Meter(kind, n, labels[(kind, n)][0], v.get("w"), v.get("a"), labels[(kind, n)][1])
        for (kind, n), v in sorted(found.items())
    ]
    return Parsed(
        tuple(m for m in meters if m.kind == "inlet"),
        tuple(m for m in meters if m.kind == "outlet"),
        tuple(notes),
    )


def _numbering(numbers: Mapping[Oid, Value], outlet_map: Mapping[int, str]) -> dict[Oid, int]:
    out = {suffix: n for suffix, n in numbers.items() if isinstance(n, int) and n > 0}
    for number, index in outlet_map.items():
        out[tuple(int(p) for p in index.split("."))] = number
    return out


def _text(value: Value | None) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def parse_walk(
    family: MibFamily, cols: Columns, unit: int = 1, outlet_map: Mapping[int, str] | None = None
) -> Parsed:
    """The meters in one family's walked columns. `unit`: the PDU's place in a Raritan daisy chain or
    a Sentry4 link (1 for a PDU on its own); `outlet_map`: outlet number -> index suffix (site.yaml)."""
    mapping = outlet_map or {}
    if family is MibFamily.raritan_pdu2:
        return _raritan(cols, unit)
    if family is MibFamily.apc_rpdu2:
        return _apc(cols, mapping)
    if family is MibFamily.servertech_sentry4:
        return _sentry4(cols, unit, mapping)
    return _entity(cols)
