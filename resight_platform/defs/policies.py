"""Platform-wide policies applied to the assets in one place: retries and declarative automation.

Bronze is loaded by the landing sensor. Everything downstream follows its inputs through
declarative automation (``AutomationCondition``), evaluated by ``automation_sensor``:

- ``follow_inputs()``: run a partition when an input it reads was updated since it last ran (or
  will be in this tick, in the same run), never while an input or the partition itself is in
  progress, and never on top of an input whose blocking check failed (its latest evaluation).
  Unlike Dagster's ``eager()`` it follows every date, not only the latest (a late file for an old
  date re-processes that date), and it does not wait for *missing* inputs: a day's facts read the
  providers that delivered.
- Inputs that change every partition's meaning (the dimensions a fact joins) are *ignored* as
  triggers; while one of them is being rebuilt or about to be, the partition waits for it.
- ``every(cron)`` for tables built from the calendar and the registry (``dim_date``,
  ``dim_provider``), which have no asset inputs to follow. Unpartitioned tables also run as soon
  as they are missing, so a fresh instance builds its dimensions before the first facts.
- The daily mart is ``gathered("*/5 * * * *")``: it re-aggregates whole days, so at the first
  evaluation after each 5-minute tick every day whose facts changed since it was last requested is
  requested together (one range run, its ``BackfillPolicy.single_run()``), landing runs in flight
  or not. It cannot be built in the landing runs themselves: a Dagster run targets one partitions
  definition, and the mart's (days) is not the facts' (date × source).
- ``hourly()`` for the monthly marts: whole-table recomputes over ``fact_sales``, refreshed once an
  hour when facts changed rather than after every file.

No condition triggers on an input update made only by a closing run (tag ``CLOSING_RUN``,
``defs/closing.py``): a closed partition is a day with no data expected, not new data.
"""

from __future__ import annotations

import dagster as dg

from resight_platform.settings import StepRetrySettings

__all__ = [
    "CLOSING_RUN",
    "FACTS_IN_RUN",
    "RETRY",
    "SILVER_IN_RUN",
    "every",
    "follow_inputs",
    "gathered",
    "hourly",
    "no_blocking_check_failed",
]

#: Tags of a run that built silver (or the facts) of every partition it loaded, as the landing
#: sensor's runs do: their updates of the inputs do not trigger the asset again. Dagster's own
#: ``executed_with_root_target()`` only sees one partition of a range run (it looks at the asset's
#: latest materialisation alone); ``all_new_updates_have_run_tags()`` looks at each partition.
SILVER_IN_RUN = "resight/silver_in_run"
FACTS_IN_RUN = "resight/facts_in_run"
#: Tag of the closing job's runs (``defs/closing.py``): the 0-row materialisations that close the
#: partitions a source is not expected to deliver are not data, and trigger nothing downstream.
CLOSING_RUN = "resight/closing"

#: Transient failures (S3, Postgres, a killed worker): by default three attempts in all, the second
#: 2 s ± 2 s after the first, the third 6 s ± 2 s after that, then the run fails with the last
#: error (``RESIGHT_STEP_RETRIES``, ``RESIGHT_STEP_RETRY_DELAY_S``: settings.StepRetrySettings).
#: Dagster retries every step failure, so a deterministic bug also costs the extra attempts. Only
#: a failure pays: nothing is added to a run that succeeds.
_STEP_RETRY = StepRetrySettings.from_env()
RETRY = dg.RetryPolicy(
    max_retries=_STEP_RETRY.retries,
    delay=_STEP_RETRY.delay_s,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


def follow_inputs(
    *,
    ignore: dg.AssetSelection | None = None,
    when_missing: bool = False,
    built_by_runs_tagged: str | None = None,
) -> dg.AutomationCondition:
    """Run when an input updates (and, with ``when_missing``, when the table does not exist yet);
    ``ignore`` names inputs that do not trigger a run but must exist and are waited for; input
    updates made by runs tagged ``built_by_runs_tagged`` do not trigger (those runs built the
    asset's partitions too)."""
    updated = _any_deps_updated(built_by_runs_tagged)
    if ignore is not None:
        updated = updated.ignore(ignore)
    # Reset by the target's own update too (Dagster's since_last_handled): a range run that wrote
    # inputs and target together must not trigger the target again. Dagster's
    # executed_with_root_target() recognises only one partition of such a run (reproduced in
    # test_a_range_run_that_wrote_inputs_and_target_together_is_not_run_again), and resetting on
    # requests only flooded the queue with repeat runs in the latency benchmark.
    trigger = updated.since_last_handled()
    if when_missing:
        trigger = trigger | _missing()
    condition = (
        trigger
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & no_blocking_check_failed()
    )
    if ignore is not None:
        # An ignored input is about to be rebuilt when one of *its* inputs just updated: wait for it
        # (it will be in progress on the next tick, then done), so facts never join stale dimensions.
        about_to_change = dg.AutomationCondition.any_deps_match(_any_deps_updated())
        absent = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.missing())
        condition = condition & ~about_to_change.allow(ignore) & ~absent.allow(ignore)
    return condition.with_label("follow_inputs")


def _any_deps_updated(built_by_runs_tagged: str | None = None) -> dg.DepsAutomationCondition:
    """Dagster's ``any_deps_updated()``, less the updates of closing runs (``CLOSING_RUN``: every
    condition here) and of runs tagged ``built_by_runs_tagged``.

    ``all_new_updates_have_run_tags`` with two tag keys wants both on one run: each tag is its own
    condition, so a tick whose new updates of a partition come from a closing run *and* a landing
    run (a late file for a closed partition) still triggers, as a plain update would."""
    newly = (
        dg.AutomationCondition.newly_updated()
        & ~dg.AutomationCondition.executed_with_root_target()
        & ~dg.AutomationCondition.all_new_updates_have_run_tags(tag_keys={CLOSING_RUN})
    )
    if built_by_runs_tagged is not None:
        newly = newly & ~dg.AutomationCondition.all_new_updates_have_run_tags(tag_keys={built_by_runs_tagged})
    label = "_".join(tag.removeprefix("resight/") for tag in (CLOSING_RUN, built_by_runs_tagged) if tag)
    return dg.AutomationCondition.any_deps_match(
        newly.with_label(f"newly_updated_not_by_{label}") | dg.AutomationCondition.will_be_requested()
    ).with_label("any_deps_updated")


def gathered(cron: str, *, ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """At the first evaluation after each tick of ``cron``, every partition an input of which was
    updated since automation last requested it, all in that one evaluation; ``ignore`` as in
    :func:`follow_inputs` (no trigger; waited for while missing, in progress or about to be rebuilt).

    For a table that re-aggregates whole partitions of inputs written by other runs (the daily
    mart over the facts): unlike :func:`follow_inputs` it does not wait while a (not ignored) input
    is in progress, which under a steady trickle of landing runs released each day at a different
    moment, one mart run per day; the days changed in a window go in one run instead. An input
    updated after the request (a landing run that committed while the mart ran) is not lost: only
    a request resets the trigger, never the target's own update, so the next window takes it.
    """
    updated: dg.AutomationCondition = _any_deps_updated()
    if ignore is not None:
        updated = _any_deps_updated().ignore(ignore)
    tick: dg.AutomationCondition = dg.AutomationCondition.cron_tick_passed(cron)
    condition = (
        _since_requested(tick)
        & _since_requested(updated)
        & ~dg.AutomationCondition.in_progress()
        & no_blocking_check_failed()
    )
    if ignore is not None:
        running = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.in_progress())
        about_to_change = dg.AutomationCondition.any_deps_match(_any_deps_updated())
        absent = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.missing())
        condition = condition & ~running.allow(ignore) & ~about_to_change.allow(ignore) & ~absent.allow(ignore)
    return condition.with_label(f"gathered({cron})")


def hourly(*, when_missing: bool = True) -> dg.AutomationCondition:
    """Once an hour when any input was updated since the last run, and (``when_missing``) as soon
    as it is missing."""
    tick: dg.AutomationCondition = dg.AutomationCondition.cron_tick_passed("0 * * * *")
    updated: dg.AutomationCondition = _any_deps_updated()
    trigger = _since_requested(tick) & _since_requested(updated)
    return (
        (trigger | _missing() if when_missing else trigger)
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & no_blocking_check_failed()
    ).with_label("hourly")


def every(cron: str) -> dg.AutomationCondition:
    """On each tick of ``cron`` (UTC), and as soon as the table is missing."""
    tick: dg.AutomationCondition = dg.AutomationCondition.cron_tick_passed(cron)
    return ((_since_requested(tick) | _missing()) & ~dg.AutomationCondition.in_progress()).with_label(f"every({cron})")


def no_blocking_check_failed() -> dg.AutomationCondition:
    """No input's blocking check failed in its latest evaluation.

    Not Dagster's ``all_deps_blocking_checks_passed()``: that waits for a *passed* evaluation,
    and a check that has not run yet (a fresh instance, a partition no run has checked) would hold
    everything after it forever. A check fails only by running: then what follows waits until a
    later run of the input passes it.
    """
    failed = dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True)
    return (~dg.AutomationCondition.any_deps_match(failed)).with_label("no_blocking_check_failed")


def _missing() -> dg.AutomationCondition:
    """Never materialised, and its last run (if any) did not fail: a failure waits for a person."""
    return (dg.AutomationCondition.missing() & ~dg.AutomationCondition.execution_failed()).with_label("missing")


def _since_requested(trigger: dg.AutomationCondition) -> dg.AutomationCondition:
    """``trigger`` (a cron tick) happened since automation last requested the target, counting a
    tick that comes with the request's reset."""
    requested = (
        (dg.AutomationCondition.newly_requested() & ~trigger) | dg.AutomationCondition.initial_evaluation()
    ).with_label("requested")
    return trigger.since(requested)
