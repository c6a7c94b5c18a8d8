"""`make bench`: build (or reuse) the benchmark database, measure, write docs/benchmarks.md.

    make bench                      # default scale (SCALE=1: 10M gpu_stats, 5M logs, 1M events …)
    make bench SCALE=0.01           # 1 % of it, for a quick run
    .venv/bin/python -m tests.benchmarks.run --scale 0.01 --only pages,compare --runs 5

Knobs (command-line options win over environment variables):
    SCALE / --scale          fraction of the default dataset (default 1)
    BENCH_RUNS / --runs      timed runs per measurement (default 7; median and p95 reported)
    BENCH_ONLY / --only      comma list of groups: pages, compare, throughput, memory, backup
    BENCH_REBUILD=1 / --rebuild   rebuild the dataset even if the stored one matches
    BENCH_EMBEDDINGS         re-id embeddings to generate (default: see dataset.planned_counts)
    BENCH_OUTPUT / --output  report path (default docs/benchmarks.md)
    BENCH_DB_NAME            benchmark database on the embedded server (default watchpost_bench);
                             DATABASE_URL, when set, is used instead
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# backup runs last: its restores rewrite tables (same rows) and must not disturb the others.
GROUPS = ("pages", "compare", "throughput", "memory", "backup")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, default=float(os.environ.get("SCALE") or 1))
    p.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS") or 7))
    p.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""))
    p.add_argument("--rebuild", action="store_true", default=os.environ.get("BENCH_REBUILD") == "1")
    p.add_argument("--output", default=os.environ.get("BENCH_OUTPUT", "docs/benchmarks.md"))
    p.add_argument("--render", metavar="RAW_JSON", help="only rewrite the report from a run's raw JSON (no database)")
    args = p.parse_args(argv)
    if not 0 < args.scale <= 10:
        p.error("--scale must be in (0, 10]")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    args.only = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = set(args.only) - set(GROUPS)
    if unknown:
        p.error(f"unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}")
    return args


def render(args) -> int:
    """Rewrite the report from docs/benchmarks-raw/*.json: wording changes without measuring again."""
    from tests.benchmarks import report
    from tests.benchmarks.dataset import Dataset
    from tests.benchmarks.harness import Result

    raw = Path(args.render)
    data = json.loads(raw.read_text())
    # Raw files written before measured_at existed: the file's own time is when the run ended.
    data["machine"].setdefault("measured_at", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(raw.stat().st_mtime)))
    args.scale, args.runs = data["dataset"]["scale"], data.get("runs", args.runs)
    results = [Result(**r) for r in data["results"]]
    report.write(Path(args.output), Dataset.from_json(data["dataset"]), data["machine"], results, args)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args)
    # The benchmark settings pick the benchmark database; they must win over anything inherited.
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.benchmarks.settings"
    os.environ["SCALE"] = str(args.scale)
    import django

    django.setup()

    from tests.benchmarks import backups, compare, dataset, machine, memory, pages, report, throughput
    from tests.benchmarks.harness import failed

    started = time.time()
    load_start = os.getloadavg()
    ds = dataset.ensure_dataset(args.scale, force=args.rebuild)
    info = machine.describe()
    info["load_start"] = load_start
    results = []
    groups = {
        "pages": pages.run,
        "compare": compare.run,
        "throughput": throughput.run,
        "memory": memory.run,
        "backup": backups.run,
    }
    raw = Path("docs/benchmarks-raw")
    raw_file = raw / f"results-scale-{args.scale:g}.json"
    # With --only, the other groups' latest numbers at this scale (same dataset) stay in the report,
    # so one group can be measured again after a fix without measuring everything.
    earlier = _earlier_results(raw_file, ds) if args.only else {}
    group_seconds: dict[str, float] = {}
    for name, fn in groups.items():
        if args.only and name not in args.only:
            if name in earlier:
                results.extend(earlier[name]["results"])
                group_seconds[name] = earlier[name]["seconds"]
                dataset.log(f"measuring: {name} kept from the earlier run ({len(earlier[name]['results'])} lines)")
            continue
        dataset.log(f"measuring: {name}")
        t0 = time.time()
        try:
            new = fn(ds, args.runs)
        except Exception as exc:  # one broken group must not lose the others' numbers
            new = [failed(name, f"{name} (whole group)", exc)]
        for r in new:
            r.group = name
        results.extend(new)
        group_seconds[name] = round(time.time() - t0, 1)
        dataset.log(f"measuring: {name} done in {group_seconds[name]:.0f} s")
    info["load_end"] = os.getloadavg()
    info["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    info["group_seconds"] = group_seconds
    info["measure_seconds"] = round(sum(group_seconds.values()), 1)
    info["wall_seconds"] = round(time.time() - started, 1)
    out = Path(args.output)
    report.write(out, ds, info, results, args)
    raw.mkdir(parents=True, exist_ok=True)
    raw_file.write_text(
        json.dumps(
            {"dataset": ds.to_json(), "machine": info, "runs": args.runs, "results": [r.to_json() for r in results]},
            indent=2,
            default=str,
        )  # fmt: skip
    )
    missed = [r for r in results if r.met is False]
    dataset.log(f"wrote {out} ({len(results)} measurements, {len(missed)} not meeting their target)")
    for r in missed:
        dataset.log(f"  not met: [{r.section}] {r.name}: {r.note or ''}")
    return 0


def _earlier_results(raw_file: Path, ds) -> dict:
    """{group: {"results": [...], "seconds": s}} from the last raw JSON of the same dataset build."""
    from tests.benchmarks.harness import Result

    if not raw_file.exists():
        return {}
    try:
        data = json.loads(raw_file.read_text())
    except (OSError, ValueError):
        return {}
    if data.get("dataset", {}).get("anchor") != ds.anchor.isoformat():
        return {}  # another build of the dataset: its numbers do not belong with these
    seconds = data.get("machine", {}).get("group_seconds", {})
    out: dict = {}
    for r in data.get("results", []):
        if r.get("group"):
            out.setdefault(r["group"], {"results": [], "seconds": seconds.get(r["group"], 0.0)})
            out[r["group"]]["results"].append(Result(**r))
    return out


if __name__ == "__main__":
    sys.exit(main())
