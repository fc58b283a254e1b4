"""Adapter: apply the handoff manifests through the Kubernetes API (the `kubernetes` client) and check
that the node is Ready and advertises its GPUs. Nothing from the client leaves this module.

Changes are JSON Patches (RFC 6902) guarded by a `test` of the object's resourceVersion (custom
objects: JSON Merge Patches carrying the resourceVersion, the only kind the client sends for them),
so a taint or label someone else changed meanwhile is never overwritten: the call fails and a
person runs it again. Taints are merged: ours (the pool's and the quarantine) are replaced, every
other taint on the node (the node controller's not-ready, a cordon) is kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as _client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from provision.handoff.manifests import QUARANTINE_TAINT
from provision.model.errors import BadInput, ExternalError

# The client's generated models are typed per kind; the manifests here are plain dicts (which the
# client accepts), so the adapter talks to it untyped rather than casting at every call.
client: Any = _client
config: Any = _config
ApiClient = Any

CUSTOM = {
    "MachineConfigPool": ("machineconfiguration.openshift.io", "v1", "machineconfigpools"),
    "KubeletConfig": ("machineconfiguration.openshift.io", "v1", "kubeletconfigs"),
}


@dataclass
class KubeResult:
    applied: list[str] = field(default_factory=list)
    ready: bool | None = None
    gpu_capacity: str | None = None
    notes: list[str] = field(default_factory=list)


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _fail(what: str, exc: Exception) -> ExternalError:
    if isinstance(exc, ApiException):
        return ExternalError(f"kubernetes: {what}: HTTP {exc.status} {exc.reason}")
    return ExternalError(f"kubernetes: {what}: {exc}")


def connect(kubeconfig: Path) -> ApiClient:
    if not kubeconfig.is_file():
        raise BadInput(f"--kubeconfig {kubeconfig}: expected a kubeconfig file, got no such file")
    try:
        return config.new_client_from_config(config_file=str(kubeconfig))
    except (ConfigException, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"--kubeconfig {kubeconfig}: expected a valid kubeconfig, got {exc}") from None


def _meta_ops(current: dict[str, Any], desired: dict[str, Any], field_: str) -> list[dict[str, Any]]:
    want = desired.get("metadata", {}).get(field_) or {}
    have = current.get("metadata", {}).get(field_)
    if not want:
        return []
    if have is None:
        return [{"op": "add", "path": f"/metadata/{field_}", "value": want}]
    return [
        {"op": "add", "path": f"/metadata/{field_}/{_pointer(k)}", "value": v}
        for k, v in want.items()
        if have.get(k) != v
    ]


def _guard(current: dict[str, Any]) -> list[dict[str, Any]]:
    """A JSON Patch `test` of the resourceVersion we read: a change made meanwhile fails the patch."""
    meta = current.get("metadata") or {}
    version = meta.get("resourceVersion")
    if not version:
        what = f"{str(current.get('kind') or 'object').lower()} {meta.get('name') or '?'}"
        raise ExternalError(
            f"kubernetes: {what}: expected metadata.resourceVersion (to guard the patch against a "
            "concurrent change), got none: not patched"
        )
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": version}]


def patch_node(api: ApiClient, node_doc: dict[str, Any], ours: set[str]) -> None:
    core = client.CoreV1Api(api)
    name = node_doc["metadata"]["name"]
    try:
        current = api.sanitize_for_serialization(core.read_node(name))
        kept = [t for t in (current.get("spec", {}).get("taints") or []) if t["key"] not in ours]
        ops = _guard(current) + _meta_ops(current, node_doc, "labels")
        ops.append({"op": "add", "path": "/spec/taints", "value": kept + node_doc["spec"]["taints"]})
        core.patch_node(name, ops)
    except (ApiException, HTTPError) as exc:
        raise _fail(f"node {name}", exc) from None


def _apply_namespace(api: ApiClient, doc: dict[str, Any]) -> str:
    core = client.CoreV1Api(api)
    name = doc["metadata"]["name"]
    try:
        current = api.sanitize_for_serialization(core.read_namespace(name))
    except ApiException as exc:
        if exc.status != 404:
            raise _fail(f"namespace {name}", exc) from None
        core.create_namespace(doc)
        return f"namespace/{name} created"
    ops = _meta_ops(current, doc, "labels") + _meta_ops(current, doc, "annotations")
    if ops:
        core.patch_namespace(name, _guard(current) + ops)
        return f"namespace/{name} updated"
    return f"namespace/{name} unchanged"


def _apply_custom(api: ApiClient, doc: dict[str, Any]) -> str:
    group, version, plural = CUSTOM[doc["kind"]]
    custom = client.CustomObjectsApi(api)
    name = doc["metadata"]["name"]
    try:
        current = custom.get_cluster_custom_object(group, version, plural, name)
    except ApiException as exc:
        if exc.status != 404:
            raise _fail(f"{plural}/{name}", exc) from None
        custom.create_cluster_custom_object(group, version, plural, doc)
        return f"{plural}/{name} created"
    if current.get("spec") == doc["spec"]:
        return f"{plural}/{name} unchanged"
    # The client sends custom objects' patches as JSON Merge Patch only; the resourceVersion in it is
    # the API server's precondition (409 if the object changed since we read it).
    rv = current["metadata"]["resourceVersion"]
    custom.patch_cluster_custom_object(
        group, version, plural, name, {"metadata": {"resourceVersion": rv}, "spec": doc["spec"]}
    )
    return f"{plural}/{name} updated"


def _apply_storage_class(api: ApiClient, doc: dict[str, Any]) -> str:
    storage = client.StorageV1Api(api)
    name = doc["metadata"]["name"]
    try:
        current = api.sanitize_for_serialization(storage.read_storage_class(name))
    except ApiException as exc:
        if exc.status != 404:
            raise _fail(f"storageclass {name}", exc) from None
        storage.create_storage_class(doc)
        return f"storageclass/{name} created"
    # A StorageClass's parameters are immutable: a different one is a person's decision, not ours.
    if current.get("provisioner") != doc["provisioner"] or current.get("parameters") != doc["parameters"]:
        raise ExternalError(
            f"kubernetes: storageclass {name}: expected {doc['provisioner']} {doc['parameters']}, "
            f"got {current.get('provisioner')} {current.get('parameters')}"
        )
    return f"storageclass/{name} unchanged"


def apply(api: ApiClient, docs: list[dict[str, Any]], ours: set[str]) -> list[str]:
    """Everything but the Node first (the pool and its kubelet config exist before the node joins)."""
    done = []
    try:
        for doc in docs:
            kind = doc["kind"]
            if kind == "Namespace":
                done.append(_apply_namespace(api, doc))
            elif kind in CUSTOM:
                done.append(_apply_custom(api, doc))
            elif kind == "StorageClass":
                done.append(_apply_storage_class(api, doc))
        for doc in docs:
            if doc["kind"] == "Node":
                patch_node(api, doc, ours)
                done.append(f"node/{doc['metadata']['name']} labelled and tainted")
    except (ApiException, HTTPError) as exc:
        raise _fail("apply", exc) from None
    return done


def quarantine(api: ApiClient, node: str) -> None:
    """Keep our NoSchedule taint on a node that is not accepted (labels untouched)."""
    doc = {
        "metadata": {"name": node},
        "spec": {
            "taints": [
                {
                    "key": QUARANTINE_TAINT.key,
                    "value": QUARANTINE_TAINT.value,
                    "effect": QUARANTINE_TAINT.effect.value,
                }
            ]
        },
    }
    patch_node(api, doc, {QUARANTINE_TAINT.key})


def node_status(api: ApiClient, node: str, resource: str) -> tuple[bool, str | None]:
    try:
        status = api.sanitize_for_serialization(client.CoreV1Api(api).read_node(node)).get("status", {})
    except (ApiException, HTTPError) as exc:
        raise _fail(f"node {node}", exc) from None
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
    return ready, (status.get("capacity") or {}).get(resource)


def wait_ready(
    api: ApiClient,
    node: str,
    resource: str | None,
    gpus: int,
    timeout_s: float,
    interval_s: float = 2.0,
) -> tuple[bool, str | None]:
    """Ready, and on GPU hosts `resource` capacity equal to the profile's count, within timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        ready, capacity = node_status(api, node, resource or "nvidia.com/gpu")
        if ready and (resource is None or capacity == str(gpus)):
            return ready, capacity
        if time.monotonic() >= deadline:
            return ready, capacity
        time.sleep(interval_s)
