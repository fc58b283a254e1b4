"""The BMC's security posture as warnings: IPMI over LAN enabled, plain HTTP enabled, a default or
vendor account still enabled, a self-signed certificate. Each says how to fix it. Pure.

Posture findings are never required: they warn, they do not hold a host back. What the BMC does
not show is `inconclusive`, never `pass`.
"""

from __future__ import annotations

from burnin.schema import Finding, Verdict, make_finding
from provision.model.posture import DEFAULT_ACCOUNTS, BmcPosture

SOURCE = "redfish"
# The same read as the inventory's (provision.acceptance.inspection.EVIDENCE_ID): the service root and
# every resource it links, ManagerNetworkProtocol, AccountService and CertificateService among them.
EVIDENCE_ID = "redfish.inventory"


def _f(check: str, component: str, expected: str, observed: str, verdict: Verdict) -> Finding:
    return make_finding(check, component, expected, observed, verdict, SOURCE, [EVIDENCE_ID], required=False)


def _protocol(check: str, posture: BmcPosture, name: str, what: str, fix: str, component: str) -> Finding:
    where = f"{posture.manager}/NetworkProtocol" if posture.manager else "the Manager's NetworkProtocol"
    expected = f'{what} disabled (fix: PATCH {where} {{"{name}": {{"ProtocolEnabled": false}}}}{fix})'
    if posture.protocols is None:
        why = posture.gaps.get("protocols", "not shown")
        return _f(check, component, expected, why, Verdict.INCONCLUSIVE)
    state = posture.protocols.get(name)
    if state is None or state.enabled is None:
        return _f(
            check, component, expected, f"{name} not shown in ManagerNetworkProtocol", Verdict.INCONCLUSIVE
        )
    if not state.enabled:
        return _f(check, component, expected, "disabled", Verdict.PASS)
    port = f" on port {state.port}" if state.port is not None else ""
    return _f(check, component, expected, f"enabled{port}", Verdict.WARN)


def check_accounts(posture: BmcPosture) -> list[Finding]:
    expected = "no default or vendor account enabled"
    if posture.accounts is None:
        return [
            _f("bmc_default_account", "bmc:accounts", expected, posture.gaps.get("accounts", "not shown"),
               Verdict.INCONCLUSIVE)
        ]  # fmt: skip
    out = []
    for a in posture.accounts:
        vendor = DEFAULT_ACCOUNTS.get(a.user)
        if vendor is None or a.enabled is False:
            continue
        fix = (
            f"create a named administrator, move hosts.yaml's credentials to it, then PATCH {a.path} "
            '{"Enabled": false}'
        )
        observed = f"{a.user} ({vendor} default{', ' + a.role if a.role else ''}) " + (
            "enabled" if a.enabled else "shown without its Enabled state"
        )
        verdict = Verdict.WARN if a.enabled else Verdict.INCONCLUSIVE
        out.append(
            _f("bmc_default_account", f"bmc:account:{a.user}", f"{expected} (fix: {fix})", observed, verdict)
        )
    if not out:
        names = ", ".join(a.user for a in posture.accounts if a.enabled) or "none"
        out.append(
            _f("bmc_default_account", "bmc:accounts", expected, f"enabled accounts: {names}", Verdict.PASS)
        )
    return out


def check_certificates(posture: BmcPosture) -> list[Finding]:
    fix = (
        "fix: install a certificate signed by the site's CA (CertificateService.ReplaceCertificate "
        "or the BMC's UI) and point hosts.yaml bmc.verify_tls at that CA"
    )
    expected = f"a CA-signed certificate ({fix})"
    if posture.certificates is None:
        why = posture.gaps.get("certificates", "not shown")
        return [_f("bmc_self_signed_cert", "bmc:certificate", expected, why, Verdict.INCONCLUSIVE)]
    out = []
    for i, c in enumerate(posture.certificates):
        component = "bmc:certificate" + (f"#{i + 1}" if len(posture.certificates) > 1 else "")
        if c.self_signed is None:
            out.append(_f("bmc_self_signed_cert", component, expected, f"{c.path}: no Subject/Issuer shown",
                          Verdict.INCONCLUSIVE))  # fmt: skip
        elif c.self_signed:
            observed = f"self-signed: issuer = subject ({c.subject})"
            out.append(_f("bmc_self_signed_cert", component, expected, observed, Verdict.WARN))
        else:
            out.append(_f("bmc_self_signed_cert", component, expected, f"issued by {c.issuer}", Verdict.PASS))
    return out


def posture_findings(posture: BmcPosture) -> list[Finding]:
    return [
        _protocol(
            "bmc_ipmi_lan", posture, "IPMI", "IPMI over LAN",
            " or ipmitool lan set 1 access off; Redfish does everything this toolkit needs", "bmc:ipmi",
        ),
        _protocol(
            "bmc_plain_http", posture, "HTTP", "plain HTTP",
            "; credentials sent over http:// travel in clear text", "bmc:http",
        ),
        *check_accounts(posture),
        *check_certificates(posture),
    ]  # fmt: skip


__all__ = ["EVIDENCE_ID", "check_accounts", "check_certificates", "posture_findings"]
