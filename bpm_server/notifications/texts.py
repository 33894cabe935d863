# ruff: noqa: RUF001 - Chinese text uses full-width punctuation
"""What the task verbs' notifications say, in Chinese (the default) and English.

A notification keeps its kind and parameters, so the notification centre says it
in the reader's language; the stored title and body (what the outbound channels
send) are in Chinese, the deployment's language.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_LANGUAGE = "zh_CN"

# kind -> language -> (title, body); ``{…}`` are the notification's params.
_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "task_sent_back": {
        "zh_CN": ("任务被退回：{title}", "{actor} 将“{from_title}”退回到“{title}”（客户 {account}）。原因：{reason}"),
        "en": ("Sent back: {title}", "{actor} sent “{from_title}” back to “{title}” (account {account}). "
                                     "Reason: {reason}"),
    },
    "task_transferred": {
        "zh_CN": ("转交给你：{title}", "{actor} 将“{title}”（客户 {account}）转交给你。原因：{reason}"),
        "en": ("Transferred to you: {title}", "{actor} transferred “{title}” (account {account}) to you. "
                                              "Reason: {reason}"),
    },
    "task_signer_added": {
        "zh_CN": ("请你加签：{title}", "{actor} 请你在“{title}”（客户 {account}）{position}加签。"),
        "en": ("Please sign: {title}", "{actor} asks you to sign {position} them on “{title}” (account {account})."),
    },
    "task_signed": {
        "zh_CN": ("加签已完成：{title}", "{actor} 已在“{title}”（客户 {account}）上签署，任务回到你这里。"),
        "en": ("Signed: {title}", "{actor} signed “{title}” (account {account}); the task is back with you."),
    },
    "task_cc": {
        "zh_CN": ("抄送给你：{title}", "{actor} 将“{title}”（客户 {account}）抄送给你（只读）。"),
        "en": ("Copied to you: {title}", "{actor} copied “{title}” (account {account}) to you (read only)."),
    },
    "task_urged": {
        "zh_CN": ("催办：{title}", "{actor} 催你尽快处理“{title}”（客户 {account}）。"),
        "en": ("Reminder: {title}", "{actor} asks you to deal with “{title}” (account {account}) soon."),
    },
    "task_withdrawn": {
        "zh_CN": ("已撤回：{title}", "{actor} 撤回了“{from_title}”，“{title}”已从你的待办中移除。"),
        "en": ("Withdrawn: {title}", "{actor} took “{from_title}” back; “{title}” left your inbox."),
    },
    "task_commented": {
        "zh_CN": ("新评论：{title}", "{actor} 在“{title}”（客户 {account}）上评论：{reason}"),
        "en": ("New comment: {title}", "{actor} commented on “{title}” (account {account}): {reason}"),
    },
}

_POSITIONS = {"zh_CN": {"before": "之前", "after": "之后"}, "en": {"before": "before", "after": "after"}}


def knows(kind: str) -> bool:
    return kind in _TEXTS


def render(kind: str, params: Mapping[str, Any], language: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """(title, body) of a notification of ``kind`` in ``language`` (Chinese when unknown)."""
    texts = _TEXTS[kind]
    language = language if language in texts else DEFAULT_LANGUAGE
    values = {key: ("" if value is None else value) for key, value in params.items()}
    if "position" in values:
        values["position"] = _POSITIONS[language].get(str(values["position"]), values["position"])
    values.setdefault("reason", "—")
    if not values["reason"]:
        values["reason"] = "—"
    title, body = texts[language]
    return title.format_map(_Blank(values)), body.format_map(_Blank(values))


class _Blank(dict):
    """A missing parameter renders as nothing rather than failing the notification."""

    def __missing__(self, key: str) -> str:
        return ""
