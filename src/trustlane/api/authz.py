"""Authorisation, in one place: which role may do what, and on which objects (by contract).

Every endpoint names an action from :data:`ROLE_RULES` and calls :func:`authorize`. Object-level rules
(a report is readable by its requester and its contract's recipients; a contract by its assignee) live in
:func:`may_read_report` and :func:`may_read_contract`, which the endpoints also use to filter lists.
"""

from __future__ import annotations

from typing import Any

from trustlane.analysis.contracts import Contract
from trustlane.analysis.parties import ROLES, Party

ALL = frozenset(ROLES)
OVERSIGHT = frozenset({"holder", "regulator"})

ROLE_RULES: dict[str, frozenset[str]] = {
    "me.read": ALL,
    "parties.list": OVERSIGHT,
    "algorithms.list": ALL,
    "datasets.list": frozenset({"holder", "regulator", "agency", "insurer", "court", "user"}),
    "contracts.list": ALL - {"witness"},
    "contracts.read": ALL - {"witness"},
    "contracts.grant": frozenset({"holder"}),
    "contracts.accept": frozenset({"agency", "insurer", "court", "regulator", "user"}),
    "contracts.revoke": frozenset({"holder"}),
    "analyses.run": frozenset({"agency", "insurer", "court", "regulator", "user"}),
    "analyses.list": ALL - {"witness"},
    "reports.list": ALL - {"witness"},
    "reports.read": ALL - {"witness"},
    "audit.read": ALL - {"witness"},
    "ledger.read": ALL,
    "metrics.read": OVERSIGHT,
}


class Forbidden(Exception):
    """The caller is authenticated but not allowed (HTTP 403)."""


def authorize(party: Party, action: str) -> None:
    allowed = ROLE_RULES.get(action)
    if allowed is None:  # an action missing from the table is a bug: deny, never allow by default
        raise Forbidden(f"no rule allows {action}")
    if party.role not in allowed:
        raise Forbidden(f"a {party.role} may not {action.replace('.', ' ')}")


def may_read_contract(party: Party, contract: Contract) -> bool:
    return party.role in OVERSIGHT or contract.assignee == party.name


def may_read_report(party: Party, report_party: str, recipients: list[str]) -> bool:
    return party.role in OVERSIGHT or party.name == report_party or party.name in recipients


def may_see_dataset(party: Party, dataset_id: str, contracts: list[Contract]) -> bool:
    if party.role in OVERSIGHT:
        return True
    return any(c.assignee == party.name and dataset_id in c.policy["target"]["datasets"] for c in contracts)


def may_audit(party: Party, kind: str, value: str, context: dict[str, Any]) -> bool:
    """Oversight audits anything; a party audits itself and the reports and contracts that are its own."""
    if party.role in OVERSIGHT:
        return True
    if kind == "party":
        return value == party.name
    if kind == "report":
        return bool(context.get("report_readable"))
    if kind == "contract":
        return bool(context.get("contract_readable"))
    return False
