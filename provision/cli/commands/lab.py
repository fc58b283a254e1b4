"""`provision lab`: the embedded lab of virtual hosts (libvirt + QEMU TCG, sushy BMC, netns)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from provision.cli.app import App, emit
from provision.lab import artifacts
from provision.lab import lab as lablib
from provision.lab.spec import node
from provision.model.errors import BadInput

LAB_ID_HELP = "Lab name (1-8 lowercase letters/digits) [env PROVISION_LAB_ID; default: lab]."


def _lab(app: App, lab_id: str) -> lablib.Lab:
    return lablib.open_lab(app.state_dir, lab_id)


def _id_option(f: Any) -> Any:
    return click.option(
        "--id", "lab_id", default="lab", envvar="PROVISION_LAB_ID", show_default=True, help=LAB_ID_HELP
    )(f)


@click.group()
def lab() -> None:
    """Bring the embedded lab of virtual hosts up or down, or show it."""


@lab.command()
@_id_option
@click.option(
    "--boot-url", help="Boot server URL the lab's DHCP hands to iPXE [default: http://10.77.0.1:8080]."
)
@click.option(
    "--cache",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the lab image is built once [env PROVISION_LAB_CACHE; default: ~/.cache/...].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def up(app: App, lab_id: str, boot_url: str | None, cache: Path | None, as_json: bool) -> None:
    """Start the lab: namespaces, DHCP/TFTP, mirror, libvirtd, the VMs (off), the BMC."""
    the_lab = _lab(app, lab_id)
    lablib.up(
        the_lab,
        cache=cache or artifacts.default_cache_dir(),
        boot_url=boot_url,
        say=lambda line: click.echo(f"provision: {line}", err=True),  # a stale lab it reaped first
    )
    emit(lablib.status(the_lab), as_json, _human_status)


@lab.command()
@_id_option
@click.option("--keep-disks", is_flag=True, help="Keep the VMs' disk images.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def down(app: App, lab_id: str, keep_disks: bool, as_json: bool) -> None:
    """Stop every process the lab started (by PID) and remove its namespaces."""
    done = lablib.down(_lab(app, lab_id), keep_disks=keep_disks)
    emit(
        {"lab": lab_id, "done": done},
        as_json,
        lambda d: "\n".join(d["done"]) or f"lab {lab_id}: nothing to stop",
    )


@lab.command()
@_id_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(app: App, lab_id: str, as_json: bool) -> None:
    """Processes, VMs and addresses of the lab."""
    emit(lablib.status(_lab(app, lab_id)), as_json, _human_status)


@lab.command()
@_id_option
@click.argument("host")
@click.argument("part", type=click.Choice(["dimm", "nvme"]))
@click.argument("serial")
@click.pass_obj
def swap(app: App, lab_id: str, host: str, part: str, serial: str) -> None:
    """Replace a part of a powered-off lab HOST: PART (dimm or nvme) gets a new SERIAL."""
    node(host)
    new = lablib.swap(_lab(app, lab_id), host, part, serial)
    click.echo(f"{new.name}: {part} serial is now {serial} (takes effect at the next power-on)")


@lab.command(name="exec", context_settings={"ignore_unknown_options": True})
@_id_option
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(app: App, lab_id: str, argv: tuple[str, ...]) -> None:
    """Run a command on the controller side of the lab (its network namespace), with
    PROVISION_PROFILES and PROVISION_STATE set to the lab's."""
    the_lab = _lab(app, lab_id)
    st = lablib.status(the_lab)
    if not st["up"]:
        raise BadInput(f"lab {lab_id}: expected it up, got it down (provision lab up)")
    env = dict(os.environ, PROVISION_PROFILES=str(the_lab.profiles), PROVISION_STATE=str(app.state_dir))
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    sys.stdout.flush()
    os.execvpe("ip", ["ip", "netns", "exec", the_lab.net.srv_ns, *argv], env)


def _human_status(st: dict[str, Any]) -> str:
    lines = [f"lab {st['lab']}: {'up' if st['up'] else 'down'} ({st['directory']})"]
    if st.get("procs"):
        lines.append(
            "processes: "
            + ", ".join(f"{p['name']} {p['pid']}{'' if p['alive'] else ' (gone)'}" for p in st["procs"])
        )
    for name, state in sorted(st.get("domains", {}).items()):
        lines.append(f"  {name}: {state}")
    if st.get("bmc"):
        lines.append(f"BMC {st['bmc']} (in netns {st['controller_netns']}); profiles {st['profiles']}")
        lines.append("controller side: provision lab exec -- provision host lab-node-1")
    return "\n".join(lines)
