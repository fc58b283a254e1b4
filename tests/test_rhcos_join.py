"""`handoff.join: rhcos`: the Ignition config against the Ignition 3.4.0 rules (tests/data/ignition), the
Butane mirror layout, no scratch drive ever named, hostile catalog text refused at load, the boot
server's RHCOS routes over real HTTP, the lint warning of the seed's conflict, and --dry-run."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kickstart.render import RenderError
from provision.install.bootserver import BootServer
from provision.install.ignition import BIOS_BOOT_GUID, ESP_GUID
from provision.install.rhcos import render_rhcos_ipxe, rhcos_plan
from provision.install.rhcos_routes import HANDOFF_RUN_KIND, IGNITION_SERVED, RHCOS_INSTALLED
from provision.lint.catalog import Severity, lint_catalog
from provision.model.catalog import Catalog, load_catalog
from provision.model.errors import BadInput
from provision.model.hosts import DiskId
from provision.store.state import HostState, StateStore
from tests.conftest import PROFILES
from tests.test_handoff_apply import provision, store_run

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "ignition" / "ignition-3.4.0-rules.schema.json").read_text()
)
TOKEN = "tok-rhcos-0123456789"
COMPUTE = "inferno-host-compute-1"
SERVER = "http://10.0.1.5:8080"


def accepted_run(state: Path, tmp: Path, profiles: Path = PROFILES) -> None:
    """A stored run of compute-1 whose acceptance record says accepted (the burn-in fixture's record,
    verdict set): the handoff is under test here, not the judging of the fixture."""
    with contextlib.suppress(AssertionError):  # the fixture's own verdict is another test's business
        store_run(state, tmp)
    record = json.loads((tmp / "r.json").read_text())
    record["verdict"] = "accepted"
    with StateStore.open(state) as store:
        run = store.list_runs(COMPUTE)[-1]
        store.put_document(run.id, "acceptance.json", record)
        store.set_host_state(COMPUTE, HostState.accepted)


def validate(cfg: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(SCHEMA).validate(cfg)


def decoded(source: str) -> str:
    head, _, payload = source.partition(",")
    assert head == "data:text/plain;charset=utf-8;base64"
    return base64.b64decode(payload, validate=True).decode()


def files_of(cfg: dict[str, Any]) -> dict[str, tuple[int, str]]:
    return {f["path"]: (f["mode"], decoded(f["contents"]["source"])) for f in cfg["storage"]["files"]}


def test_every_shipped_hosts_ignition_config_follows_the_ignition_3_4_rules(catalog: Catalog) -> None:
    for host in catalog.hosts.values():
        plan = rhcos_plan(catalog, host, TOKEN, SERVER)
        validate(plan.ignition)
        profile = catalog.profile_of(host)
        pool = profile.handoff.config_pool or profile.platform.pool
        if profile.platform.pool == "inferno-pool-master":  # a control-plane host boots master's config
            assert pool == "master"
        merge = plan.ignition["ignition"]["config"]["merge"]
        assert merge == [{"source": f"https://api-int.inferno.example.com:22623/config/{pool}"}]
        assert "security" not in plan.ignition["ignition"]  # the site gives no CA: none is invented


def test_the_schema_rules_refuse_what_ignition_refuses(catalog: Catalog) -> None:
    cfg = rhcos_plan(catalog, catalog.host(COMPUTE), TOKEN, SERVER).ignition
    for broken in (
        {**cfg, "ignition": {**cfg["ignition"], "version": "3.5.0"}},
        {
            **cfg,
            "storage": {**cfg["storage"], "raid": [{"name": "md-root", "level": "raid0", "devices": []}]},
        },
        {**cfg, "storage": {**cfg["storage"], "files": [{"path": "etc/hostname", "mode": 420}]}},
        {**cfg, "sytemd": {}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_the_mirror_is_butanes_boot_device_mirror_over_the_two_boot_disks(catalog: Catalog) -> None:
    plan = rhcos_plan(catalog, catalog.host(COMPUTE), TOKEN, SERVER)
    storage = plan.ignition["storage"]
    a, b = "/dev/disk/by-id/wwn-0x5002538e40c1a201", "/dev/disk/by-id/wwn-0x5002538e40c1a202"
    assert plan.install_dev == a
    assert [d["device"] for d in storage["disks"]] == [a, b]
    for i, disk in enumerate(storage["disks"], start=1):
        assert disk["wipeTable"] is True
        assert disk["partitions"] == [
            {"label": f"bios-{i}", "sizeMiB": 1, "typeGuid": BIOS_BOOT_GUID},
            {"label": f"esp-{i}", "sizeMiB": 127, "typeGuid": ESP_GUID},
            {"label": f"boot-{i}", "sizeMiB": 384},
            {"label": f"root-{i}"},
        ]
    assert storage["raid"] == [
        {
            "name": "md-boot",
            "level": "raid1",
            "devices": ["/dev/disk/by-partlabel/boot-1", "/dev/disk/by-partlabel/boot-2"],
            "options": ["--metadata=1.0"],
        },
        {
            "name": "md-root",
            "level": "raid1",
            "devices": ["/dev/disk/by-partlabel/root-1", "/dev/disk/by-partlabel/root-2"],
        },
    ]
    assert [(f["device"], f["format"], f["label"]) for f in storage["filesystems"]] == [
        ("/dev/disk/by-partlabel/esp-1", "vfat", "esp-1"),
        ("/dev/disk/by-partlabel/esp-2", "vfat", "esp-2"),
        ("/dev/md/md-boot", "ext4", "boot"),
        ("/dev/md/md-root", "xfs", "root"),
    ]


def test_hostname_and_static_keyfiles_by_mac_with_the_route_on_the_management_nic(catalog: Catalog) -> None:
    files = files_of(rhcos_plan(catalog, catalog.host(COMPUTE), TOKEN, SERVER).ignition)
    assert files["/etc/hostname"] == (0o644, f"{COMPUTE}\n")
    mode, eth0 = files["/etc/NetworkManager/system-connections/eth0.nmconnection"]
    assert mode == 0o600
    assert "mac-address=3C:EC:EF:20:01:10\n" in eth0
    assert "method=manual\naddress1=10.0.2.11/24,10.0.2.1\ndns=10.0.1.53;\n" in eth0
    _, eth1 = files["/etc/NetworkManager/system-connections/eth1.nmconnection"]
    assert "address1=10.20.2.11/24\n" in eth1  # no gateway: one default route
    assert files["/etc/inferno/callback.header"] == (0o600, f"Authorization: Bearer {TOKEN}\n")


def test_neither_the_merge_source_nor_the_mirror_ever_names_a_scratch_drive(catalog: Catalog) -> None:
    for host in catalog.hosts.values():
        # Every shipped host, with scratch drives it could have (NVMe by serial and WWN), listed.
        fake = tuple(
            DiskId(serial=f"S5SCRATCH{i}", wwn=f"0x6{i:015x}", model="MZQL27T6HBLA") for i in range(4)
        )
        h = host.model_copy(update={"scratch_disks": fake})
        plan = rhcos_plan(catalog, h, TOKEN, SERVER)
        text = json.dumps(plan.ignition)
        named = set(re.findall(r"/dev/disk/by-id/[^\"]+", text))
        boot = {f"/dev/disk/by-id/wwn-0x{d.wwn[2:].lower()}" for d in host.boot_disks if d.wwn}
        assert named == boot, (host.name, named)
        assert not re.search(r"nvme|S5SCRATCH|6000000000000", text, re.IGNORECASE), host.name
        merge = plan.ignition["ignition"]["config"]["merge"][0]["source"]
        assert "/dev/" not in merge and "nvme" not in merge
        assert plan.install_dev in boot and "nvme" not in plan.ipxe
    # A boot disk that is also a scratch disk is refused, never installed over.
    host = catalog.host(COMPUTE)
    clash = host.model_copy(update={"scratch_disks": (host.boot_disks[1],)})
    with pytest.raises(BadInput, match="expected disks apart from scratch_disks"):
        rhcos_plan(catalog, clash, TOKEN, SERVER)


def test_the_ipxe_script_boots_the_live_images_with_the_install_disk_and_the_tokened_ignition(
    catalog: Catalog,
) -> None:
    plan = rhcos_plan(catalog, catalog.host(COMPUTE), TOKEN, SERVER)
    lines = plan.ipxe.splitlines()
    assert lines[0] == "#!ipxe"
    kernel = next(line for line in lines if line.startswith("kernel "))
    assert kernel.split()[1] == "http://10.0.1.5/rhcos/4.14/rhcos-4.14.0-x86_64-live-kernel-x86_64"
    args = kernel.split()[2:]
    assert (
        "coreos.live.rootfs_url=http://10.0.1.5/rhcos/4.14/rhcos-4.14.0-x86_64-live-rootfs.x86_64.img" in args
    )
    assert "coreos.inst.install_dev=/dev/disk/by-id/wwn-0x5002538e40c1a201" in args
    assert f"coreos.inst.ignition_url={SERVER}/ignition/{COMPUTE}?token={TOKEN}" in args
    assert "ip=10.0.2.11::10.0.2.1:255.255.255.0:inferno-host-compute-1::none" in args
    assert (
        "initrd --name main http://10.0.1.5/rhcos/4.14/rhcos-4.14.0-x86_64-live-initramfs.x86_64.img" in lines
    )


HOSTILE_SITE = [
    ("kernel_url", "http://10.0.1.5/k initrd=evil", "rhcos.kernel_url"),
    ("kernel_url", "http://10.0.1.5/k\nshell", "rhcos.kernel_url"),
    ("rootfs_url", "http://10.0.1.5/$(reboot)", "rhcos.rootfs_url"),
    ("cluster_domain", "inferno.example.com;reboot", "rhcos.cluster_domain"),
    ("cluster_domain", "localhost", "rhcos.cluster_domain"),
    ("root_ca", '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"; rm -rf /', "rhcos.root_ca"),
]


@pytest.mark.parametrize(("field", "value", "where"), HOSTILE_SITE)
def test_hostile_site_text_is_refused_at_load_with_file_and_line(
    profiles_copy: Path, field: str, value: str, where: str
) -> None:
    site = profiles_copy / "site.yaml"
    text = site.read_text()
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{field}:"))
    site.write_text(text.replace(line, f"  {field}: {json.dumps(value)}"))
    with pytest.raises(BadInput) as exc:
        load_catalog(profiles_copy)
    message = str(exc.value)
    assert re.match(rf"{re.escape(str(site))}:\d+: {re.escape(where)}: expected ", message), message
    assert "reboot" not in message or len(message) < 400


def test_hostile_pool_and_join_values_are_refused(profiles_copy: Path, catalog: Catalog) -> None:
    lust = profiles_copy / "circle-2-lust.yaml"
    lust.write_text(lust.read_text().replace("  join: rhcos", '  join: rhcos\n  config_pool: "w;reboot"'))
    with pytest.raises(
        BadInput, match=r"circle-2-lust.yaml:\d+: handoff.config_pool: expected a MachineConfigPool"
    ):
        load_catalog(profiles_copy)
    lust.write_text(
        lust.read_text().replace('  config_pool: "w;reboot"\n', "").replace("join: rhcos", "join: maas")
    )
    with pytest.raises(BadInput, match=r"handoff.join: .*rhcos.*metal3.*none"):
        load_catalog(profiles_copy)
    # platform.pool has no grammar of its own: the RHCOS path checks it before it renders a URL.
    profile = catalog.profile_of(catalog.host(COMPUTE))
    odd = profile.model_copy(update={"platform": profile.platform.model_copy(update={"pool": "Pool/../x"})})
    bad = type(catalog)(
        catalog.directory,
        {**catalog.profiles, profile.name: odd},
        catalog.hosts,
        catalog.documents,
        catalog.site,
    )
    with pytest.raises(BadInput, match=r"platform\.pool: expected a MachineConfigPool name"):
        rhcos_plan(bad, catalog.host(COMPUTE), TOKEN, SERVER)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("install_dev", "/dev/disk/by-id/x y"),
        ("install_dev", "/dev/sda;reboot"),
        ("ignition", "http://x/i?token=a&b"),
    ],
)
def test_the_ipxe_renderer_refuses_unsafe_values_again(catalog: Catalog, field: str, value: str) -> None:
    rhcos = catalog.site.rhcos
    assert rhcos is not None
    dev = value if field == "install_dev" else "/dev/disk/by-id/wwn-0x1"
    url = value if field == "ignition" else "http://x/ignition/h?token=abcdefgh"
    with pytest.raises(RenderError):
        render_rhcos_ipxe("h", rhcos, dev, url, "dhcp", ())


def test_a_rhcos_join_without_the_sites_rhcos_block_is_bad_input_and_a_lint_error(
    profiles_copy: Path,
) -> None:
    site = profiles_copy / "site.yaml"
    site.write_text(site.read_text().split("# The RHCOS live images")[0])
    catalog = load_catalog(profiles_copy)
    with pytest.raises(BadInput, match=r"site.yaml: rhcos: expected the RHCOS live images"):
        rhcos_plan(catalog, catalog.host(COMPUTE), TOKEN, SERVER)
    errors = [f for f in lint_catalog(catalog) if f.code == "handoff.rhcos-site"]
    assert len(errors) == 3 and all(
        f.severity is Severity.error and f.field == "handoff.join" for f in errors
    )


def test_lint_warns_of_the_seeds_conflict_and_names_the_join_mode(profiles_copy: Path) -> None:
    found = [f for f in lint_catalog(load_catalog(PROFILES)) if f.code == "handoff.os-cannot-join"]
    assert len(found) == 3 and all(f.severity is Severity.warning for f in found)
    lust = next(f for f in found if f.file.endswith("circle-2-lust.yaml"))
    assert lust.field == "handoff.join"
    assert (PROFILES / "circle-2-lust.yaml").read_text().splitlines()[lust.line - 1] == "  join: rhcos"
    assert "OpenShift 4.14 compute nodes run RHCOS or RHEL 8.6-8.8 only" in lust.message
    assert "Machine Config Operator manages only RHCOS/RHEL nodes" in lust.message
    assert "a Rocky Linux 9.3 host cannot join. handoff.join is rhcos: after acceptance" in lust.message
    # The same profile with join: none is told that nothing will make the Node exist.
    path = profiles_copy / "circle-2-lust.yaml"
    path.write_text(path.read_text().replace("join: rhcos", "join: none"))
    none = next(
        f
        for f in lint_catalog(load_catalog(profiles_copy))
        if f.code == "handoff.os-cannot-join" and f.file.endswith("circle-2-lust.yaml")
    )
    assert "handoff.join is none: nothing makes the Node exist" in none.message


def test_dry_run_prints_the_ipxe_script_the_ignition_config_and_the_manifests(tmp_path: Path) -> None:
    state = tmp_path / "state"
    accepted_run(state, tmp_path)
    res = provision("handoff", COMPUTE, "--dry-run", state=state)
    assert res.exit_code == 0, res.output
    assert "# join: rhcos" in res.stdout
    kernel = next(line for line in res.stdout.splitlines() if line.startswith("#   kernel "))
    assert f" coreos.inst.ignition_url={SERVER}/ignition/{COMPUTE}?token=NO-RUN-TOKEN " in kernel
    ignition = res.stdout.split("# Ignition config (merges pool inferno-pool-gpu):\n")[1]
    validate(json.loads("\n".join(line[4:] for line in ignition.splitlines())))
    res = provision("handoff", COMPUTE, "--dry-run", "--json", state=state)
    join = json.loads(res.stdout)["join"]
    assert join["mode"] == "rhcos" and join["install_dev"] == "/dev/disk/by-id/wwn-0x5002538e40c1a201"
    validate(join["ignition"])
    assert join["ipxe"].startswith("#!ipxe\n")


# -- the boot server's routes, over real HTTP --------------------------------------------------------


@pytest.fixture
def server(catalog: Catalog, store: StateStore) -> Iterator[BootServer]:
    with BootServer(catalog, store, ("127.0.0.1", 0)) as srv:
        yield srv


def call(
    srv: BootServer, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBLRr3KCeeGABSsmWhooIzaAHB3y5si+qAdxi7xA4DC6 root@rhcos\n"


def test_rhcos_routes_answer_only_a_handoff_runs_token_and_the_callback_closes_them(
    server: BootServer, store: StateStore
) -> None:
    store.set_host_state(COMPUTE, HostState.accepted)
    install = store.create_run(COMPUTE, "install")
    install_token = store.issue_token(install.id, COMPUTE, 600)
    run = store.create_run(COMPUTE, HANDOFF_RUN_KIND)
    token = store.issue_token(run.id, COMPUTE, 600)
    # An install run's token never opens the RHCOS routes, nor a handoff run's the kickstart.
    assert call(server, "GET", f"/ignition/{COMPUTE}?token={install_token}") == (403, b"")
    assert call(server, "GET", f"/ks/{COMPUTE}?token={token}") == (403, b"")
    status, local = call(server, "GET", f"/ipxe/{COMPUTE}?token={token}")
    assert status == 200 and b"booting from local disk" in local and b"kernel" not in local
    assert call(server, "GET", f"/rhcos/{COMPUTE}") == (403, b"")
    assert call(server, "GET", f"/rhcos/no-such-host?token={token}")[0] == 404
    status, script = call(server, "GET", f"/rhcos/{COMPUTE}?token={token}")
    assert (
        status == 200
        and f"coreos.inst.ignition_url={server.url}/ignition/{COMPUTE}?token={token}".encode() in script
    )
    status, body = call(server, "GET", f"/ignition/{COMPUTE}?token={token}")
    assert status == 200
    cfg = json.loads(body)
    validate(cfg)
    assert [e.kind for e in store.events(run_id=run.id)] == [IGNITION_SERVED]
    url = f"/rhcos/{COMPUTE}/installed"
    assert call(server, "POST", url, b"no keys here", {"Authorization": f"Bearer {token}"})[0] == 400
    assert call(server, "POST", url, KEY.encode(), {"Authorization": "Bearer wrong-token-123"})[0] == 403
    assert call(server, "POST", url, KEY.encode(), {"Authorization": f"Bearer {token}"})[0] == 204
    installed = [e for e in store.events(run_id=run.id) if e.kind == RHCOS_INSTALLED]
    assert installed[0].payload["host_keys"][0]["type"] == "ssh-ed25519"
    # The token served its purpose: the config is never served again.
    assert call(server, "GET", f"/ignition/{COMPUTE}?token={token}") == (403, b"")
    assert all(token not in r.path for r in server.requests)


def test_a_pool_name_the_machine_config_server_cannot_serve_is_a_lint_error(profiles_copy: Path) -> None:
    path = profiles_copy / "circle-2-lust.yaml"
    path.write_text(path.read_text().replace("pool: inferno-pool-gpu", "pool: Inferno_Pool_GPU"))
    found = [f for f in lint_catalog(load_catalog(profiles_copy)) if f.code == "handoff.pool"]
    assert [(f.severity, f.field) for f in found] == [(Severity.error, "platform.pool")]
    assert (
        "expected a MachineConfigPool name (lower-case letters, digits and inner -), got 'Inferno_Pool_GPU'"
        in (found[0].message)
    )
