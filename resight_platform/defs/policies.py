"""Platform-wide policies applied to the assets in one place: retries and declarative automation.

Bronze is loaded by the landing sensor. Everything downstream follows its inputs through
declarative automation (``AutomationCondition``), evaluated by ``automation_sensor``:

- ``follow_inputs()``: run a partition when an input it reads was updated since it last ran (or
  will be in this tick, in the same run), never while an input or the partition itself is in
  progress, and never on top of an input whose blocking check failed. Unlike Dagster's ``eager()``
  it follows every date, not only the latest (a late file for an old date re-processes that date),
  and it does not wait for *missing* inputs: a day's facts read the providers that delivered.
- Inputs that change every partition's meaning (the dimensions a fact joins) are *ignored* as
  triggers; while one of them is being rebuilt or about to be, the partition waits for it.
- ``every(cron)`` for tables built from the calendar and the registry (``dim_date``,
  ``dim_provider``), which have no asset inputs to follow. Unpartitioned tables also run as soon
  as they are missing, so a fresh instance builds its dimensions before the first facts.
- The daily mart follows facts at most every 5 minutes (``at_most``): it re-aggregates a whole
  day, so once per changed day every 5 minutes, not once per file.
- ``hourly()`` for the monthly marts: whole-table recomputes over ``fact_sales``, refreshed once an
  hour when facts changed rather than after every file.
"""

from __future__ import annotations

import dagster as dg

__all__ = ["RETRY", "every", "follow_inputs", "hourly"]

#: Transient failures (S3, Postgres, a killed worker): three attempts in all, the second 2 s ± 2 s
#: after the first, the third 6 s ± 2 s after that, then the run fails with the last error. Dagster
#: retries every step failure, so a deterministic bug also costs the two extra attempts.
RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def follow_inputs(
    *, ignore: dg.AssetSelection | None = None, when_missing: bool = False, at_most: str | None = None
) -> dg.AutomationCondition:
    """Run when an input updates (and, with ``when_missing``, when the table does not exist yet);
    ``ignore`` names inputs that do not trigger a run but must exist and are waited for; with
    ``at_most`` (a cron), updates are gathered and acted on at that cron's ticks only."""
    updated: dg.AutomationCondition = dg.AutomationCondition.any_deps_updated()
    if ignore is not None:
        updated = dg.AutomationCondition.any_deps_updated().ignore(ignore)
    trigger = _since_requested(updated)
    if at_most is not None:
        trigger = trigger & _since_requested(dg.AutomationCondition.cron_tick_passed(at_most))
    if when_missing:
        trigger = trigger | _missing()
    condition = (
        trigger
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    )
    if ignore is not None:
        # An ignored input is about to be rebuilt when one of *its* inputs just updated: wait for it
        # (it will be in progress on the next tick, then done), so facts never join stale dimensions.
        about_to_change = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.any_deps_updated())
        absent = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.missing())
        condition = condition & ~about_to_change.allow(ignore) & ~absent.allow(ignore)
    return condition.with_label("follow_inputs")


def hourly() -> dg.AutomationCondition:
    """Once an hour when any input was updated since the last run, and as soon as it is missing."""
    tick: dg.AutomationCondition = dg.AutomationCondition.cron_tick_passed("0 * * * *")
    updated: dg.AutomationCondition = dg.AutomationCondition.any_deps_updated()
    return (
        ((_since_requested(tick) & _since_requested(updated)) | _missing())
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("hourly")


def every(cron: str) -> dg.AutomationCondition:
    """On each tick of ``cron`` (UTC), and as soon as the table is missing."""
    tick: dg.AutomationCondition = dg.AutomationCondition.cron_tick_passed(cron)
    return ((_since_requested(tick) | _missing()) & ~dg.AutomationCondition.in_progress()).with_label(f"every({cron})")


def _missing() -> dg.AutomationCondition:
    """Never materialised, and its last run (if any) did not fail: a failure waits for a person."""
    return (dg.AutomationCondition.missing() & ~dg.AutomationCondition.execution_failed()).with_label("missing")


def _since_requested(trigger: dg.AutomationCondition) -> dg.AutomationCondition:
    """``trigger`` became true since automation last requested the target, counting a trigger
    that fires in the same tick as the reset.

    Dagster's ``since_last_handled()`` resets when the target was requested or updated, and a
    reset in the same tick as the trigger wins. When a second file for a partition lands while its
    facts are being built, the new silver and the facts' own update fall in one tick window: the
    update was lost and the facts stayed behind until another file arrived (seen in the latency
    benchmark, and in ``test_an_input_updated_while_the_facts_were_being_built_is_not_lost``).
    Here only a request resets, and not in a tick where the trigger fires again. The cost is at most
    one extra run when an input changes while the target's run is queued or running, which is the
    run that picks the change up."""
    requested = (
        (dg.AutomationCondition.newly_requested() & ~trigger) | dg.AutomationCondition.initial_evaluation()
    ).with_label("requested")
    return trigger.since(requested)
