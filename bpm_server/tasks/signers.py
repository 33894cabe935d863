"""Ad hoc 会签 / 或签 from 加签: several signers at once, before or after the holder.
``all`` (会签): every signer signs; ``any`` (或签): the first signature decides, the
other signers' steps are cancelled and they are told (``verbs.sign``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bpm_server.errors import Conflict, Invalid
from bpm_server.extensions import Deployment
from bpm_server.identity.models import User
from bpm_server.tasks.models import HumanTask
from bpm_server.tasks.verbs import _act, _holding, _notify, _signer, signer_step

MODES = ("all", "any")
MAX_SIGNERS = 20


def _group(session: Session, user: User, task: HumanTask, usernames: object) -> list[User]:
    if not isinstance(usernames, list) or not usernames:
        raise Invalid("users: name at least one signer", code="invalid", details={"users": ["is empty"]})
    if len(usernames) > MAX_SIGNERS:
        raise Invalid(f"users: at most {MAX_SIGNERS} signers", code="invalid",
                      details={"users": [f"at most {MAX_SIGNERS}"]})
    if len(set(usernames)) != len(usernames):
        raise Invalid("users: a signer is named twice", code="invalid", details={"users": ["names someone twice"]})
    return [_signer(session, user, task, name, "users") for name in usernames]


def add_signers(session: Session, rt: Deployment, user: User, task: HumanTask, usernames: object, mode: str,
                position: str, reason: str | None, now: datetime) -> HumanTask:
    """加签 to a group. Before: each signer gets a step now and the task waits for the
    group. After: the group signs once the caller completes. Returns the caller's task,
    with the signers' steps (before) in ``signer_steps``."""
    if mode not in MODES:
        raise Invalid("mode: all or any", code="invalid", details={"mode": ["must be all or any"]})
    if task.state != "claimed" or task.assignee_id != user.id:
        raise Conflict("claim the task before adding a signer", code="not_claimed_by_you")
    _holding(user, task)
    signers = _group(session, user, task, usernames)
    steps: list[HumanTask] = []
    if position == "before":
        if task.waiting_on_id:
            raise Conflict("the task already waits for a signer", code="waiting_for_signer")
        steps = [signer_step(task, signer, "sign_before", now, mode=mode, reason=reason) for signer in signers]
        session.add_all(steps)
        task.waiting_on_id = steps[0].id
    else:
        task.after_signers = [*(task.after_signers or []), {"users": [s.id for s in signers], "mode": mode}]
    step_of = {signer.id: step.id for signer, step in zip(signers, steps, strict=False)}  # none after
    for signer in signers:
        _act(session, task, "add_signer", user, now, target=signer, reason=reason, new_task_id=step_of.get(signer.id),
             to_stage=position)
    _notify(session, rt, signers, "task_signer_added", task, now, actor=user.display_name, position=position,
            mode=mode)
    task.signer_steps = steps  # answered, not stored
    return task
