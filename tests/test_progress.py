"""What `provision host` shows: plain lines, JSON lines, the live terminal table with telemetry."""

from __future__ import annotations

import io
import json

from rich.console import Console

from provision.cli.progress import JsonProgress, RichProgress
from provision.flow.burnin_steps import known_hosts_line, live_view
from provision.flow.logprogress import PlainProgress


def test_plain_progress_is_one_timestamped_line_per_event() -> None:
    out = io.StringIO()
    p = PlainProgress(out)
    p.step_started("h1", "wait_install", "wait for the installer's callbacks")
    p.waiting("h1", "wait_install", "the installer's 'finished' callback", 600.4, 7200)
    p.note(
        "h1",
        "follow_burnin",
        "suite cpu",
        {"suite": "cpu", "temps_c": {"temp.k10temp.Tctl": 71.4}, "power_w": 402},
    )
    p.step_finished("h1", "wait_install", "failed", 7200.0, "timed out")
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "h1: wait_install: started (wait for the installer's callbacks)",
        "h1: wait_install: waiting for the installer's 'finished' callback (600 s of 7200 s)",
        "h1: follow_burnin: suite cpu [suite cpu; temps temp.k10temp.Tctl 71°C; power 402 W]",
        "h1: wait_install: failed after 7200.0 s: timed out",
    ]


def test_json_progress_is_one_object_per_line() -> None:
    out = io.StringIO()
    p = JsonProgress(out)
    p.step_skipped("h1", "inspect", "already done")
    p.emit("summary", hosts=[{"host": "h1"}])
    events = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(e["event"], e.get("step")) for e in events] == [("step_skipped", "inspect"), ("summary", None)]
    assert events[0]["why"] == "already done"


def test_the_terminal_view_shows_the_step_and_live_burnin_telemetry() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=160, record=True)
    with RichProgress(console) as p:
        p.step_started("h1", "follow_burnin", "follow the burn-in until it ends")
        sample = '{"t": 3.0, "v": {"temp.k10temp.Tctl": 64.2, "temp.nvme.Composite": 41, "power.pkg": 388.5}}'
        p.note("h1", "follow_burnin", "suite cpu", {"suite": "cpu", **live_view(sample)})
    text = console.export_text()
    assert "follow_burnin" in text
    assert "temps temp.k10temp.Tctl 64°C, temp.nvme.Composite 41°C; power 388 W" in text


def test_live_view_picks_the_hottest_sensors_and_sums_power() -> None:
    sample = json.dumps(
        {"t": 1, "v": {"temp.a": 50, "temp.b": 80, "temp.c": 60, "temp.d": 70, "gpu0.temp_c": 75}}
    )
    assert live_view(sample) == {
        "temps_c": {"temp.b": 80.0, "gpu0.temp_c": 75.0, "temp.d": 70.0},
        "power_w": None,
    }
    assert live_view("{truncated") == {}
    assert live_view('{"t": 2, "phase": "cpu"}') == {}


def test_known_hosts_lines_pin_the_port() -> None:
    key = {"type": "ssh-ed25519", "key": "AAAAC3Nza"}
    assert known_hosts_line("10.0.2.11", 22, key) == "10.0.2.11 ssh-ed25519 AAAAC3Nza"
    assert known_hosts_line("127.0.0.1", 2222, key) == "[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nza"
