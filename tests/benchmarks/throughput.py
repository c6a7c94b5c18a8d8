"""Rule engine events/s and the database log handler (caller cost, records/s persisted)."""

from __future__ import annotations

import logging
import time

from django.utils import timezone

from tests.benchmarks.harness import NotMeasured, Result, commit_ms, failed, measured, round_trip_ms

SECTION = "Throughput"


def rule_engine(ds, runs: int) -> list[Result]:
    name = "Rule engine end to end, one event at a time (writes alerts)"
    target = "≥ 2,000 events/s"
    try:
        try:
            from alerting.services import engine
        except ImportError:
            raise NotMeasured("alerting.services.engine missing") from None
        from alerting.models import Alert, AlertRule, CameraZone

        rules, zones = AlertRule.objects.enabled().count(), CameraZone.objects.enabled().count()
        n_events = ds.counts["events"]
        batch = min(2000, n_events)
        # The newest events: the ones a live system evaluates, with detections and zones to test.
        ids = list(range(n_events - batch + 1, n_events + 1))
        engine.clear_cache()
        matching = _matching_only(engine, ids, runs, target)
        results = [matching]
        samples, created = [], []
        for i in range(min(runs, 5) + 1):
            # Each event commits on its own, as in production. The alerts a run creates are
            # deleted afterwards, so every run meets the same cooldowns as the first.
            run_start = timezone.now()
            _forget_recent_alerts(engine)
            t0 = time.perf_counter()
            for eid in ids:
                engine.evaluate_event(eid)
            elapsed = time.perf_counter() - t0
            new = Alert.objects.filter(created_at__gte=run_start)
            created.append(new.count())
            new.delete()
            if i:  # the first run warms the rule cache and the buffer cache
                samples.append(batch / elapsed)
            else:
                queries, _ = _count_queries(engine, ids, Alert)
        note = (
            f"{batch:,} newest events per run, each committed on its own; {rules} enabled rules, {zones} zones; "
            f"{created[-1]:,} alerts created per run ({created[-1] / batch:.2f} per event)"
        )
        result = measured(SECTION, name, samples, unit="events/s", target=target, limit=2000, higher_is_better=True)
        result.note = note
        result.note += f"; {queries / batch:.2f} queries per event"
        if result.met is False:
            rtt, commit = round_trip_ms(), commit_ms()
            per_event_ms = 1000 / result.median
            result.extra["explanation"] = (
                f"end to end an event costs {per_event_ms:.2f} ms while matching it against the rules costs "
                f"{1000 / (matching.median or 1):.2f} ms ({(matching.median or 0):,.0f} events/s). The rest is the "
                f"database: {queries / batch:.2f} queries per event (load the event; for an event with a surviving "
                f"match: lock the dedup keys, look up cooldowns, insert the alerts) and a committed transaction "
                f"whenever an alert is written ({created[-1] / batch:.2f} alerts per event here). On this machine a "
                f"round trip costs {rtt:.3f} ms and a commit {commit:.2f} ms (the WAL flush), so the write path, not "
                f"the rule engine, sets the rate; events that create no alert cost one query. Evaluated in batches "
                f"(the next line; what alerting.tasks.evaluate_events does with the events one transaction saved), "
                f"hundreds of events share one transaction."
            )
        # Batched evaluation (the same events in one call): what alerting.tasks.evaluate_events does
        # for the events one transaction saved, and what a catch-up after an outage does. Measured
        # like the line above (a warm-up run, then the same cooldowns every run) and checked to
        # create the same alerts.
        samples, created_batched = [], []
        for i in range(min(runs, 5) + 1):
            run_start = timezone.now()
            _forget_recent_alerts(engine)
            t0 = time.perf_counter()
            engine.evaluate_events(ids)
            elapsed = time.perf_counter() - t0
            new = Alert.objects.filter(created_at__gte=run_start)
            created_batched.append(new.count())
            new.delete()
            if i:
                samples.append(batch / elapsed)
            else:
                batched_queries, commits = _count_queries(engine, ids, Alert, batched=True)
        same = "the same alerts as one at a time" if created_batched[-1] == created[-1] else (
            f"**not** the {created[-1]:,} alerts of one at a time"
        )  # fmt: skip
        batched = measured(SECTION, "Rule engine end to end, all events in one call", samples,
                           unit="events/s", target=target, limit=2000, higher_is_better=True,
                           note=f"{batch:,} events per call; {created_batched[-1]:,} alerts created per run ({same}), "
                                f"{batched_queries} queries and {commits} transactions per call")  # fmt: skip
        if batched.met is False:
            rtt, commit = round_trip_ms(), commit_ms()
            batched.extra["explanation"] = (
                f"{1000 / batched.median:.2f} ms per event against {1000 / (matching.median or 1):.2f} ms for the "
                f"matching alone; the call made {batched_queries} queries and {commits} transactions for the "
                f"{batch:,} events (a round trip costs {rtt:.3f} ms and a commit {commit:.2f} ms on this machine)."
            )
        return [*results, result, batched]
    except Exception as exc:
        return [failed(SECTION, name, exc, target)]


def _count_queries(engine, ids, Alert, batched: bool = False) -> tuple[int, int]:
    """(queries, commits) of one pass over the events (an extra, untimed pass; its alerts are deleted)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _forget_recent_alerts(engine)
    start = timezone.now()
    with CaptureQueriesContext(connection) as ctx:
        if batched:
            engine.evaluate_events(ids)
        else:
            for eid in ids:
                engine.evaluate_event(eid)
    Alert.objects.filter(created_at__gte=start).delete()
    return len(ctx.captured_queries), sum(1 for q in ctx.captured_queries if q["sql"] == "COMMIT")


def _forget_recent_alerts(engine) -> None:
    """The engine remembers recent alerts per process to skip cooldown lookups; the alerts of the
    previous run were deleted, so its memory of them must go too, or every later run is all
    "suppressed in memory" and measures nothing."""
    recent = getattr(engine, "_recent", None)
    if isinstance(recent, dict):
        recent.clear()


def _matching_only(engine, ids: list[int], runs: int, target: str) -> Result:
    """Events loaded 100 per query and matched against every candidate rule; nothing written."""
    name = "Rule engine matching (100 rules, 50 zones), events loaded in batches of 100, no writes"

    def once():
        matched = 0
        ruleset = None
        for i in range(0, len(ids), 100):
            views, fingerprint = engine.load_event_views(ids[i : i + 100])
            if ruleset is None:  # production caches the compiled rules between events
                ruleset = engine.load_ruleset(fingerprint)
            for ev in views:
                matched += sum(1 for r in ruleset.candidates(ev.camera_id) if engine.match_compiled(r, ev).matched)
        return matched

    try:
        matched = once()
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            once()
            samples.append(len(ids) / (time.perf_counter() - t0))
        return measured(SECTION, name, samples, unit="events/s", target=target, limit=2000, higher_is_better=True,
                        note=f"{len(ids):,} events per run; {matched / len(ids):.2f} matching rules per event")  # fmt: skip
    except Exception as exc:
        return failed(SECTION, name, exc, target)


def log_handler(runs: int) -> list[Result]:
    name_caller = "Log handler: cost per record on the caller's thread"
    name_persist = "Log handler: records persisted per second"
    try:
        try:
            from monitoring.logging import DatabaseLogHandler
        except ImportError:
            raise NotMeasured("monitoring.logging.DatabaseLogHandler missing") from None
        from monitoring.models import Log

        component = "bench.dbhandler"
        logger = logging.getLogger(component)
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = DatabaseLogHandler(capacity=500_000, batch_size=500, flush_interval=0.2)
        null = logging.NullHandler()
        per_run = 10_000

        def emit(n: int, tag: int) -> float:
            t0 = time.perf_counter()
            for i in range(n):
                logger.info("Processed batch %s of run %s", i, tag, extra={"camera_id": "front_door", "duration_ms": i})
            return time.perf_counter() - t0

        try:
            # Baseline: the logging module's own cost with a handler that does nothing.
            logger.handlers = [null]
            emit(1000, -1)
            base = sorted(emit(per_run, -1) / per_run * 1e6 for _ in range(3))[1]
            logger.handlers = [handler]
            emit(100, 0)
            handler.flush(timeout=30)
            caller = []
            for r in range(runs):
                caller.append(emit(per_run, r) / per_run * 1e6)
                handler.flush(timeout=60)
            persisted = []
            big = 50_000
            for r in range(min(runs, 3)):
                t0 = time.perf_counter()
                emit(big, 1000 + r)
                ok = handler.flush(timeout=300)
                elapsed = time.perf_counter() - t0
                if not ok:
                    raise RuntimeError("the handler did not drain 50,000 records within 300 s")
                persisted.append(big / elapsed)
            stored = Log.objects.filter(component=component).count()
            expected = 100 + per_run * runs + big * min(runs, 3)
            dropped = handler.dropped
        finally:
            logger.handlers = []
            handler.close()
            Log.objects.filter(component=component).delete()
        r1 = measured(SECTION, name_caller, caller, unit="µs", target="< 100 µs (0.1 ms)", limit=100,
                      note=f"logger.info() with the handler; {base:.1f} µs of it is the logging module itself "
                           f"(NullHandler); {per_run:,} records per run")  # fmt: skip
        r2 = measured(SECTION, name_persist, persisted, unit="records/s",
                      note=f"{big:,} records emitted then drained (batches of 500); {stored:,} of {expected:,} "
                           f"stored, {dropped} dropped")  # fmt: skip
        return [r1, r2]
    except Exception as exc:
        return [failed(SECTION, name_caller, exc, "< 100 µs"), failed(SECTION, name_persist, exc)]


def run(ds, runs: int) -> list[Result]:
    return rule_engine(ds, runs) + log_handler(runs)
