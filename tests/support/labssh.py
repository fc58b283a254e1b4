"""Run commands on a lab host over SSH, from inside the lab's controller namespace.

`python -m tests.support.labssh ADDRESS USER KEY KNOWN_HOSTS TIMEOUT_S CMD...` waits until sshd
answers, connects with the pinned host keys only (RejectPolicy: an unknown key is refused), runs
each CMD and prints one JSON object: {"connect_s": .., "results": [{"cmd", "rc", "out", "err"}]}.
Exit 3 when it never got in, with the last error on stderr.
"""

from __future__ import annotations

import json
import sys
import time

import paramiko


def main(argv: list[str]) -> int:
    address, user, key, known_hosts, timeout_s, *cmds = argv
    deadline = time.monotonic() + float(timeout_s)
    t0 = time.monotonic()
    last = ""
    while time.monotonic() < deadline:
        client = paramiko.SSHClient()
        client.load_host_keys(known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                address, username=user, key_filename=key, look_for_keys=False, allow_agent=False, timeout=5
            )
        except (TimeoutError, OSError, paramiko.SSHException) as exc:
            last = f"{type(exc).__name__}: {exc}"
            client.close()
            if isinstance(exc, paramiko.BadHostKeyException):
                break
            time.sleep(2)
            continue
        results = []
        for cmd in cmds:
            _, out, err = client.exec_command(cmd, timeout=120)
            rc = out.channel.recv_exit_status()
            results.append({"cmd": cmd, "rc": rc, "out": out.read().decode(), "err": err.read().decode()})
        client.close()
        print(json.dumps({"connect_s": round(time.monotonic() - t0, 1), "results": results}))
        return 0
    print(f"never got in to {address}: {last}", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
