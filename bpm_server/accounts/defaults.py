"""The shipped account rules (seeds/000 section 5.1, seeds/003) as DMN decision tables.

Each rule is one table; its inputs read the account's facts (see ``facts``),
its outputs name the process to start (``process_model_id``) and the
priority. Process owners replace a table by uploading a new version.
"""
from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

DMN_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"


@dataclass(frozen=True)
class DefaultRule:
    id: str
    name: str  # Chinese first; the English name follows in parentheses
    inputs: tuple[tuple[str, str], ...]  # (label, expression over the facts)
    rules: tuple[tuple[tuple[str, ...], str, str], ...]  # (input entries, process model id, priority)


DEFAULT_RULES = (
    DefaultRule("churn-usage-low", "产品使用率连续两周低于70% (usage below 70% two weeks running)",
                (("本周使用率 usage this week", "usage_week_1"), ("上周使用率 usage last week", "usage_week_2")),
                ((("< 70", "< 70"), "churn-risk-intervention", "high"),)),
    DefaultRule("churn-contact-left", "关键联系人离职 (key contact left)",
                (("近30天关键联系人离职次数 key contacts left in 30 days", "key_contact_left_30d"),),
                (((">= 1",), "churn-risk-intervention", "high"),)),
    DefaultRule("churn-payment-overdue", "回款逾期30天 (payment 30 days overdue)",
                (("逾期天数 days overdue", "payment_overdue_days"),),
                (((">= 30",), "churn-risk-intervention", "high"),)),
    DefaultRule("contact-changed", "关键联系人变更 (key contact changed)",
                (("近30天关键联系人变更次数 key contacts changed in 30 days", "key_contact_changed_30d"),),
                (((">= 1",), "key-contact-handover", "normal"),)),
    DefaultRule("health-low", "健康度低于40分 (health score below 40)",
                (("健康度 health score", "health_score"),),
                (((" < 40",), "tier-review", "normal"),)),
)


def table_xml(rule: DefaultRule) -> bytes:
    """The DMN file of one shipped rule."""
    inputs = "".join(
        f'<input id="in_{i}" label="{escape(label, {chr(34): "&quot;"})}">'
        f'<inputExpression id="in_{i}_expr" typeRef="number"><text>{escape(expression)}</text></inputExpression>'
        f"</input>" for i, (label, expression) in enumerate(rule.inputs))
    rows = "".join(
        f'<rule id="r_{n}">'
        + "".join(f'<inputEntry id="r_{n}_in_{i}"><text>{escape(entry.strip())}</text></inputEntry>'
                  for i, entry in enumerate(entries))
        + f'<outputEntry id="r_{n}_model"><text>"{model}"</text></outputEntry>'
        + f'<outputEntry id="r_{n}_priority"><text>"{priority}"</text></outputEntry></rule>'
        for n, (entries, model, priority) in enumerate(rule.rules))
    name = escape(rule.name, {chr(34): "&quot;"})
    return (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<definitions xmlns="{DMN_NS}" id="defs_{rule.id}" name="{name}" namespace="bpm-server">'
            f'<decision id="{rule.id.replace("-", "_")}" name="{name}">'
            f'<decisionTable id="table_{rule.id.replace("-", "_")}" hitPolicy="FIRST">{inputs}'
            f'<output id="out_model" name="process_model_id" typeRef="string"/>'
            f'<output id="out_priority" name="priority" typeRef="string"/>{rows}'
            f"</decisionTable></decision></definitions>").encode()
