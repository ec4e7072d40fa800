"""Compliance engine: rule packs per jurisdiction, legal classes of data, explained decisions.

request = parse_request({"action": "transfer", "from": "CN", "to": "EU", ...})
decision = evaluate(request)            # allow | deny | needs_info, with rules, obligations, missing facts
record_decision(node.log, request, decision)
"""

from trustlane.compliance.classify import classify_dataset, classify_signal
from trustlane.compliance.decision import AppliedRule, Decision
from trustlane.compliance.engine import evaluate
from trustlane.compliance.record import EVENT_TYPE, decision_event, record_decision
from trustlane.compliance.request import Request, parse_request, parse_request_json
from trustlane.compliance.ruleset import RuleSet, default_rules

__all__ = [
    "EVENT_TYPE",
    "AppliedRule",
    "Decision",
    "Request",
    "RuleSet",
    "classify_dataset",
    "classify_signal",
    "decision_event",
    "default_rules",
    "evaluate",
    "parse_request",
    "parse_request_json",
    "record_decision",
]
