"""The names of every log event (SPEC 7): the vocabulary users grep and filter by."""

# Every event name the code emits: SPEC 7's stable ones first, then ours. Event names are
# literals at the call site; tests/unit/test_log_events.py checks this list against the code
# both ways, and the e2e daemons' logs against it.
EVENTS = (
    "daemon.start",
    "daemon.stop",
    "daemon.reload",
    "task.loaded",
    "task.changed",
    "task.removed",
    "task.invalid",
    "run.start",
    "run.end",
    "run.retry",
    "run.skipped",
    "run.missed",
    "run.adopted",
    "clock.jump",
    "lock.busy",
    # beyond SPEC 7
    "run.timeout",
    "run.leftovers",
    "runs.pruned",
    "runs.prune_failed",
    "notify.sent",
    "notify.failed",
    "notify.skipped",
    "log.file_error",
    "log.dropped",
    "run.output_trimmed",
    "trigger.refused",
    "daemon.error",
    "daemon.disk_full",
    "daemon.disk_ok",
    "daemon.stopping",
    "lock.restored",
    "config.changed",
    "config.invalid",
    "run.not_started",
    "run.requeued",
    "run.stop",
)
