"""A small Redfish service for firmware update tests, speaking UpdateService as DMTF DSP0266 defines
it, which sushy-static (read-only) and sushy-emulator's fake driver do not: run as
`python -m tests.support.update_server --port N --requests-log FILE [--no-multipart] [--fail-task]
[--power-off] [--apply-times Immediate,OnReset]`.

- `UpdateService.SimpleUpdate` (JSON: ImageURI, Targets, TransferProtocol,
  @Redfish.OperationApplyTime): the service GETs ImageURI itself, as a BMC does (a failed download
  fails the Task; each download is a `FETCH status bytes sha256 uri` line in the log);
- `MultipartHttpPushUri` (multipart/form-data: an `UpdateParameters` JSON part with Targets and
  @Redfish.OperationApplyTime, and an `UpdateFile` part), unless `--no-multipart`;
- either answers 202 Accepted, `Location:` a task monitor, and the Task in the body; the Task runs
  over a few GETs (PercentComplete 0, 50, 100) to Completed (or Exception with `--fail-task`);
- an image is a text file whose first line is `VERSION <v>`: the target's SoftwareInventory
  Version becomes <v> when the Task completes (Immediate) or at the next ComputerSystem.Reset
  (OnReset); an image without that line fails its Task;
- a minimal System (PowerState, Reset) and Manager, so the project's own client connects.
Every request is one line (`METHOD target`) in `--requests-log`: the tests count pushes with it.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import hashlib
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

R = "/redfish/v1"
FW = f"{R}/UpdateService/FirmwareInventory"
LOCK = threading.Lock()
STATE: dict[str, Any] = {
    "versions": {"BIOS": "3.1", "BMC": "01.04.08", "CPLD": "F1.02"},
    "updateable": {"BIOS": True, "BMC": True, "CPLD": False},
    "pending": {},  # id -> version, applied at the next reset (OnReset)
    "tasks": {},  # n -> {"polls": int, "targets": [...], "version": str | None, "apply": str}
    "power": "On",
}
OPTS = argparse.Namespace(multipart=True, fail_task=False, log=None, apply_times=["Immediate", "OnReset"])


def _ref(path: str) -> dict[str, str]:
    return {"@odata.id": path}


def _coll(path: str, members: list[str]) -> dict[str, Any]:
    return {"@odata.id": path, "Members": [_ref(m) for m in members], "Members@odata.count": len(members)}


def _task(n: int) -> dict[str, Any]:
    t = STATE["tasks"][n]
    percent = min(100, 50 * t["polls"])
    state = "Running" if percent < 100 else ("Exception" if t["failed"] else "Completed")
    messages = [{"MessageId": "Update.1.0.UpdateInProgress", "Message": f"{percent}% written"}]
    if state == "Exception":
        messages.append({"MessageId": "Update.1.0.VerificationFailed", "Message": t["failed"]})
    return {
        "@odata.id": f"{R}/TaskService/Tasks/{n}",
        "@odata.type": "#Task.v1_7_0.Task",
        "Id": str(n),
        "TaskState": state,
        "TaskStatus": "Critical" if state == "Exception" else "OK",
        "PercentComplete": percent,
        "TaskMonitor": f"{R}/TaskService/TaskMonitors/{n}",
        "Messages": messages,
    }


def _poll(n: int) -> dict[str, Any]:
    """One GET of a Task moves it on; the moment it completes, its image is installed or pended."""
    t = STATE["tasks"][n]
    before = _task(n)["TaskState"]
    t["polls"] += 1
    doc = _task(n)
    if before == "Running" and doc["TaskState"] == "Completed":
        for target in t["targets"]:
            if t["apply"] == "OnReset":
                STATE["pending"][target] = t["version"]
            else:
                STATE["versions"][target] = t["version"]
    return doc


def _fetch(uri: str) -> tuple[bytes, str | None]:
    """GET the ImageURI as a BMC does; log `FETCH <status> <bytes> <sha256> <uri>` (the tests check
    what came, and that the URI's token is refused once the update is over)."""
    try:
        with urllib.request.urlopen(uri, timeout=10) as resp:
            image, status, error = resp.read(), resp.status, None
    except urllib.error.HTTPError as exc:
        image, status, error = exc.read(), exc.code, f"image download failed: HTTP {exc.code}"
    except OSError as exc:
        image, status, error = b"", 0, f"image download failed: {type(exc).__name__}"
    with open(OPTS.log, "a") as out:
        out.write(f"FETCH {status} {len(image)} {hashlib.sha256(image).hexdigest()} {uri}\n")
    return (b"", error) if error else (image, None)


def _start(targets: list[str], image: bytes, apply: str, fetch_error: str | None = None) -> int:
    first = image.split(b"\n", 1)[0].decode("utf-8", "replace")
    version = first.removeprefix("VERSION ").strip() if first.startswith("VERSION ") else None
    ids = [t.rstrip("/").rsplit("/", 1)[-1] for t in targets]
    failed = None
    if fetch_error:
        failed = fetch_error
    elif OPTS.fail_task:
        failed = "image signature verification failed"
    elif version is None:
        failed = "not a firmware image: no VERSION line"
    elif not ids or any(i not in STATE["versions"] or not STATE["updateable"][i] for i in ids):
        failed = f"targets not updateable: {ids}"
    n = len(STATE["tasks"]) + 1
    STATE["tasks"][n] = {"polls": 0, "targets": ids, "version": version, "apply": apply, "failed": failed}
    return n


def _get(path: str) -> dict[str, Any] | None:
    if path in (R, f"{R}/"):
        return {
            "@odata.id": f"{R}/", "Id": "RootService", "RedfishVersion": "1.17.0",
            "Systems": _ref(f"{R}/Systems"), "Managers": _ref(f"{R}/Managers"),
            "UpdateService": _ref(f"{R}/UpdateService"), "TaskService": _ref(f"{R}/TaskService"),
        }  # fmt: skip
    if path == f"{R}/Systems":
        return _coll(path, [f"{R}/Systems/1"])
    if path == f"{R}/Systems/1":
        return {
            "@odata.id": path, "Id": "1", "Name": "System", "PowerState": STATE["power"],
            "BiosVersion": STATE["versions"]["BIOS"], "Links": {"ManagedBy": [_ref(f"{R}/Managers/1")]},
            "Boot": {"BootSourceOverrideTarget": "None", "BootSourceOverrideEnabled": "Disabled"},
            "Actions": {"#ComputerSystem.Reset": {
                "target": f"{path}/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "ForceRestart"]}},
        }  # fmt: skip
    if path == f"{R}/Managers":
        return _coll(path, [f"{R}/Managers/1"])
    if path == f"{R}/Managers/1":
        return {"@odata.id": path, "Id": "1", "FirmwareVersion": STATE["versions"]["BMC"]}
    if path == f"{R}/UpdateService":
        doc: dict[str, Any] = {
            "@odata.id": path, "Id": "UpdateService", "ServiceEnabled": True,
            "FirmwareInventory": _ref(FW),
            "Actions": {"#UpdateService.SimpleUpdate": {
                "target": f"{path}/Actions/UpdateService.SimpleUpdate",
                "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"],
                "@Redfish.OperationApplyTimeSupport": {
                    "@odata.type": "#Settings.v1_3_5.OperationApplyTimeSupport",
                    "SupportedValues": OPTS.apply_times}}},
        }  # fmt: skip
        if OPTS.multipart:
            doc["MultipartHttpPushUri"] = f"{path}/upload"
        return doc
    if path == FW:
        return _coll(path, [f"{FW}/{i}" for i in STATE["versions"]])
    if path.startswith(f"{FW}/") and path.rsplit("/", 1)[-1] in STATE["versions"]:
        i = path.rsplit("/", 1)[-1]
        related = {"BIOS": f"{R}/Systems/1", "BMC": f"{R}/Managers/1"}.get(i)
        return {
            "@odata.id": path, "@odata.type": "#SoftwareInventory.v1_10_0.SoftwareInventory", "Id": i,
            "Name": i, "Version": STATE["versions"][i], "Updateable": STATE["updateable"][i],
            **({"RelatedItem": [_ref(related)]} if related else {}),
        }  # fmt: skip
    if path.startswith(f"{R}/TaskService/Tasks/"):
        n = int(path.rsplit("/", 1)[-1])
        return _poll(n) if n in STATE["tasks"] else None
    return None


def _payload(part: Any) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _log(self) -> None:
        with open(OPTS.log, "a") as out:
            out.write(f"{self.command} {self.path}\n")

    def _send(
        self, status: int, doc: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(doc).encode() if doc is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._log()
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        with LOCK:
            if path.startswith(f"{R}/TaskService/TaskMonitors/"):
                task = _poll(int(path.rsplit("/", 1)[-1]))
                return self._send(200 if task["TaskState"] != "Running" else 202, task)
            doc = _get(path)
        if doc is None:
            return self._send(404, {"error": {"code": "Base.1.0.ResourceMissingAtURI", "message": path}})
        self._send(200, doc)

    def do_POST(self) -> None:
        self._log()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = self.path.rstrip("/")
        with LOCK:
            if path == f"{R}/UpdateService/Actions/UpdateService.SimpleUpdate":
                body = json.loads(raw or b"{}")
                apply = body.get("@Redfish.OperationApplyTime", "Immediate")
                if apply not in OPTS.apply_times:
                    error = {"code": "Base.1.0.ActionParameterNotSupported", "message": apply}
                    return self._send(400, {"error": error})
                image, fetch_error = _fetch(body["ImageURI"])
                return self._accepted(_start(body.get("Targets") or [], image, apply, fetch_error))
            if path == f"{R}/UpdateService/upload" and OPTS.multipart:
                head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
                parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
                params = json.loads(_payload(parts["UpdateParameters"]) or b"{}")
                image = _payload(parts["UpdateFile"])
                apply = params.get("@Redfish.OperationApplyTime", "Immediate")
                return self._accepted(_start(params.get("Targets") or [], image, apply))
            if path == f"{R}/Systems/1/Actions/ComputerSystem.Reset":
                kind = json.loads(raw or b"{}").get("ResetType")
                STATE["power"] = "Off" if kind == "ForceOff" else "On"
                if kind != "ForceOff":
                    STATE["versions"].update(STATE["pending"])
                    STATE["pending"].clear()
                return self._send(204)
        self._send(405, {"error": {"code": "Base.1.0.ActionNotSupported", "message": path}})

    def _accepted(self, n: int) -> None:
        doc = _task(n)
        self._send(202, doc, {"Location": doc["TaskMonitor"]})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--requests-log", type=Path, required=True)
    ap.add_argument("--no-multipart", action="store_true")
    ap.add_argument("--fail-task", action="store_true")
    ap.add_argument("--power-off", action="store_true", help="the host starts powered off")
    ap.add_argument("--apply-times", default="Immediate,OnReset", help="SimpleUpdate's SupportedValues")
    args = ap.parse_args()
    OPTS.apply_times = args.apply_times.split(",")
    STATE["power"] = "Off" if args.power_off else "On"
    OPTS.multipart, OPTS.fail_task, OPTS.log = not args.no_multipart, args.fail_task, args.requests_log
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
