"""The staff inbox: the "mine" and "my department" tabs with each task's SLA
state at a glance; search, sort by any column, page size, filters by account and
process; claim one or several; saved views in the sidebar (tasks.saved_views)."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from bpm_server.database import db
from bpm_server.errors import AppError
from bpm_server.extensions import deployment
from bpm_server.identity.auth import current_user
from bpm_server.tasks import inbox as inbox_service
from bpm_server.tasks import saved_views
from bpm_server.tasks import service as tasks
from bpm_server.tasks.inbox_query import MAX_SEARCH_CHARS, ORDERS, SORTS
from bpm_server.tasks.models import HumanTask
from bpm_server.web.i18n import current_language
from bpm_server.web.session import page_blueprint, page_requires

blp = page_blueprint("inbox", __name__)
PAGE_SIZES = (20, 50, 100)
DEFAULT_PER_PAGE = 50
# The page's query arguments and the API names a saved view stores them under.
PAGE_TO_VIEW = {"tab": "tab", "q": "q", "account": "account_id", "process": "process_model_id",
                "sort": "sort", "order": "order", "per_page": "per_page"}


def _int_arg(name: str, default: int) -> int:
    try:
        return max(int(request.args.get(name, default)), 1)
    except ValueError:
        return default


def page_state(args: Any) -> dict[str, Any]:
    """The inbox's query arguments, each made valid (a page link never shows an error)."""
    tab = args.get("tab", "mine")
    sort = args.get("sort", "priority")
    order = args.get("order", "desc" if sort == "priority" else "asc")
    try:
        per_page = int(args.get("per_page", DEFAULT_PER_PAGE))
    except ValueError:
        per_page = DEFAULT_PER_PAGE
    return {"tab": tab if tab in inbox_service.TABS else "mine",
            "q": (args.get("q") or "").strip()[:MAX_SEARCH_CHARS],
            "account": args.get("account") or "", "process": args.get("process") or "",
            "sort": sort if sort in SORTS else "priority", "order": order if order in ORDERS else "desc",
            "per_page": per_page if per_page in PAGE_SIZES else DEFAULT_PER_PAGE}


def view_url(view_filters: dict[str, Any], view_id: str | None = None) -> str:
    """The inbox page showing a saved view's filters."""
    back = {page: view_filters[api] for page, api in PAGE_TO_VIEW.items() if api in view_filters}
    return url_for("inbox.inbox", view=view_id, **back)


@blp.route("/inbox")
@page_requires("staff")
def inbox() -> Any:
    user = current_user()
    session = db.session
    rt = deployment()
    state = page_state(request.args)
    total_pages_cap = rt.config.max_page_number
    page = min(_int_arg("page", 1), total_pages_cap)
    rows, total = inbox_service.tab_page(
        session, user, state["tab"], account_id=state["account"] or None, process_model_id=state["process"] or None,
        q=state["q"] or None, sort=state["sort"], order=state["order"], page=page, per_page=state["per_page"])
    pages = max((total + state["per_page"] - 1) // state["per_page"], 1)
    if page > pages and total:  # past the end (an old link): the last page
        return redirect(url_for("inbox.inbox", **{**state, "page": pages}))
    now = rt.clock.now()
    accounts, models = inbox_service.filter_choices(session, user)
    views = saved_views.visible_views(session, user)
    return render_template(
        "inbox/inbox.html", tasks=rows, total=total, page=page, pages=pages, state=state, page_sizes=PAGE_SIZES,
        sorts=SORTS, glances=inbox_service.glances(session, rows, rt.calendar, now),
        counts=inbox_service.tab_counts(session, user), names=inbox_service.account_names(session, rows),
        account_names=inbox_service.account_names_by_id(session, accounts),
        accounts=accounts, models=models, me=user, views=views, view_url=view_url,
        current_view=request.args.get("view"), titles=tasks.titles_in(session, rows, current_language()))


@blp.route("/inbox/tasks/<task_id>/claim", methods=["POST"])
@page_requires("staff")
def claim(task_id: str) -> Any:
    task = tasks.claim(db.session, current_user(), task_id, deployment().clock.now())
    flash(_("You claimed “%(title)s”.", title=task.title), "ok")
    return redirect(url_for("task_page.task", task_id=task.id))


def _back_to_inbox() -> Any:
    back = request.form.get("back", "")
    # Only back to an inbox page of this site (never an address a form was given elsewhere).
    if not back.startswith("/inbox") or "//" in back or "\\" in back:
        back = url_for("inbox.inbox")
    return redirect(back)


def _claim_failure(task_id: str, code: str) -> str:
    task = db.session.get(HumanTask, task_id)
    title = task.title if task is not None else task_id
    if code == "claimed_by_other" and task is not None and task.assignee is not None:
        return _("“%(title)s” was claimed meanwhile by %(who)s.", title=title, who=task.assignee.display_name)
    if code == "already_claimed":
        return _("“%(title)s” is already yours.", title=title)
    if code in ("already_completed", "task_cancelled"):
        return _("“%(title)s” is no longer open.", title=title)
    if code == "unknown_task":
        return _("A selected task no longer exists.")
    return _("“%(title)s” could not be claimed.", title=title)


@blp.route("/inbox/claim", methods=["POST"])
@page_requires("staff")
def bulk_claim() -> Any:
    task_ids = request.form.getlist("task_id")[:200]
    if not task_ids:
        flash(_("Select the tasks to claim first."), "error")
        return _back_to_inbox()
    results = saved_views.claim_many(db.session, current_user(), task_ids, deployment().clock.now())
    claimed = [r for r in results if r.status == 200]
    if claimed:
        flash(_("You claimed %(count)d tasks.", count=len(claimed)), "ok")
    for result in results:
        if result.status != 200:
            flash(_claim_failure(result.task_id, result.code), "error")
    return _back_to_inbox()


def _view_filters(form: Any) -> dict[str, Any]:
    state = page_state(form)
    return saved_views.clean_filters({PAGE_TO_VIEW[k]: v for k, v in state.items()})


def _say(exc: AppError) -> str:
    if exc.code == "duplicate_view_name":
        return _("You already have a view of that name.")
    if exc.code == "invalid_view_name":
        return _("A view needs a name of 1 to 100 characters.")
    if exc.code == "too_many_views":
        return _("You have too many views; delete one first.")
    if exc.code == "not_your_inbox_view":
        return _("Only the view's owner can change it.")
    return _("The view could not be saved.")


@blp.route("/inbox/views", methods=["POST"])
@page_requires("staff")
def save_view() -> Any:
    try:
        view = saved_views.create_view(db.session, current_user(), request.form.get("name", ""),
                                       _view_filters(request.form), request.form.get("shared") == "1",
                                       deployment().clock.now())
    except AppError as exc:
        flash(_say(exc), "error")
        return _back_to_inbox()
    flash(_("View “%(name)s” saved.", name=view.name), "ok")
    return redirect(view_url(view.filters, view.id))


@blp.route("/inbox/views/<view_id>/rename", methods=["POST"])
@page_requires("staff")
def rename_view(view_id: str) -> Any:
    try:
        view = saved_views.update_view(db.session, current_user(), view_id, {"name": request.form.get("name", "")},
                                       deployment().clock.now())
    except AppError as exc:
        flash(_say(exc), "error")
        return _back_to_inbox()
    flash(_("View renamed to “%(name)s”.", name=view.name), "ok")
    return redirect(view_url(view.filters, view.id))


@blp.route("/inbox/views/<view_id>/delete", methods=["POST"])
@page_requires("staff")
def delete_view(view_id: str) -> Any:
    try:
        saved_views.delete_view(db.session, current_user(), view_id)
    except AppError as exc:
        flash(_say(exc), "error")
        return _back_to_inbox()
    flash(_("View deleted."), "ok")
    return redirect(url_for("inbox.inbox"))
