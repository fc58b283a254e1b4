"""`join: metal3` (bare-metal IPI clusters): the host as a metal3 BareMetalHost with its BMC credentials
Secret, and the adapter that creates them and follows the host's provisioning by the cluster.

`metal3_objects` is pure. Objects follow the baremetal-operator's API (metal3.io/v1alpha1,
docs/api.md in metal3-io/baremetal-operator): `spec.bmc.address` is the Redfish URL of the host's
system, `redfish-virtualmedia://host[:port]/redfish/v1/Systems/<id>` (the cluster boots the host
from virtual media, no provisioning network needed) or `redfish://` (PXE over the provisioning
network); `+http` when the BMC speaks plain HTTP. `disableCertificateVerification` is set only when
the host's `bmc.verify_tls` is explicitly false. `rootDeviceHints` pin the install to the first
boot disk by serial number (else WWN), so the cluster never installs onto an NVMe scratch drive.

The credentials come from the caller (handoff may not import provision.bmc, which reads them):
pass `provision.bmc.credentials.read_credentials(host.bmc.credentials)`, or None to render
placeholders (dry run). They are never logged; `redacted` hides them in anything printed.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from provision.handoff.join import Cancel
from provision.handoff.kube import ApiClient, _fail, client
from provision.handoff.manifests import LABEL_PREFIX, label_value
from provision.model.errors import BadInput, ExternalError
from provision.model.hosts import DiskId, Host
from provision.model.profile import Profile
from provision.model.taxonomy import CIRCLE_LABEL

NAMESPACE = "openshift-machine-api"
GROUP, VERSION, PLURAL = "metal3.io", "v1alpha1", "baremetalhosts"
DONE = ("provisioned", "externally provisioned")
# Where a host that is not progressing waits, and what moves it on.
STUCK_HINTS = {
    "available": "the host is ready but unclaimed: scale up the MachineSet of its pool to provision it",
    "registering": "the cluster cannot reach or log in to the BMC: check spec.bmc and the credentials Secret",
}


class UserPassword(Protocol):
    """provision.bmc.credentials.Credentials fits."""

    @property
    def user(self) -> str: ...

    @property
    def password(self) -> str: ...


def secret_name(host: Host) -> str:
    return f"{host.name}-bmc-secret"


def bmc_address(host: Host, virtual_media: bool = True) -> str:
    bmc = host.bmc
    if bmc.system is None:
        raise BadInput(
            f"hosts.yaml: {host.name}.bmc.system: expected /redfish/v1/Systems/<id> (metal3 names the "
            "system in spec.bmc.address), got none"
        )
    scheme, _, authority = bmc.url.partition("://")
    driver = "redfish-virtualmedia" if virtual_media else "redfish"
    return f"{driver}{'+http' if scheme == 'http' else ''}://{authority}{bmc.system}"


def root_device_hints(host: Host, boot_disks: tuple[DiskId, ...] | None = None) -> dict[str, str]:
    disks = boot_disks if boot_disks is not None else host.boot_disks
    first = disks[0] if disks else None
    if first is not None and first.serial:
        return {"serialNumber": first.serial}
    if first is not None and first.wwn:
        return {"wwn": first.wwn}
    raise BadInput(
        f"hosts.yaml: {host.name}.boot_disks[0]: expected a serial or wwn (metal3 rootDeviceHints; without "
        f"them the cluster may install onto a scratch drive), got {'neither' if first else 'no boot disk'}"
    )


def _placeholder(host: Host) -> str:
    return f"<from bmc.credentials {host.bmc.credentials}>"


def metal3_objects(
    profile: Profile,
    host: Host,
    bmc_credentials: UserPassword | None,
    virtual_media: bool = True,
    boot_disks: tuple[DiskId, ...] | None = None,
) -> list[dict[str, Any]]:
    """The BMC credentials Secret, then the BareMetalHost. None credentials: placeholders (dry run)."""
    p = profile.platform
    if bmc_credentials is None:
        data: dict[str, Any] = {
            "stringData": {"username": _placeholder(host), "password": _placeholder(host)}
        }
    else:
        data = {
            "data": {
                "username": base64.b64encode(bmc_credentials.user.encode()).decode(),
                "password": base64.b64encode(bmc_credentials.password.encode()).decode(),
            }
        }
    labels = {
        **p.labels,
        CIRCLE_LABEL: str(p.circle),
        f"{LABEL_PREFIX}/pool": p.pool,
        f"{LABEL_PREFIX}/profile": profile.name,
        f"{LABEL_PREFIX}/rack": label_value(host.rack),
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(host), "namespace": NAMESPACE, "labels": labels},
        "type": "Opaque",
        **data,
    }
    bmc: dict[str, Any] = {"address": bmc_address(host, virtual_media), "credentialsName": secret_name(host)}
    if host.bmc.verify_tls is False:  # only when the operator turned verification off, loudly, in hosts.yaml
        bmc["disableCertificateVerification"] = True
    bmh = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BareMetalHost",
        "metadata": {"name": host.name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "online": True,
            "bootMode": "UEFI",
            "bootMACAddress": host.boot_mac,
            "bmc": bmc,
            "rootDeviceHints": root_device_hints(host, boot_disks),
        },
    }
    return [secret, bmh]


def redacted(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects with every Secret's values replaced: what may be printed or stored."""
    out = copy.deepcopy(docs)
    for doc in out:
        if doc.get("kind") == "Secret":
            for key in ("data", "stringData"):
                if key in doc:
                    doc[key] = {k: "<redacted>" for k in doc[key]}
    return out


def _read(call: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
    try:
        resp = call(*args, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    loaded = json.loads(resp.data)
    return loaded if isinstance(loaded, dict) else None


def create_metal3(api: ApiClient, docs: list[dict[str, Any]]) -> list[str]:
    """Create the Secret and the BareMetalHost. An existing Secret gets our credentials (they may have
    been rotated); an existing BareMetalHost with another spec is a person's, and an error."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    done = []
    for doc in docs:
        name = doc["metadata"]["name"]
        try:
            if doc["kind"] == "Secret":
                done.append(_apply_secret(core, doc))
                continue
            current = _read(custom.get_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL, name)
            if current is None:
                custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, doc)
                done.append(f"{PLURAL}/{name} created")
                continue
            have = current.get("spec") or {}
            differ = sorted(k for k, v in doc["spec"].items() if have.get(k) != v)
            if differ:
                raise ExternalError(
                    f"kubernetes: {PLURAL}/{name} exists with another spec ({', '.join(differ)} differ): "
                    "left as it is; delete it or make hosts.yaml match"
                )
            done.append(f"{PLURAL}/{name} unchanged")
        except (ApiException, HTTPError) as exc:
            raise _fail(f"{doc['kind'].lower()} {NAMESPACE}/{name}", exc) from None
    return done


def _apply_secret(core: Any, doc: dict[str, Any]) -> str:
    name = doc["metadata"]["name"]
    current = _read(core.read_namespaced_secret, name, NAMESPACE)
    if current is None:
        core.create_namespaced_secret(NAMESPACE, doc)
        return f"secret/{name} created"
    if current.get("data") == doc.get("data"):
        return f"secret/{name} unchanged"
    rv = current["metadata"]["resourceVersion"]
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}]
    ops.append({"op": "add", "path": "/data", "value": doc.get("data", {})})
    core.patch_namespaced_secret(name, NAMESPACE, ops)
    return f"secret/{name} updated"


def follow_bmh(
    api: ApiClient,
    host_name: str,
    timeout_s: float,
    note: Callable[[str], None],
    cancel: Cancel | None = None,
    interval_s: float = 5.0,
) -> str:
    """Poll the BareMetalHost's status.provisioning.state, telling each change, until provisioned.
    An error (operationalStatus error, or a state that says so) or the timeout is an ExternalError
    with the host's own errorMessage; the return value is the final state."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout_s
    seen: str | None = None
    while True:
        if cancel is not None:
            cancel.check()
        try:
            bmh = _read(custom.get_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL, host_name)
        except (ApiException, HTTPError) as exc:
            raise _fail(f"{PLURAL}/{host_name}", exc) from None
        if bmh is None:
            raise ExternalError(f"kubernetes: {PLURAL} {NAMESPACE}/{host_name}: not found (was it deleted?)")
        status = bmh.get("status") or {}
        state = str((status.get("provisioning") or {}).get("state") or "")
        operational = str(status.get("operationalStatus") or "")
        if state != seen:
            note(f"baremetalhost {host_name}: {state or 'not yet registered'}")
            seen = state
        if operational == "error" or state.endswith("error"):
            kind = status.get("errorType") or "error"
            message = status.get("errorMessage") or "no errorMessage"
            raise ExternalError(
                f"kubernetes: {PLURAL}/{host_name}: {kind} in state {state or 'unknown'}: {message}"
            )
        if state in DONE:
            return state
        if time.monotonic() >= deadline:
            hint = STUCK_HINTS.get(state)
            raise ExternalError(
                f"kubernetes: {PLURAL}/{host_name}: waited {timeout_s:g} s for provisioned, "
                f"got {state or 'no state'}" + (f" ({hint})" if hint else "")
            )
        pause = max(0.0, min(interval_s, deadline - time.monotonic()))
        if cancel is not None:
            cancel.sleep(pause)
        else:
            time.sleep(pause)
