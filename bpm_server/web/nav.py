"""The navigation: which pages a user sees in the header, by role."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

# (roles that see it, endpoint, label). "lead" = the user leads their department.
# The first entry a user may open is their home page after signing in.
NAV_ITEMS = [
    (("staff",), "inbox.inbox", _l("Inbox")),
    (("staff",), "start_page.start_form", _l("Start a process")),
    (("lead",), "leads.lead_inbox", _l("Department lead")),
    (("process_owner",), "modeler.models", _l("Process models")),
    (("process_owner",), "incident_pages.incident_list", _l("Incidents")),
    (("auditor", "process_owner"), "breaches.breach_log", _l("Breach log")),
    (("process_owner", "lead"), "dashboard.dashboard", _l("SLA dashboard")),
    (("staff", "process_owner", "auditor"), "account_pages.account_list", _l("Accounts")),
]
