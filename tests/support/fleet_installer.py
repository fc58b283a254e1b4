"""One installer stand-in for a whole fleet of emulated hosts, in one thread (no Redfish traffic).

It reads the lean emulator's own state file (tests.support.lean_emulator, fake driver) to see a
system power on (Off -> On) with its boot override on Pxe, then does what PXE firmware and the
kickstart do at the edges, over real HTTP: reads the iPXE URL the controller publishes for DHCP,
fetches the iPXE script and the kickstart with the run's token, and posts `started` and `finished`
(with the installed host's SSH host key). Used by bench/fleet.py and tests/test_admission.py.
"""

from __future__ import annotations

import pickle
import re
import sqlite3
import threading
import time
from pathlib import Path

import requests

KS_URL = re.compile(r"inst\.ks=(\S+)")
BEARER = re.compile(r"Authorization: Bearer ([A-Za-z0-9_\-]+)")
CALLBACK = re.compile(r"(https?://\S+/callback/[A-Za-z0-9._-]+)/started")


class Installers(threading.Thread):
    """Every host's installer stand-in, watching the emulator's state file (no Redfish traffic)."""

    def __init__(self, db: Path, netboot: Path, host_key: str, names: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.db, self.netboot, self.host_key, self.names = db, netboot, host_key, names
        self.stop = threading.Event()
        self.installs = 0
        self.retries = 0  # connections refused or reset by the boot server, tried again
        self.gave_up = 0  # installs whose boot server answered too late (read timeout): never called back
        self._count = threading.Lock()
        self._last: dict[str, str] = {}

    def _states(self) -> dict[str, dict[str, object]]:
        if not self.db.exists():
            return {}
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("select key, value from cache").fetchall()
        return {pickle.loads(k): pickle.loads(v) for k, v in rows}

    def _call(self, method: str, url: str, **kwargs: object) -> requests.Response:
        """Like the kickstart's curl with --retry: a refused or reset connection is tried again.
        (The boot server's listen backlog is the socketserver default of 5: a burst of a few
        hundred installers gets resets.)"""
        for _ in range(9):
            try:
                return requests.request(method, url, timeout=30, **kwargs)  # type: ignore[arg-type]
            except requests.ConnectionError:
                with self._count:
                    self.retries += 1
                time.sleep(1)
        return requests.request(method, url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def _install(self, host: str) -> None:
        try:
            self._fetch_and_call_back(host)
        except requests.RequestException:  # as a kickstart's curl gives up: that install never calls back
            with self._count:
                self.gave_up += 1

    def _fetch_and_call_back(self, host: str) -> None:
        url = (self.netboot / f"{host}.url").read_text().strip()
        script = self._call("GET", url).text
        m = KS_URL.search(script)
        if m is None:
            return
        ks = self._call("GET", m.group(1)).text
        token, cb = BEARER.search(ks), CALLBACK.search(ks)
        if not token or not cb:
            return
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        self._call("POST", f"{cb.group(1)}/started", data="started", headers=headers)
        self._call("POST", f"{cb.group(1)}/finished", data=self.host_key, headers=headers)
        with self._count:
            self.installs += 1

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                states = self._states()
            except sqlite3.Error:
                continue
            for uuid, st in states.items():
                power, boot = str(st.get("power_state")), str(st.get("boot_device", "Hdd"))
                if self._last.get(uuid) == "Off" and power == "On" and boot == "Pxe":
                    threading.Thread(target=self._install, args=(self.names[uuid],), daemon=True).start()
                self._last[uuid] = power
