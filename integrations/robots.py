"""What the three group robots share: message text and their ``errcode`` style answers."""
from __future__ import annotations

from dataclasses import replace

from integrations.base import CallResult, Notice


def _addressee(notice: Notice) -> str:
    # The server words this line in the recipient's language; older deliveries lack it.
    return str(notice.extra.get("addressee") or f"for {notice.display_name} ({notice.username})")


def markdown_text(notice: Notice) -> str:
    return f"**{notice.title}**\n\n{notice.body}\n\n> {_addressee(notice)}"


def plain_text(notice: Notice) -> str:
    return f"{notice.title}\n{notice.body}\n({_addressee(notice)})"


def check_errcode(result: CallResult, *keys: str) -> CallResult:
    """Robots answer HTTP 200 even when they refuse; the code in the body decides."""
    if not result.ok:
        return result
    answer = result.response if isinstance(result.response, dict) else {}
    for key in keys:
        if key in answer:
            if answer[key] in (0, "0"):
                return result
            return replace(result, ok=False, error=f"the robot refused: {key}={answer[key]} "
                                                   f"{answer.get('errmsg') or answer.get('msg') or ''}".strip())
    return replace(result, ok=False, error=f"unexpected robot answer: {str(result.response)[:200]}")
