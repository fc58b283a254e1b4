"""Pieces of the mockup builder (`tests.support.mockup`): document helpers, the vendor styles, the NICs,
and the chassis- and service-level resources (power, thermal, managers, firmware, service root). Pure."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from provision.model.hosts import Host
from provision.model.profile import Profile

ROOT = "/redfish/v1"
Doc = dict[str, Any]


class Style(StrEnum):
    supermicro = "supermicro"
    dell = "dell"
    dmtf = "dmtf"
    hpe = "hpe"


def ref(path: str) -> Doc:
    return {"@odata.id": path}


def coll(tree: dict[str, Doc], path: str, name: str, members: list[str]) -> None:
    tree[path] = {
        "@odata.id": path,
        "Name": name,
        "Members@odata.count": len(members),
        "Members": [ref(m) for m in members],
    }


def ok(state: str = "Enabled") -> Doc:
    return {"State": state, "Health": "OK" if state == "Enabled" else None}


class ServiceBuilder:
    """Set by the subclass before use: the profile, the tree, and the paths it chose."""

    p: Profile
    h: Host
    f: Any  # tests.support.mockup.Faults
    tag: str
    style: Style
    tree: dict[str, Doc]
    sys: str
    chassis: str
    chassis_id: str
    pcie: list[str]

    def chassis_resources(self, systems: list[str]) -> None:
        draw = self.p.power.expected_draw_w
        doc: Doc = {
            "@odata.id": self.chassis,
            "Id": self.chassis_id,
            "Name": self.p.chassis.model,
            "Manufacturer": self.p.chassis.vendor,
            "Model": self.p.chassis.model,
            "PCIeDevices": ref(f"{self.chassis}/PCIeDevices"),
            "Links": {"ComputerSystems": [ref(s) for s in systems]},
        }
        temps = [("CPU1 Temp", 45.0, 100.0), ("System Temp", 30.0, 85.0)]
        if self.style is Style.dmtf:
            doc["PowerSubsystem"] = ref(f"{self.chassis}/PowerSubsystem")
            doc["ThermalSubsystem"] = ref(f"{self.chassis}/ThermalSubsystem")
            doc["Drives"] = ref(f"{self.chassis}/Drives")
            ps = f"{self.chassis}/PowerSubsystem"
            self.tree[ps] = {"@odata.id": ps, "PowerSupplies": ref(f"{ps}/PowerSupplies")}
            psu = f"{ps}/PowerSupplies/0"
            self.tree[psu] = {
                "@odata.id": psu,
                "Id": "0",
                "Name": "PSU0",
                "PowerCapacityWatts": 3000,
                "Metrics": ref(f"{psu}/Metrics"),
            }
            self.tree[f"{psu}/Metrics"] = {
                "@odata.id": f"{psu}/Metrics",
                "InputPowerWatts": {"Reading": draw / 4},
            }
            coll(self.tree, f"{ps}/PowerSupplies", "Power Supplies", [psu])
            ts = f"{self.chassis}/ThermalSubsystem"
            self.tree[ts] = {"@odata.id": ts, "ThermalMetrics": ref(f"{ts}/ThermalMetrics")}
            self.tree[f"{ts}/ThermalMetrics"] = {
                "@odata.id": f"{ts}/ThermalMetrics",
                "TemperatureReadingsCelsius": [{"DeviceName": n, "Reading": r} for n, r, _ in temps],
            }
            coll(
                self.tree,
                f"{self.chassis}/Drives",
                "Drives",
                [k for k in self.tree if k.startswith(f"{self.chassis}/Drives/")],
            )
        else:
            doc["Power"] = ref(f"{self.chassis}/Power")
            doc["Thermal"] = ref(f"{self.chassis}/Thermal")
            self.tree[f"{self.chassis}/Power"] = {
                "@odata.id": f"{self.chassis}/Power",
                "PowerSupplies": [self._psu(i) for i in range(4)],
                "PowerControl": [
                    {
                        "MemberId": "0",
                        "Name": "System Power Control",
                        "PowerConsumedWatts": draw / 4,
                        "PowerCapacityWatts": 3000,
                    }
                ],
            }
            self.tree[f"{self.chassis}/Thermal"] = {
                "@odata.id": f"{self.chassis}/Thermal",
                "Temperatures": [
                    {"MemberId": str(i), "Name": n, "ReadingCelsius": r, "UpperThresholdCritical": c}
                    for i, (n, r, c) in enumerate(temps)
                ],
            }
        self.tree[self.chassis] = doc
        coll(self.tree, f"{self.chassis}/PCIeDevices", "PCIe Devices", self.pcie)

    def _psu(self, i: int) -> Doc:
        """A legacy Power.PowerSupplies entry: four 2700 W PSUs, as the compute host carries."""
        status = {"State": "Enabled", "Health": "Critical" if self.f.psu_critical == i else "OK"}
        return {
            "@odata.id": f"{self.chassis}/Power#/PowerSupplies/{i}",
            "MemberId": str(i),
            "Name": f"PSU{i + 1}",
            "Model": "PWS-2K70A-1R",
            "SerialNumber": f"P2K7{self.tag}{i:04d}",
            "FirmwareVersion": "1.3",
            "PowerCapacityWatts": 2700,
            "LineInputVoltage": 208,
            "Status": status,
        }

    def service_resources(self, systems: list[str]) -> None:
        coll(self.tree, f"{ROOT}/Chassis", "Chassis", [self.chassis])
        mgr = f"{ROOT}/Managers/1"
        self.tree[mgr] = {
            "@odata.id": mgr,
            "Id": "1",
            "Name": "BMC",
            "FirmwareVersion": "01.04.08",
            "Links": {"ManagerForServers": [ref(s) for s in systems]},
        }
        coll(self.tree, f"{ROOT}/Managers", "Managers", [mgr])
        fw = f"{ROOT}/UpdateService/FirmwareInventory"
        items = {"BMC": "01.04.08", "BIOS": "3.1"}
        if self.p.gpus:
            items["GPU0"] = "98.02.2E.00.05"
        paths = []
        for name, version in items.items():
            paths.append(f"{fw}/{name}")
            self.tree[f"{fw}/{name}"] = {
                "@odata.id": f"{fw}/{name}",
                "Id": name,
                "Name": name,
                "Version": version,
            }
        coll(self.tree, fw, "Firmware Inventory", paths)
        self.tree[f"{ROOT}/UpdateService"] = {
            "@odata.id": f"{ROOT}/UpdateService",
            "FirmwareInventory": ref(fw),
        }
        self.tree[ROOT] = {
            "@odata.id": f"{ROOT}/",
            "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
            "Id": "RootService",
            "Name": "Root Service",
            "RedfishVersion": "1.15.0",
            "UUID": self.tree[self.sys]["UUID"],
            "Systems": ref(f"{ROOT}/Systems"),
            "Chassis": ref(f"{ROOT}/Chassis"),
            "Managers": ref(f"{ROOT}/Managers"),
            "UpdateService": ref(f"{ROOT}/UpdateService"),
        }
        self.posture_resources(mgr)

    def posture_resources(self, mgr: str) -> None:
        """A BMC set up as a site should: IPMI over LAN and plain HTTP off, the vendor's default
        account disabled (a named one in its place), the HTTPS certificate issued by the site's CA."""
        proto, cert = f"{mgr}/NetworkProtocol", f"{mgr}/NetworkProtocol/HTTPS/Certificates/1"
        self.tree[mgr]["NetworkProtocol"] = ref(proto)
        self.tree[proto] = {
            "@odata.id": proto,
            "IPMI": {"ProtocolEnabled": False, "Port": 623},
            "HTTP": {"ProtocolEnabled": False, "Port": 80},
            "HTTPS": {
                "ProtocolEnabled": True,
                "Port": 443,
                "Certificates": ref(f"{proto}/HTTPS/Certificates"),
            },
        }
        coll(self.tree, f"{proto}/HTTPS/Certificates", "Certificates", [cert])
        self.tree[cert] = {
            "@odata.id": cert,
            "Subject": {"CommonName": f"bmc-{self.tag}".lower(), "Organization": "Inferno"},
            "Issuer": {"CommonName": "Inferno Site CA", "Organization": "Inferno"},
        }
        accounts = f"{ROOT}/AccountService/Accounts"
        users = {"2": ("ADMIN", False), "3": ("inferno-ops", True)}
        for i, (user, enabled) in users.items():
            self.tree[f"{accounts}/{i}"] = {
                "@odata.id": f"{accounts}/{i}",
                "UserName": user,
                "Enabled": enabled,
                "RoleId": "Administrator",
            }
        coll(self.tree, accounts, "Accounts", [f"{accounts}/{i}" for i in users])
        self.tree[f"{ROOT}/AccountService"] = {
            "@odata.id": f"{ROOT}/AccountService",
            "Accounts": ref(accounts),
        }
        self.tree[ROOT]["AccountService"] = ref(f"{ROOT}/AccountService")

    def nic_resources(self) -> None:
        speeds = {n.name: n.speed_gbps for n in self.p.network}
        macs = {i.name: i.mac for i in self.h.interfaces}
        members: list[str] = []
        # iLO shows the host's NICs only while its agent (AMS) runs in the OS: none before it.
        for k, nic in enumerate(self.p.network if self.style is not Style.hpe else ()):
            mac = macs.get(nic.name) or f"3c:ec:ef:ff:{k:02x}:{len(self.tag):02x}"
            nid = {"dell": f"NIC.Slot.{k + 1}-1-1"}.get(self.style.value, str(k + 1))
            path = f"{self.sys}/EthernetInterfaces/{nid}"
            members.append(path)
            self.tree[path] = {
                "@odata.id": path,
                "Id": nid,
                "Name": nic.name,
                "MACAddress": mac.upper() if self.style is Style.dell else mac,
                "PermanentMACAddress": mac,
                "SpeedMbps": speeds[nic.name] * 1000,
                "LinkStatus": "LinkUp",
                "Status": ok(),
            }
        coll(self.tree, f"{self.sys}/EthernetInterfaces", "Ethernet Interfaces", members)
