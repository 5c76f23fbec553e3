"""apps.qc's writes, one module per concept: `runs` (request, run and conclude an automatic
QC), `review` (human review), `supplements` (补录 uploads), `live_alerts` (the media job's
vision alerts). Each audits inside `apps.audit.audited.audited_action`."""
