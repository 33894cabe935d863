"""SLA over HTTP, one module per thing it serves: the breach log (read-only), a
stage's clock (pause, resume), escalation policies, statistics, the official
holiday notices the calendar uses, and the test clock."""
from __future__ import annotations

from bpm_server.sla.views import breaches, calendar, pauses, policies, preview, stats, test_clock, timeline, trends
from bpm_server.sla.views.blueprint import blp, test_clock_blp

__all__ = ["blp", "breaches", "calendar", "pauses", "policies", "preview", "stats", "test_clock", "test_clock_blp",
           "timeline", "trends"]
