"""INTERIM, test-only: the boot server answers the lab e2e test needs, until the bootchain's
`provision.bootserver` and `provision host` are on main (then the test drives those instead).

Runs inside the lab's controller namespace:
  python -m tests.support.labboot LISTEN_IP PORT RUNS_DIR EVENTS_FILE MIRROR_TREE_URL
- a run is open for HOST while RUNS_DIR/HOST.json exists ({"token", "kickstart"}), written by the test;
- GET /ipxe/HOST?token=T: the install script while the run is open and T matches, else "boot local";
- GET /ks/HOST?token=T: the run's kickstart;
- POST /callback/HOST/EVENT with "Authorization: Bearer T": one JSON line in EVENTS_FILE; finished
  and failed close the run.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

LOCAL = "#!ipxe\necho lab: nothing to install, booting from local disk\nexit 1\n"
LOCK = threading.Lock()


def make_handler(runs: Path, events: Path, tree: str, base: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            line = format % args
            sys.stdout.write(f"{time.time():.3f} {self.client_address[0]} {line.split('?')[0]}\n")
            sys.stdout.flush()

        def _answer(self, status: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _run(self, host: str, token: str | None) -> dict[str, str] | None:
            path = runs / f"{host}.json"
            try:
                run: dict[str, str] = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            return run if token and token == run.get("token") else None

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            tokens = parse_qs(url.query).get("token") or []
            token = tokens[0] if tokens else None
            if len(parts) != 2:
                return self._answer(404)
            kind, host = parts
            run = self._run(host, token)
            if kind == "ipxe":
                if run is None:
                    return self._answer(200, LOCAL)
                images = f"{tree}/images/pxeboot"
                return self._answer(
                    200,
                    "#!ipxe\n"
                    f"kernel {images}/vmlinuz initrd=initrd.img inst.ks={base}/ks/{host}?token={token}"
                    " console=ttyS0,115200\n"
                    f"initrd --name initrd.img {images}/initrd.img\nboot\n",
                )
            if kind == "ks" and run is not None:
                return self._answer(200, run["kickstart"])
            return self._answer(403)

        def do_POST(self) -> None:
            parts = urlsplit(self.path).path.strip("/").split("/")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 65536)).decode(errors="replace")
            auth = self.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else None
            if len(parts) != 3 or parts[0] != "callback":
                return self._answer(404)
            host, event = parts[1], parts[2]
            with LOCK:
                if self._run(host, token) is None:
                    return self._answer(403)
                with events.open("a") as out:
                    out.write(
                        json.dumps({"at": time.time(), "host": host, "event": event, "body": body}) + "\n"
                    )
                if event in ("finished", "failed"):
                    (runs / f"{host}.json").unlink(missing_ok=True)
            return self._answer(204)

    return Handler


def main(argv: list[str]) -> int:
    ip, port, runs, events, tree = argv
    server = ThreadingHTTPServer(
        (ip, int(port)), make_handler(Path(runs), Path(events), tree.rstrip("/"), f"http://{ip}:{port}")
    )
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
