"""`provision store migrate --from sqlite:DIR --to postgresql://...` against a real PostgreSQL: every
row and document moves, the copy is verified by counts and digests, the moved store works (tokens,
documents, fresh step and event numbers), and a target in use or a password in the URL is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.cli import main as cli
from provision.store.state import HostState, RunStatus, StateStore, StepOutcome
from provision.store.transfer import TABLE_KEYS, table_digests
from tests.support.postgres import Server, postgres_or_skip

HOST = "inferno-host-compute-1"


@pytest.fixture(scope="module")
def pg() -> Iterator[Server]:
    with postgres_or_skip() as server:
        yield server


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _populated(state: Path) -> tuple[str, str]:
    with StateStore.open(state) as store:
        store.set_host_state(HOST, HostState.inspected, "inventory matched")
        run = store.create_run(HOST, "provision")
        store.step_started(run.id, "inspect")
        store.step_finished(run.id, "inspect", StepOutcome.ok, {"cpus": 384}, "matched")
        store.step_started(run.id, "install")
        store.add_event(HOST, "callback", {"stage": "pre"}, run.id)
        store.put_document(run.id, "inventory.json", {"cpus": 384})
        store.put_document(run.id, "dmesg.txt", b"edac: no errors\n")
        token = store.issue_token(run.id, HOST, ttl_s=3600)
        done = store.create_run("inferno-host-master", "inspect")
        store.finish_run(done.id, RunStatus.succeeded)
    return run.id, token


def test_a_sqlite_store_moves_to_postgresql_verified(
    pg: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    run_id, token = _populated(state)
    url = pg.url(pg.new_database(), tmp_path / "shared")
    code, out, err = _cli(["store", "migrate", "--from", f"sqlite:{state}", "--to", url, "--json"], capsys)
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["verified"] is True and report["documents"] == 2
    assert {t: v["rows"] for t, v in report["tables"].items()} == {
        "hosts": 2,
        "host_history": 1,
        "runs": 2,
        "steps": 2,
        "events": 1,
        "documents": 2,
        "tokens": 1,
    }
    assert all(v["sha256"] == v["target_sha256"] for v in report["tables"].values())
    with StateStore.open(state) as old, StateStore.open(url) as new:
        assert table_digests(old._conn) == table_digests(new._conn)
        assert new.check_token(HOST, token) == old.get_run(run_id)
        assert new.get_document(run_id, "dmesg.txt") == b"edac: no errors\n"
        assert new.completed_steps(run_id) == {"inspect"}
        assert [h.reason for h in new.host_history(HOST)] == ["inventory matched"]
        # The numbering continues after the moved rows.
        new.step_finished(run_id, "install", StepOutcome.ok)
        new.step_started(run_id, "burnin")
        new.add_event(HOST, "callback", {"stage": "post"}, run_id)
        assert [e.id for e in new.events(host=HOST)] == [1, 2]
        assert len(new.steps(run_id)) == 3
    code, out, err = _cli(["store", "migrate", "--from", f"sqlite:{state}", "--to", url], capsys)
    assert code == 2
    assert err == (
        "provision: store migrate: expected an empty target store, got rows in hosts (2), host_history (1), "
        "runs (2), steps (3), events (2), documents (2), tokens (1)\n"
    )


def test_the_human_report_and_the_refusals(
    pg: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    _populated(state)
    url = pg.url(pg.new_database(), tmp_path / "shared")
    code, out, _ = _cli(["store", "migrate", "--from", str(state), "--to", url], capsys)
    assert code == 0
    assert out.splitlines()[0].startswith("hosts: 2 row(s), sha256 ")
    assert out.splitlines()[-2:] == [
        "documents: 2 file(s), 34 bytes, digests checked",
        "verified: the target holds the same rows and documents",
    ]
    assert len(out.splitlines()) == len(TABLE_KEYS) + 2
    cases = [
        (
            ["--from", f"sqlite:{tmp_path / 'none'}", "--to", url],
            "expected a SQLite state store there, got none",
        ),
        (["--from", f"sqlite:{state}", "--to", str(tmp_path)], "--to: expected a postgresql:// URL"),
        (["--from", url, "--to", url], "--from: expected sqlite:STATE_DIR, got 'postgresql://"),
        (
            ["--from", f"sqlite:{state}", "--to", url.replace("postgres@", "postgres:s3cret@")],
            "expected the password through PGPASSFILE or password=env:NAME, got one written in the URL",
        ),
    ]
    for args, message in cases:
        code, _, err = _cli(["store", "migrate", *args], capsys)
        assert code == 2 and message in err and "s3cret" not in err
        assert err.startswith("provision: ") and err.count("\n") == 1
