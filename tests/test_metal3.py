"""`join: metal3`: the BMC credentials Secret and the BareMetalHost as data, then created in the test
Kubernetes API server, whose baremetal-operator stand-in walks the host through its provisioning
states (and into an error when told to)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from provision.bmc.credentials import Credentials
from provision.handoff.kube import client, connect
from provision.handoff.metal3 import create_metal3, follow_bmh, metal3_objects, redacted
from provision.model.errors import BadInput, ExternalError
from provision.model.hosts import DiskId, Host
from tests.support.bundle import catalog
from tests.support.kubeapi import serving

HOST = "inferno-host-compute-1"
PASSWORD = "hunter2-very-secret"
CREDS = Credentials("admin", PASSWORD)


def host(**bmc: Any) -> Host:
    h = catalog().host(HOST)
    return h.model_copy(update={"bmc": h.bmc.model_copy(update=bmc)}) if bmc else h


def objects(h: Host | None = None, creds: Credentials | None = CREDS, **kw: Any) -> list[dict[str, Any]]:
    h = h or host()
    return metal3_objects(catalog().profiles[h.profile], h, creds, **kw)


def test_secret_and_baremetalhost_for_the_seed_host() -> None:
    secret, bmh = objects()
    assert (secret["kind"], secret["type"], secret["metadata"]["namespace"]) == (
        "Secret",
        "Opaque",
        "openshift-machine-api",
    )
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "username": "admin",
        "password": PASSWORD,
    }
    assert bmh["apiVersion"] == "metal3.io/v1alpha1" and bmh["metadata"]["name"] == HOST
    assert bmh["spec"] == {
        "online": True,
        "bootMode": "UEFI",
        "bootMACAddress": "3c:ec:ef:20:01:10",
        "bmc": {
            "address": "redfish-virtualmedia://10.0.1.21/redfish/v1/Systems/1",
            "credentialsName": f"{HOST}-bmc-secret",
        },
        "rootDeviceHints": {"serialNumber": "S6KLNA0W100201"},  # the first boot disk, never a scratch NVMe
    }
    assert bmh["metadata"]["labels"]["inferno.circle"] == "2"
    assert bmh["metadata"]["labels"]["inferno.io/pool"] == "inferno-pool-gpu"


@pytest.mark.parametrize(
    ("bmc", "virtual_media", "address", "insecure"),
    [
        (
            {"url": "http://10.0.1.21:8000"},
            True,
            "redfish-virtualmedia+http://10.0.1.21:8000/redfish/v1/Systems/1",
            None,
        ),
        ({"verify_tls": False}, False, "redfish://10.0.1.21/redfish/v1/Systems/1", True),
        (
            {"verify_tls": "/etc/pki/bmc-ca.pem"},
            True,
            "redfish-virtualmedia://10.0.1.21/redfish/v1/Systems/1",
            None,
        ),
    ],
)
def test_bmc_address_and_tls_follow_the_hosts_bmc(
    bmc: dict[str, Any], virtual_media: bool, address: str, insecure: bool | None
) -> None:
    spec = objects(host(**bmc), virtual_media=virtual_media)[1]["spec"]["bmc"]
    assert spec["address"] == address
    assert spec.get("disableCertificateVerification") is insecure


def test_root_device_hints_fall_back_to_wwn_and_refuse_no_disk() -> None:
    wwn_only = (DiskId(wwn="0x5002538e40c1a201"),)
    assert objects(boot_disks=wwn_only)[1]["spec"]["rootDeviceHints"] == {"wwn": "0x5002538e40c1a201"}
    with pytest.raises(BadInput) as err:
        objects(boot_disks=())
    assert str(err.value) == (
        f"hosts.yaml: {HOST}.boot_disks[0]: expected a serial or wwn (metal3 rootDeviceHints; without them "
        "the cluster may install onto a scratch drive), got no boot disk"
    )
    with pytest.raises(BadInput, match=r"bmc.system: expected /redfish/v1/Systems/<id>.*got none"):
        objects(host(system=None))


def test_dry_run_and_printed_objects_never_hold_the_secret() -> None:
    dry = objects(creds=None)
    assert dry[0]["stringData"] == {
        "username": "<from bmc.credentials env:INFERNO_BMC_COMPUTE_1>",
        "password": "<from bmc.credentials env:INFERNO_BMC_COMPUTE_1>",
    }
    shown = json.dumps(redacted(objects()))
    assert PASSWORD not in shown and base64.b64encode(PASSWORD.encode()).decode() not in shown
    assert json.loads(shown)[0]["data"] == {"username": "<redacted>", "password": "<redacted>"}


def test_created_then_followed_to_provisioned_with_a_node(tmp_path: Path) -> None:
    notes: list[str] = []
    with serving(tmp_path, {}) as kube:
        api = connect(kube.kubeconfig)
        assert create_metal3(api, objects()) == [
            f"secret/{HOST}-bmc-secret created",
            f"baremetalhosts/{HOST} created",
        ]
        assert follow_bmh(api, HOST, 30, notes.append, interval_s=0.01) == "provisioned"
        assert create_metal3(api, objects()) == [
            f"secret/{HOST}-bmc-secret unchanged",
            f"baremetalhosts/{HOST} unchanged",
        ]
        assert client.CoreV1Api(api).read_node(HOST).metadata.name == HOST
        stored = client.CoreV1Api(api).read_namespaced_secret(f"{HOST}-bmc-secret", "openshift-machine-api")
        assert base64.b64decode(stored.data["password"]).decode() == PASSWORD
        log = kube.log.read_text()
    assert [n.rsplit(": ", 1)[1] for n in notes] == [
        "registering",
        "inspecting",
        "available",
        "provisioning",
        "provisioned",
    ]
    assert PASSWORD not in "".join(notes) and PASSWORD not in log


def test_a_baremetalhost_in_error_fails_with_its_message(tmp_path: Path) -> None:
    faults = {HOST: {"at": "inspecting", "message": "Failed to inspect hardware. Reason: timeout"}}
    with serving(tmp_path, {"bmh_faults": faults}) as kube:
        api = connect(kube.kubeconfig)
        create_metal3(api, objects())
        with pytest.raises(ExternalError) as err:
            follow_bmh(api, HOST, 30, lambda _: None, interval_s=0.01)
    assert str(err.value) == (
        f"kubernetes: baremetalhosts/{HOST}: inspecting error in state inspecting: "
        "Failed to inspect hardware. Reason: timeout"
    )


def test_someone_elses_baremetalhost_is_left_alone(tmp_path: Path) -> None:
    theirs = objects()[1]
    theirs["spec"] = {**theirs["spec"], "bootMACAddress": "3c:ec:ef:20:01:99"}
    seed = {"baremetalhosts": {f"openshift-machine-api/{HOST}": theirs}}
    with serving(tmp_path, seed) as kube:
        with pytest.raises(ExternalError, match="exists with another spec \\(bootMACAddress differ\\)"):
            create_metal3(connect(kube.kubeconfig), objects())
        assert not [
            c
            for c in kube.calls()
            if c["method"] == "PATCH" or ("baremetalhosts" in c["path"] and c["method"] == "POST")
        ]


def test_a_missing_baremetalhost_and_a_timeout_name_what_was_awaited(tmp_path: Path) -> None:
    with serving(tmp_path, {}) as kube:
        api = connect(kube.kubeconfig)
        with pytest.raises(ExternalError, match=f"baremetalhosts openshift-machine-api/{HOST}: not found"):
            follow_bmh(api, HOST, 5, lambda _: None, interval_s=0.01)
        create_metal3(api, objects())
        with pytest.raises(ExternalError) as err:
            follow_bmh(api, HOST, 0, lambda _: None)
    assert str(err.value) == (
        f"kubernetes: baremetalhosts/{HOST}: waited 0 s for provisioned, got registering (the cluster "
        "cannot reach or log in to the BMC: check spec.bmc and the credentials Secret)"
    )


def test_rotated_credentials_update_the_secret_guarded_by_its_version(tmp_path: Path) -> None:
    old = objects(creds=Credentials("admin", "old-password"))[0]
    seed = {
        "secrets": {
            f"openshift-machine-api/{HOST}-bmc-secret": {
                **old,
                "metadata": {**old["metadata"], "resourceVersion": "5"},
            }
        }
    }
    with serving(tmp_path, seed) as kube:
        api = connect(kube.kubeconfig)
        assert create_metal3(api, objects())[0] == f"secret/{HOST}-bmc-secret updated"
        stored = client.CoreV1Api(api).read_namespaced_secret(f"{HOST}-bmc-secret", "openshift-machine-api")
        assert base64.b64decode(stored.data["password"]).decode() == PASSWORD
        patch = next(c for c in kube.calls() if c["method"] == "PATCH")
    assert patch["content_type"] == "application/json-patch+json"
    assert patch["body"][0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "5"}
