"""The state store on both engines: the core cases of tests/test_state.py run unchanged against
SQLite and against a real PostgreSQL (tests.support.postgres), and what only the shared store has:
its URL (no password ever in it), its schema checks, several processes writing one database."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provision.cli import main as cli
from provision.model.errors import BadInput, StateError
from provision.store import pgdb
from provision.store.state import HostState, RunStatus, StateStore, StepOutcome
from provision.store.storeurl import is_postgres, parse_target
from tests import test_state as core
from tests.conftest import REPO
from tests.support.postgres import APP_PASSWORD, APP_ROLE, Server, postgres_or_skip
from tests.support.procs import stop_pid

HOST = core.HOST

CORE_CASES: list[Callable[[StateStore], None]] = [
    core.test_host_state_keeps_history,
    core.test_runs_are_sortable_and_filtered,
    core.test_runs_left_running_by_a_dead_process_are_interrupted,
    core.test_journal_records_attempts_and_completed_steps,
    core.test_events_filter,
    core.test_documents_are_files_with_their_digest,
    core.test_a_run_stopped_by_an_error_keeps_its_token_until_it_succeeds,
    core.test_threads_share_one_store,
]


@pytest.fixture(scope="module")
def pg() -> Iterator[Server]:
    with postgres_or_skip() as server:
        yield server


@pytest.fixture
def pg_url(pg: Server, tmp_path: Path) -> str:
    return pg.url(pg.new_database(), tmp_path / "shared")


def _open(engine: str, tmp_path: Path, pg: Server | None) -> StateStore:
    if engine == "sqlite":
        return StateStore.open(tmp_path / "state")
    assert pg is not None
    return StateStore.open(pg.url(pg.new_database(), tmp_path / "shared"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    pg = request.getfixturevalue("pg") if request.param == "postgresql" else None
    with _open(request.param, tmp_path, pg) as store:
        yield store


@pytest.mark.parametrize("case", CORE_CASES, ids=[c.__name__.removeprefix("test_") for c in CORE_CASES])
def test_core_case_on_both_engines(case: Callable[[StateStore], None], engine_store: StateStore) -> None:
    case(engine_store)


def test_a_failed_step_keeps_what_it_collected_across_reopening(pg_url: str) -> None:
    with StateStore.open(pg_url) as store:
        run = store.create_run(HOST, "burnin")
        store.step_started(run.id, "gpu")
        store.put_document(run.id, "gpu-partial.json", {"samples": [1, 2]})
        store.step_finished(run.id, "gpu", StepOutcome.failed, {"document": "gpu-partial.json"}, "XID 79")
        store.finish_run(run.id, RunStatus.failed)
    with StateStore.open(pg_url) as again:
        assert again.schema_version == pgdb.SCHEMA_VERSION
        assert again.get_document(run.id, "gpu-partial.json").startswith(b"{")
        assert again.steps(run.id)[0].evidence == {"document": "gpu-partial.json"}
        assert again.state_dir == parse_target(pg_url).documents_dir and again.db_path is None


def test_tokens_are_stored_hashed_in_postgresql(pg: Server, pg_url: str) -> None:
    with StateStore.open(pg_url) as store:
        run = store.create_run(HOST, "provision")
        token = store.issue_token(run.id, HOST, ttl_s=300)
        assert store.check_token(HOST, token) == store.get_run(run.id)
    with pg.admin(pg_url.split("/")[3].split("?")[0]) as db:
        rows = db.execute("SELECT sha256, expires_at FROM tokens").fetchall()
    assert [r[0] for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in repr(rows)


def test_the_url_survives_clicks_path_and_keeps_no_password(tmp_path: Path) -> None:
    url = "postgresql://app@db.example:5433/provision?sslmode=require&documents=/srv/shared&lease_s=5"
    folded = Path(url)
    assert str(folded) != url and is_postgres(folded)
    for given in (url, folded):
        target = parse_target(given)
        assert target.conninfo == "postgresql://app@db.example:5433/provision?sslmode=require"
        assert target.documents_dir == Path("/srv/shared") and target.lease_s == 5.0
    socket_url = "postgresql:///provision?host=/run/postgresql&documents=/srv/shared"
    assert parse_target(Path(socket_url)).conninfo == "postgresql:///provision?host=%2Frun%2Fpostgresql"
    assert not is_postgres(tmp_path / "state")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://app:s3cret@db/provision?documents=/srv/d",
            r"^state postgresql://db/provision: expected the password through PGPASSFILE or "
            r"password=env:NAME, got one written in the URL$",
        ),
        (
            "postgresql://app@db/provision?documents=/srv/d&password=s3cret",
            r"^state postgresql://db/provision: password: expected env:NAME \(or PGPASSFILE\), "
            r"got a literal password$",
        ),
        (
            "postgresql://app@db/provision",
            r"^state postgresql://db/provision: expected documents=/shared/dir in the URL",
        ),
        ("postgresql://app@db/provision?documents=rel", r"documents: expected an absolute path, got 'rel'$"),
        ("postgresql://app@db/?documents=/srv/d", r"expected a database name in the URL, got none$"),
        ("postgresql://db/p?documents=/d&lease_s=0", r"lease_s: expected a number of seconds > 0, got '0'$"),
    ],
)
def test_a_bad_url_is_refused_with_the_rule_and_no_password(url: str, message: str) -> None:
    with pytest.raises(BadInput, match=message) as exc:
        parse_target(url)
    assert "s3cret" not in str(exc.value)


def test_the_password_comes_from_env_or_pgpassfile(
    pg: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = pg.new_database()
    docs = tmp_path / "shared"
    with_env = pg.url(name, docs, user=APP_ROLE, extra="&password=env:PROVISION_PG_PASSWORD")
    monkeypatch.delenv("PGPASSFILE", raising=False)
    monkeypatch.delenv("PROVISION_PG_PASSWORD", raising=False)
    with pytest.raises(
        BadInput, match=r"password=env:PROVISION_PG_PASSWORD: expected the variable to be set"
    ):
        StateStore.open(with_env)
    monkeypatch.setenv("PROVISION_PG_PASSWORD", "wrong")
    with pytest.raises(StateError, match=r"expected a reachable PostgreSQL store, got .*password") as exc:
        StateStore.open(with_env)
    assert "wrong" not in str(exc.value)
    monkeypatch.setenv("PROVISION_PG_PASSWORD", APP_PASSWORD)
    with StateStore.open(with_env) as store:
        store.set_host_state(HOST, HostState.inspected, "as app, password from the environment")
        assert store.url is not None and APP_PASSWORD not in store.url
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:{APP_ROLE}:{APP_PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    with StateStore.open(pg.url(name, docs, user=APP_ROLE)) as store:
        assert store.get_host_state(HOST) is HostState.inspected


def test_readers_never_create_and_refuse_what_is_not_a_current_store(pg: Server, tmp_path: Path) -> None:
    name = pg.new_database()
    url = pg.url(name, tmp_path / "shared")
    assert StateStore.open_existing(url) is None
    assert StateStore.open_existing_for_write(url) is None
    with pg.admin(name) as db:
        assert db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone() == (0,)
    StateStore.open(url).close()
    reader = StateStore.open_existing(url)
    assert reader is not None
    with reader as store:
        assert store.list_hosts() == []
        with pytest.raises(StateError, match="read-only transaction"):
            store.set_host_state(HOST, HostState.inspected)
    with pg.admin(name) as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(
        StateError, match=rf"expected schema version <= {pgdb.SCHEMA_VERSION} \(this provision\), got 99"
    ):
        StateStore.open(url)
    foreign = pg.new_database()
    with pg.admin(foreign) as db:
        db.execute("CREATE TABLE other (x int)")
    with pytest.raises(
        StateError, match=r"got another program's database \(1 table\(s\), no schema_version\)"
    ):
        StateStore.open(pg.url(foreign, tmp_path / "shared"))


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql:///nothing?host={tmp_path}&documents={tmp_path / 'shared'}"
    with pytest.raises(
        StateError, match=r"^postgresql:///nothing\?host=\S+: expected a reachable PostgreSQL store, got "
    ):
        StateStore.open(url)


def test_two_processes_write_one_postgresql_store_without_losing_a_row(pg_url: str) -> None:
    StateStore.open(pg_url).close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", core.WRITER, pg_url, "150", f"writer-{n}"], env=env, start_new_session=True
        )
        for n in range(2)
    ]
    try:
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
    finally:
        for p in procs:
            stop_pid(p.pid)
    with StateStore.open(pg_url) as store:
        runs = store.list_runs(HOST)
        assert len(runs) == len({r.id for r in runs}) == 300
        assert {r.kind for r in runs} == {"writer-0", "writer-1"}
        assert len(store.events(kind="sample")) == 300


def test_state_option_and_variable_select_the_postgresql_store(
    pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with StateStore.open(pg_url) as store:
        store.set_host_state(HOST, HostState.accepted, "verdict accepted")
    for how in ("option", "variable"):
        argv = (
            ["--state", pg_url, "status", HOST, "--json"] if how == "option" else ["status", HOST, "--json"]
        )
        if how == "variable":
            monkeypatch.setenv("PROVISION_STATE", pg_url)
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        out, err = capsys.readouterr()
        assert (exc.value.code, err) == (0, "")
        assert '"state": "accepted"' in out


def test_a_local_burnin_keeps_its_files_in_the_shared_documents_directory(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Commands that write files beside the store (the agent's run directory, its result) put them in
    the shared `documents=` directory on PostgreSQL, never in a directory named after the URL."""
    plan = str(REPO / "tests" / "fixtures" / "local-short-plan.json")
    with pytest.raises(SystemExit) as exc:
        cli.main(["--state", pg_url, "burnin", "--local", "--plan", plan, "--json"])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, 1), err  # the verdict is this machine's; the files are the point
    shared = parse_target(pg_url).documents_dir
    run_dir = Path(json.loads(out)["run_dir"])
    assert shared in run_dir.parents and (run_dir / "result.json").is_file()
    assert list(run_dir.glob("agent/*.json")), sorted(p.name for p in run_dir.rglob("*"))
    assert not Path("postgresql:").exists()
