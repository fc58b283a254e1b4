"""Power supplies and every part's health in the run diff (`report --diff`, text and JSON) and in the
HTML report (Chromium): a swapped PSU by slot and serial, a DIMM gone Warning, a part that went
Critical during the burn-in, each with what it was before and after."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from provision.acceptance.report.diff import diff_health
from provision.acceptance.report.parts_html import power_and_health
from tests.support.bundle import load_json
from tests.support.chromium import render
from tests.test_reports import SCHEMA, provision, run_dir

DIMM = "dimm:P0_DIMMF1"
ECC = "Correctable ECC errors over threshold"


def _status(inv: dict[str, Any], part: str) -> dict[str, Any]:
    return next(h for h in inv["health"] if h["part"] == part)


def _swapped_psu2(inv: dict[str, Any]) -> dict[str, Any]:
    """The operator swapped PSU2 between the runs: another serial, newer firmware."""
    inv = copy.deepcopy(inv)
    inv["psus"][1].update(serial="P2K7LUST9999", firmware="1.4")
    return inv


def _runs(tmp: Path) -> tuple[Path, Path]:
    """Run A as committed; run B with PSU2 swapped and the BMC's after-burn-in read a DIMM Warning."""
    a = run_dir(tmp / "a")

    def later(result: dict[str, Any]) -> None:
        result["run_id"] = "20251201T090000Z-compute-1"

    b = run_dir(tmp / "b", later)
    pre = _swapped_psu2(load_json("lust-redfish-inventory.json"))
    (b / "inventory-redfish.json").write_text(json.dumps(pre))
    after = copy.deepcopy(pre)
    _status(after, DIMM).update(health="Warning", message=ECC)
    (b / "inventory-redfish-after.json").write_text(json.dumps(after))
    return a, b


def test_diff_names_the_swapped_psu_and_the_dimm_gone_warning(tmp_path: Path) -> None:
    a, b = _runs(tmp_path)
    code, out, err = provision("report", "--diff", str(a), str(b))
    assert code == 0, err
    lines = out.splitlines()
    for line in (
        "  (BMC read: A before the OS, B after the burn-in)",
        "  psu PSU2 replaced: serial P2K7LUST0002 -> P2K7LUST9999; firmware 1.3 -> 1.4",
        f"  health {DIMM}: health OK -> Warning; BMC says: {ECC} [worse]",
        f"  check part_health:{DIMM}@after: absent -> warn",
    ):
        assert line in lines, out
    # exactly one PSU and one part's health changed: nothing else is listed under either
    assert [x for x in lines if x.startswith(("  psu ", "  health "))] == lines[2:4], out

    code, out, _ = provision("report", "--diff", str(a), str(b), "--format", "json")
    d = json.loads(out)
    assert d["bmc_view"] == {"a": "pre_os", "b": "after"}
    assert d["psus"] == [
        {
            "slot": "PSU2",
            "kind": "replaced",
            "serial": {"a": "P2K7LUST0002", "b": "P2K7LUST9999"},
            "fields": [
                {"field": "serial", "a": "P2K7LUST0002", "b": "P2K7LUST9999"},
                {"field": "firmware", "a": "1.3", "b": "1.4"},
            ],
            "worse": False,
        }
    ]
    assert d["health"] == [
        {
            "part": DIMM,
            "location": None,
            "fields": [{"field": "health", "a": "OK", "b": "Warning"}],
            "worse": True,
            "message": ECC,
        }
    ]
    # the other way round: the same PSU slot, serials swapped back; the DIMM got better, not worse
    _, out, _ = provision("report", "--diff", str(b), str(a), "--format", "json")
    back = json.loads(out)
    assert back["psus"][0]["serial"] == {"a": "P2K7LUST9999", "b": "P2K7LUST0002"}
    assert back["health"][0]["fields"] == [{"field": "health", "a": "Warning", "b": "OK"}]
    assert back["health"][0]["worse"] is False


def test_diff_lists_a_removed_psu_and_one_gone_critical(tmp_path: Path) -> None:
    a = run_dir(tmp_path / "a")
    b = run_dir(tmp_path / "b")
    pre = load_json("lust-redfish-inventory.json")
    pre["psus"][2].update(health="Critical")
    _status(pre, "psu:PSU3").update(health="Critical")
    del pre["psus"][3]
    (b / "inventory-redfish.json").write_text(json.dumps(pre))
    _, out, _ = provision("report", "--diff", str(a), str(b))
    assert "  psu PSU3 changed: health OK -> Critical [worse]" in out.splitlines(), out
    assert (
        "  psu PSU4 removed (was serial P2K7LUST0004, model PWS-2K70A-1R, capacity_w 2700, firmware 1.3,"
        " input_voltage_v 208, state Enabled, health OK)" in out.splitlines()
    ), out
    assert "health psu:PSU3" not in out  # a PSU's health is said once, in its own line


def _health_rows(html: str, table: str) -> dict[str, str]:
    body = html[html.index(f'id="{table}"') :]
    body = body[: body.index("</table>")]
    return {m.group(1): m.group(0) for m in re.finditer(r'<tr[^>]*data-part="([^"]+)".*?</tr>', body)}


def test_html_shows_psus_and_marks_a_part_gone_critical_during_the_burn_in(tmp_path: Path) -> None:
    d = run_dir(tmp_path)
    after = load_json("lust-redfish-inventory.json")
    after["psus"][2].update(health="Critical")
    _status(after, "psu:PSU3").update(health="Critical", message="Input voltage lost")
    _status(after, DIMM).update(health="Warning", message=ECC)
    (d / "inventory-redfish-after.json").write_text(json.dumps(after))
    page = tmp_path / "report.html"
    code, _, _ = provision("report", "--run-dir", str(d), "-o", str(page))
    assert code == 1  # PSU3 Critical after the burn-in rejects the run
    out = render(page)
    assert out.console == []
    dom = out.dom
    inventory = dom[dom.index('id="inventory"') : dom.index('id="timeline"')]
    psus = _health_rows(inventory, "psus")
    assert sorted(psus) == ["psu:PSU1", "psu:PSU2", "psu:PSU3", "psu:PSU4"]
    for i in range(4):
        assert f"P2K7LUST{i + 1:04d}" in psus[f"psu:PSU{i + 1}"] and "PWS-2K70A-1R" in psus[f"psu:PSU{i + 1}"]
    assert "Health before the burn-in" in inventory and "2700" in psus["psu:PSU1"]
    assert 'data-change="worse"' in psus["psu:PSU3"] and 'class="bad"' in psus["psu:PSU3"]
    assert re.search(r'v-pass">OK</span></td><td><span class="v v-fail">Critical', psus["psu:PSU3"])
    assert [p for p, r in psus.items() if "worse" in r] == ["psu:PSU3"]
    # the parts' health: what got worse first, with before and after and the BMC's words
    notable = _health_rows(inventory, "health-notable")
    assert list(notable) == [DIMM, "psu:PSU3"]
    assert 'v-pass">OK' in notable[DIMM] and 'v-warn">Warning' in notable[DIMM] and ECC in notable[DIMM]
    assert "Input voltage lost" in notable["psu:PSU3"]
    total = len(after["health"])
    assert f"{total} parts read; {total - 2} OK before and after the burn-in; " in inventory
    assert "<b>2 got worse during the burn-in</b>" in inventory
    assert len(_health_rows(inventory, "health-all")) == total
    record_out = provision("report", "--run-dir", str(d), "--format", "json")[1]
    record = json.loads(record_out)
    jsonschema.validate(record, SCHEMA)
    assert record["inventory"]["after"]["psus"][2]["health"] == "Critical"


def _record(pre: dict[str, Any] | None, after: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"inventory": {"pre_os": pre, "in_os": None, **({"after": after} if after else {})}}


def test_html_with_one_bmc_read_or_none_says_what_it_knows() -> None:
    pre = load_json("lust-redfish-inventory.json")
    _status(pre, DIMM).update(health="Critical", state="UnavailableOffline")
    html = power_and_health(_record(pre))
    assert "Health before the burn-in" not in html and "<th>Health</th>" in html
    assert 'data-change="worse"' not in html  # one read: nothing to compare, the bad part still marked
    notable = _health_rows(html, "health-notable")
    assert list(notable) == [DIMM] and "class=bad" in notable[DIMM] and "UnavailableOffline" in notable[DIMM]
    assert f"{len(pre['health'])} parts read; {len(pre['health']) - 1} OK as the BMC stated it before" in html
    pre.pop("psus")
    pre["health"] = []
    html = power_and_health(_record(pre))
    assert "The BMC listed no power supplies." in html
    assert "The BMC stated no part's health: it is unknown, not good." in html
    assert power_and_health(_record(None)) == (
        "<p class=muted>No BMC inventory: power supplies and parts' health are unknown.</p>"
    )


def test_a_state_that_follows_power_is_no_news_but_going_offline_is() -> None:
    def view(*statuses: dict[str, Any]) -> dict[str, Any]:
        return {"health": list(statuses)}

    on = {"part": "system:1", "state": "Enabled", "health": "OK"}
    off = {**on, "state": "StandbyOffline"}
    assert diff_health(view(off), view(on)) == []
    nvme = {"part": "drive:NVMe2", "location": "Bay 2", "state": "Enabled", "health": "OK"}
    gone = {**nvme, "state": "UnavailableOffline", "health": "Critical", "message": "Drive not responding"}
    assert diff_health(view(nvme), view(gone)) == [
        {
            "part": "drive:NVMe2",
            "location": "Bay 2",
            "fields": [
                {"field": "state", "a": "Enabled", "b": "UnavailableOffline"},
                {"field": "health", "a": "OK", "b": "Critical"},
            ],
            "worse": True,
            "message": "Drive not responding",
        }
    ]
    # read on one side only: listed where it is not well there, and not at all where it is
    assert diff_health(view(), view(nvme)) == []
    assert [h["fields"] for h in diff_health(view(), view(gone))] == [
        [
            {"field": "state", "a": None, "b": "UnavailableOffline"},
            {"field": "health", "a": None, "b": "Critical"},
        ]
    ]
