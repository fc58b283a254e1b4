"""BMC posture warnings: read from real Redfish services (sushy-static serving a Dell-style tree with
IPMI and HTTP on, `root` enabled and a self-signed certificate; the same tree fixed; sushy-emulator,
which serves none of it), judged as warnings that say how to fix them, joined to `provision inspect`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from burnin.schema import Verdict
from provision.acceptance.posture import posture_findings
from provision.bmc.posture import read_posture
from provision.bmc.redfish import connect
from provision.model.hosts import Bmc
from provision.model.posture import AccountState, BmcPosture, CertificateState, ProtocolState
from tests.support.mockup import write_tree
from tests.support.redfish_rig import cli, emulator, set_bmc, static

TREE = Path(__file__).parent / "fixtures" / "bios" / "dell-tree.json"
M = "/redfish/v1/Managers/iDRAC.Embedded.1"
CERT = M + "/NetworkProtocol/HTTPS/Certificates/SecurityCertificate.1"
HOST = "inferno-host-master"


def _tree() -> dict[str, Any]:
    tree: dict[str, Any] = json.loads(TREE.read_text())
    return tree


def _fixed(tree: dict[str, Any]) -> dict[str, Any]:
    tree = copy.deepcopy(tree)
    proto = tree[M + "/NetworkProtocol"]
    proto["IPMI"]["ProtocolEnabled"] = False
    proto["HTTP"]["ProtocolEnabled"] = False
    tree["/redfish/v1/AccountService/Accounts/2"]["Enabled"] = False
    tree[CERT]["Issuer"] = {"CommonName": "Inferno Site CA", "Organization": "Inferno"}
    return tree


def _read(tmp_path: Path, tree: dict[str, Any]) -> BmcPosture:
    root = write_tree(tree, tmp_path / "mockup")
    with static(root, tmp_path / "static.log") as svc:
        bmc = Bmc(url=svc.url, credentials="env:POSTURE_TEST", auth="basic", retry_delay_s=0.05)
        with connect(bmc) as client, client.resources() as fetch:
            return read_posture(fetch)


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTURE_TEST", "admin:Canary-pw-31c")
    monkeypatch.setenv("INFERNO_BMC_MASTER", "admin:Canary-pw-31c")


def test_dell_tree_warns_of_ipmi_http_root_and_self_signed(tmp_path: Path) -> None:
    posture = _read(tmp_path, _tree())
    assert posture.manager == M and not posture.gaps
    found = {f.check: f for f in posture_findings(posture)}
    assert {c: f.verdict for c, f in found.items()} == {
        "bmc_ipmi_lan": Verdict.WARN,
        "bmc_plain_http": Verdict.WARN,
        "bmc_default_account": Verdict.WARN,
        "bmc_self_signed_cert": Verdict.WARN,
    }
    assert found["bmc_ipmi_lan"].observed == "enabled on port 623"
    assert (
        f'PATCH {M}/NetworkProtocol {{"IPMI": {{"ProtocolEnabled": false}}}}'
        in found["bmc_ipmi_lan"].expected
    )
    assert found["bmc_default_account"].component == "bmc:account:root"
    assert (
        found["bmc_default_account"].observed == "root (Dell iDRAC / OpenBMC default, Administrator) enabled"
    )
    assert '/redfish/v1/AccountService/Accounts/2 {"Enabled": false}' in found["bmc_default_account"].expected
    assert found["bmc_self_signed_cert"].observed.startswith(
        "self-signed: issuer = subject (CN=idrac-7XK2M93"
    )
    assert all(not f.required and f.evidence == ["redfish.inventory"] for f in found.values())


def test_fixed_tree_passes_and_falls_back_to_certificate_locations(tmp_path: Path) -> None:
    tree = _fixed(_tree())
    del tree[M + "/NetworkProtocol"]["HTTPS"]["Certificates"]  # only the CertificateService links it
    found = {f.check: f for f in posture_findings(_read(tmp_path, tree))}
    assert {c: f.verdict for c, f in found.items()} == dict.fromkeys(found, Verdict.PASS)
    assert found["bmc_default_account"].observed == "enabled accounts: inferno-ops"
    assert found["bmc_self_signed_cert"].observed == "issued by CN=Inferno Site CA, O=Inferno"


def test_missing_services_are_inconclusive_never_pass(tmp_path: Path) -> None:
    tree = _tree()
    for path in [p for p in tree if "AccountService" in p or "Certificate" in p or "NetworkProtocol" in p]:
        del tree[path]
    del tree["/redfish/v1"]["CertificateService"]
    posture = _read(tmp_path, tree)
    assert set(posture.gaps) == {"protocols", "accounts", "certificates"}
    assert {f.verdict for f in posture_findings(posture)} == {Verdict.INCONCLUSIVE}


@pytest.mark.parametrize(
    ("posture", "verdicts"),
    [
        (BmcPosture(None), ["inconclusive"] * 4),
        (
            BmcPosture(
                "/m",
                {"IPMI": ProtocolState("IPMI", None), "HTTP": ProtocolState("HTTP", False)},
                [AccountState("/a/1", "ADMIN", None), AccountState("/a/2", "USERID", False)],
                [CertificateState("/c", None, None, None), CertificateState("/d", "CN=a", "CN=b", False)],
            ),
            ["inconclusive", "pass", "inconclusive", "inconclusive", "pass"],
        ),
    ],
)
def test_posture_table(posture: BmcPosture, verdicts: list[str]) -> None:
    assert [f.verdict.value for f in posture_findings(posture)] == verdicts


def test_inspect_shows_posture_warnings_without_failing_on_them(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_tree(_tree(), tmp_path / "mockup")
    with static(root, tmp_path / "static.log") as svc:
        set_bmc(profiles_copy, HOST, url=svc.url, retry_delay_s=0.05)
        base = ["--profiles", str(profiles_copy), "--state", str(tmp_path / "state")]
        _, out, _ = cli([*base, "inspect", HOST, "--json"], capsys)
    data = json.loads(out)
    posture = {f["check"]: f for f in data["findings"] if f["check"].startswith("bmc_")}
    assert {f["verdict"] for f in posture.values()} == {"warn"}
    assert set(posture) == {"bmc_ipmi_lan", "bmc_plain_http", "bmc_default_account", "bmc_self_signed_cert"}
    assert "Canary-pw-31c" not in out


def test_sushy_emulator_serves_no_posture_so_all_is_inconclusive(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with emulator(tmp_path / "emu") as emu:
        bmc = Bmc(url=emu.url, credentials="env:POSTURE_TEST", auth="basic", retry_delay_s=0.05)
        with connect(bmc) as client, client.resources() as fetch:
            posture = read_posture(fetch)
    found = posture_findings(posture)
    assert all(f.verdict in (Verdict.INCONCLUSIVE, Verdict.PASS, Verdict.WARN) for f in found)
    assert not any(f.verdict is Verdict.PASS and f.check != "bmc_default_account" for f in found)
