"""The one registry of job kinds: what each kind of job runs.

Other domains add their handler here, explicitly (segments adds "segments.recalculate",
imports "imports.run"),
rather than registering themselves at import time, so the whole list is in one place.
Every handler must be idempotent per job: see app/jobs/service.py.
"""

from app.imports.runner import abandoned_import, run_import_handler
from app.imports.service import RUN_IMPORT
from app.jobs.service import AbandonHandler, JobHandler
from app.segments.jobs import recalculate_handler
from app.segments.service import RECALCULATE

HANDLERS: dict[str, JobHandler] = {
    RECALCULATE: recalculate_handler,
    RUN_IMPORT: run_import_handler,
}

# Kinds whose own records must learn that the queue gave their job up.
ABANDON_HANDLERS: dict[str, AbandonHandler] = {
    RUN_IMPORT: abandoned_import,
}
