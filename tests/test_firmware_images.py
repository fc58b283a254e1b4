"""Local firmware images offered by the boot server behind a per-update token, for a BMC without
multipart push: tests.support.update_server (DSP0266, `--no-multipart`) GETs the image from the URL
SimpleUpdate names, over real HTTP from the boot server `provision firmware` embeds; a wrong,
missing, expired or finished token gets 403 with no content, and no log, output or stored document
holds the token."""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from provision.install.bootserver import BootServer
from provision.install.firmware_images import offer_image
from provision.model.catalog import Catalog
from provision.store.state import RunStatus, StateStore
from tests.support.procs import free_port
from tests.test_firmware_update import HOST, firmware, image, image_server, pushes, update_bmc


@pytest.fixture(autouse=True)
def _creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERNO_BMC_COMPUTE_1", "admin:secret")


def set_boot_url(profiles: Path, url: str) -> None:
    path = profiles / "site.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["boot_server_url"] = url
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def get(url: str, method: str = "GET") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def fetches(log: Path) -> list[list[str]]:
    """The update server's downloads: [status, bytes, sha256, uri]."""
    return [line.split(" ", 4)[1:] for line in log.read_text().splitlines() if line.startswith("FETCH ")]


def stored_text(state: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in state.rglob("*") if p.is_file())


def test_a_local_image_goes_through_the_boot_server_behind_a_token(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # sushy logs request bodies at DEBUG: the ImageURI among them
    img = image(tmp_path, "3.2")
    boot = f"http://127.0.0.1:{free_port()}"
    set_boot_url(profiles_copy, boot)
    with update_bmc(tmp_path, profiles_copy, "--no-multipart") as log:
        rc, data, err = firmware(
            tmp_path, profiles_copy, capsys, "--update", f"bios={img}", "--image-version", "3.2"
        )
        assert rc == 0, err
        assert (data["update"]["before"], data["update"]["after"]) == ("3.1", "3.2")
        assert pushes(log) == ["POST /redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"]
        assert "ComputerSystem.Reset" not in log.read_text()  # Immediate: installed as the Task ends
        [[status, size, sha, uri]] = fetches(log)
    # The service fetched the very bytes of the file, from the boot server at the site's URL.
    assert (status, int(size), sha) == (
        "200",
        img.stat().st_size,
        hashlib.sha256(img.read_bytes()).hexdigest(),
    )
    assert uri.startswith(f"{boot}/firmware/{HOST}/bios-3.2.bin?token=")
    token = uri.split("token=", 1)[1]
    assert len(token) >= 40
    assert "offered to the BMC by the boot server" in err
    # The token reached the BMC and nothing else: not the logs, the output, nor the state store.
    assert f"GET /firmware/{HOST}/bios-3.2.bin?token=<redacted> -> 200" in caplog.text
    assert "ImageURI" in caplog.text  # sushy's DEBUG line was there, and redacted
    for text in (caplog.text, err, json.dumps(data), stored_text(tmp_path / "state")):
        assert token not in text
    with StateStore.open(tmp_path / "state") as store:
        run = store.list_runs(HOST, "firmware")[0]
        doc = json.loads(store.get_document(run.id, "firmware-update-BIOS.json"))
        offer = next(d for d in store.documents(run.id) if d.name.startswith("firmware-image-"))
        kept = json.loads(store.get_document(run.id, offer.name))
    assert doc["via"] == "SimpleUpdate (boot server)" and doc["image"] == "bios-3.2.bin"
    assert kept["closed"] is True and kept["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()


def test_a_foreign_server_on_the_boot_address_fails_before_the_bmc_is_asked(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = image(tmp_path, "3.2")
    other = tmp_path / "other"
    other.mkdir()
    with image_server(other) as url, update_bmc(tmp_path, profiles_copy, "--no-multipart") as log:
        set_boot_url(profiles_copy, url)  # taken: the embedded server cannot listen there
        rc, _, err = firmware(
            tmp_path, profiles_copy, capsys, "--update", f"bios={img}", "--image-version", "3.2"
        )
        assert rc == 3, err
        ours = [line for line in err.splitlines() if line.startswith(("provision", HOST))]
        assert any("does not serve the image (HTTP 404)" in line for line in ours), err
        assert not any("token=" in line for line in ours)  # (the foreign server logs what it got)
        assert pushes(log) == [] and fetches(log) == []
    with StateStore.open(tmp_path / "state") as store:  # the run stopped half way: failed, not running
        assert [r.status for r in store.list_runs(HOST, "firmware")] == [RunStatus.failed]


def test_the_boot_server_serves_an_offer_only_to_its_token_while_it_is_open(
    tmp_path: Path, catalog: Catalog, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    img = tmp_path / "bmc-2.0.bin"
    img.write_bytes(b"VERSION 2.0\n" + bytes(range(256)) * 4096)  # 1 MiB: streamed from the file
    run = store.create_run(HOST, "firmware")
    with BootServer(catalog, store, ("127.0.0.1", 0)) as srv:
        with offer_image(store, run.id, HOST, img, srv.url) as url:
            token = url.split("token=", 1)[1]
            base = url.split("?", 1)[0]
            assert get(url) == (200, img.read_bytes())
            assert get(url, "HEAD") == (200, b"")
            assert get(f"{base}?token=wrong-{token[:8]}") == (403, b"")
            assert get(base) == (403, b"")
            assert get(url.replace("bmc-2.0.bin", "bios-3.2.bin")) == (403, b"")  # another name
            assert get(url.replace(HOST, "inferno-host-master")) == (403, b"")  # another host's BMC
            assert get(url.replace(HOST, "no-such-host")) == (404, b"")
        assert get(url) == (403, b"")  # the update is over: so is the offer
        with offer_image(store, run.id, HOST, img, srv.url, ttl_s=-1) as expired:
            assert get(expired) == (403, b"")
        with offer_image(store, run.id, HOST, img, srv.url) as late:
            store.finish_run(run.id, RunStatus.failed)
            assert get(late) == (403, b"")  # only a running run's offers are served
    assert "-> 403" in caplog.text
    assert token not in caplog.text and late.split("token=")[1] not in caplog.text


def test_the_host_step_offers_the_profiles_image_through_its_boot_server_and_checks_its_sha256(
    tmp_path: Path, profiles_copy: Path
) -> None:
    from types import SimpleNamespace

    from provision.flow.engine import StepName
    from provision.flow.firmware_steps import FirmwareSteps
    from provision.flow.hostenv import HostEnv, StepContext
    from provision.model.catalog import load_catalog
    from provision.model.errors import BadInput
    from tests.test_firmware_inventory import with_baseline
    from tests.test_firmware_update import _Notes

    (profiles_copy / "images").mkdir()
    img = image(profiles_copy / "images", "3.2")
    digest = hashlib.sha256(img.read_bytes()).hexdigest()
    rule = {"minimum": "3.2", "image": "images/bios-3.2.bin", "image_version": "3.2", "sha256": "0" * 64}
    with update_bmc(tmp_path, profiles_copy, "--no-multipart") as log:
        with_baseline(profiles_copy, {"baseline": {"bios": rule}})
        catalog = load_catalog(profiles_copy)
        host = catalog.host(HOST)
        with (
            StateStore.open(tmp_path / "state") as store,
            BootServer(catalog, store, ("127.0.0.1", 0)) as srv,
        ):
            run = store.create_run(HOST, "provision")

            def step(profile_catalog: Catalog) -> FirmwareSteps:
                profile = profile_catalog.profile_of(host)
                env = HostEnv(
                    store=store, host=host, profile=profile, timeouts=profile.timeouts,
                    progress=_Notes(),  # type: ignore[arg-type]
                    catalog=catalog, boot_url=srv.url, netboot_dir=tmp_path, profiles_dir=profiles_copy,
                )  # fmt: skip
                return FirmwareSteps(StepContext(env, run))

            call = SimpleNamespace(step=StepName.firmware)
            with pytest.raises(BadInput) as refused:  # the profile pins another file: nothing is pushed
                step(catalog).firmware(call)  # type: ignore[arg-type]
            assert f"sha256: expected {'0' * 64} (the profile's), got {digest}" in str(refused.value)
            assert pushes(log) == [] and fetches(log) == []

            with_baseline(profiles_copy, {"baseline": {"bios": {**rule, "sha256": digest}}})
            result = step(load_catalog(profiles_copy)).firmware(call)  # type: ignore[arg-type]
            assert result.message == "1 part(s) updated to the baseline"
        [[status, _, sha, uri]] = fetches(log)
        assert (status, sha) == ("200", digest) and uri.startswith(f"{srv.url}/firmware/{HOST}/bios-3.2.bin?")
        assert pushes(log) == ["POST /redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"]


def test_an_apply_time_the_bmc_does_not_list_is_refused_before_anything_is_sent(
    tmp_path: Path, profiles_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image(tmp_path, "3.3")
    with (
        image_server(tmp_path) as url,
        update_bmc(tmp_path, profiles_copy, "--apply-times", "Immediate") as log,
    ):
        args = ["--update", f"bios={url}/bios-3.3.bin", "--image-version", "3.3", "--apply-time", "OnReset"]
        rc, _, err = firmware(tmp_path, profiles_copy, capsys, *args)
        assert rc == 2, err
        want = "--apply-time: expected one of Immediate (the BMC's SimpleUpdate OperationApplyTimeSupport)"
        assert f"{want}, got OnReset" in err
        assert pushes(log) == [] and fetches(log) == []
