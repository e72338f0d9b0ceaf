"""Runs the selected measurements in one process, on one broker and Redis, and reports them."""

from __future__ import annotations

import asyncio
import platform
import os
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from agents.bench.backlog import Backlog, build_backlog
from agents.bench.baseline import BASELINE_RUNS, median_run, run_baseline
from agents.bench.checks import BenchFailure
from agents.bench.kafka_io import create_topics, produce
from agents.bench.pipeline import PipelineResult, measure_pipeline
from agents.bench.report import print_report, ratio_sentence, write_json
from agents.bench.servers import Servers, delete_redis_keys, start_servers
from agents.bench.workers import Topics, WorkerGroup, new_tag, worker_env
from streams.settings import Settings

STAGES = ("a", "b", "c", "d", "e", "f")
SCALE_FACTOR = 10  # (e): ten times more reps (and so opportunities)


@dataclass(frozen=True)
class BenchOptions:
    events: int = 400_000
    reps: int = 500
    seed: int = 7
    only: tuple[str, ...] = STAGES
    json_path: Path | None = None
    memory_opportunities: int = 1_000_000
    latency_markers: int = 200
    # (c)'s offered load; None: half of (b)'s rate. Fixed, two runs of (c) compare at one load.
    latency_rate: float | None = None


def parse_only(text: str | None) -> tuple[str, ...]:
    """`a,b,f` → ("a", "b", "f"); an unknown letter is refused with the valid ones."""
    if not text:
        return STAGES
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [s for s in chosen if s not in STAGES]
    if unknown or not chosen:
        raise ValueError(f"--only takes letters among {','.join(STAGES)}; got {text!r}")
    return chosen


@dataclass
class Loaded:
    """A backlog on the broker: its input topics and what it holds."""

    backlog: Backlog
    topics: Topics
    reps_file: Path


class Bench:
    def __init__(self, options: BenchOptions, servers: Servers, run_dir: Path, console: Console) -> None:
        self.options = options
        self.servers = servers
        self.run_dir = run_dir
        self.console = console
        self.partitions = Settings().topic_partitions
        self.prefixes: list[str] = []

    def say(self, line: str) -> None:
        self.console.print(line, highlight=False)

    def settings(self, topics: Topics | None = None, app_id: str | None = None) -> Settings:
        extra: dict[str, Any] = {}
        if topics is not None:
            extra.update(topic_crm=topics.crm, topic_billing=topics.billing)
        if app_id is not None:
            extra["app_id"] = app_id
        return Settings(broker_url=self.servers.broker_url, **extra)

    async def load(self, reps: int) -> Loaded:
        """Build the backlog offline and put it on fresh input topics, fast."""
        options = self.options
        began = time.monotonic()
        backlog = build_backlog(options.events, reps, options.seed)
        self.say(f"backlog: {backlog.count:,} events over {reps:,} reps ({backlog.opportunities:,} "
                 f"opportunities created, {backlog.duplicates} re-sent) built in {time.monotonic() - began:.1f} s")
        tag = new_tag()
        topics = Topics(f"crm.events.{tag}", f"billing.events.{tag}", tag)
        settings = self.settings(topics)
        await create_topics(settings, [topics.crm, topics.billing], self.partitions)
        began = time.monotonic()
        for topic, kind in ((topics.crm, "crm"), (topics.billing, "billing")):
            await produce(settings, topic, backlog.records[kind], self.partitions)
        self.say(f"pre-loaded onto {topics.crm} and {topics.billing} ({self.partitions} partitions each) "
                 f"in {time.monotonic() - began:.1f} s")
        reps_file = backlog.write_reps_file(self.run_dir / f"reps-{tag}.csv")
        return Loaded(backlog, topics, reps_file)

    def group(self, loaded: Loaded, label: str, reps_file: Path | None = None,
              thresholds: Path | None = None) -> WorkerGroup:
        """Fresh app id, outputs and Redis prefix; the inputs are the loaded backlog's."""
        tag = new_tag()
        topics = Topics(loaded.topics.crm, loaded.topics.billing, tag)
        env = worker_env(broker_url=self.servers.broker_url, redis_url=self.servers.redis_url,
                         topics=topics, run_dir=self.run_dir, reps_file=reps_file or loaded.reps_file,
                         partitions=self.partitions)
        if thresholds is not None:
            env["KPI_THRESHOLDS_FILE"] = str(thresholds)
        self.prefixes.append(env["KPI_REDIS_PREFIX"])
        return WorkerGroup(env, self.run_dir, label)

    async def baseline(self, loaded: Loaded) -> dict[str, Any]:
        self.say(f"(a) baseline: a plain aiokafka consumer reads and decodes the backlog, {BASELINE_RUNS} times")
        runs = []
        for _ in range(BASELINE_RUNS):  # each in a group of its own, from the start
            runs.append(await run_baseline(self.settings(loaded.topics), [loaded.topics.crm, loaded.topics.billing],
                                           loaded.backlog.count))
            self.say(f"(a) {runs[-1].rate:,.0f} events/s ({runs[-1].rate_from_first:,.0f} from the first record)")
        result = median_run(runs)
        return {"events": result.events, "seconds": result.seconds, "rate": result.rate,
                "seconds_from_first": result.seconds_from_first, "rate_from_first": result.rate_from_first,
                "runs": [run.rate for run in runs]}

    async def pipeline(self, loaded: Loaded, label: str, workers: int = 1, keep: bool = False,
                       group: WorkerGroup | None = None) -> tuple[dict[str, Any], WorkerGroup]:
        group = group or self.group(loaded, label)
        self.say(f"({label}) {workers} worker{'s' if workers > 1 else ''} on the backlog "
                 f"(app id {group.app_id}; logs in {self.run_dir})")
        try:
            result = await measure_pipeline(
                group, self.settings(loaded.topics, group.app_id), expected=loaded.backlog.count,
                expected_duplicates=loaded.backlog.duplicates, workers=workers, progress=self.say,
            )
        except BaseException:
            group.stop()
            raise
        if not keep:
            group.stop()
        self.say(f"({label}) {result.rate:,.0f} events/s from start"
                 + (f", {result.rate_from_first:,.0f} from the first record" if result.rate_from_first else ""))
        return pipeline_dict(result), group

    async def latency(self, loaded: Loaded, rate: float | None) -> dict[str, Any]:
        """A worker of its own (the probe's thresholds) catches up on the backlog, then the load runs."""
        from agents.bench.latency import DAY, plan_days, run_latency
        from agents.bench.probe import probe_reps_file, probe_thresholds
        from streams.simulator import Simulator

        tag = new_tag()
        group = self.group(
            loaded, "c", reps_file=probe_reps_file(loaded.reps_file, self.run_dir / f"reps-probe-{tag}.csv"),
            thresholds=probe_thresholds(self.run_dir / f"thresholds-probe-{tag}.yaml"),
        )
        try:
            caught, _ = await self.pipeline(loaded, "c", keep=True, group=group)
            target = self.options.latency_rate or (rate or caught["rate"]) / 2
            backlog = loaded.backlog
            per_day = backlog.count / max(1.0, (backlog.last_ts - backlog.first_ts) / DAY)
            # Fewer events per simulated day than the backlog, so days (and alerts) come often.
            wall_day, activity = plan_days(target, per_day, self.partitions)
            simulator = Simulator(self.options.seed + 1, start=backlog.last_ts + 1, org=backlog.organisation,
                                  initial_deals=0, activity=activity)
            self.say(f"(c) latency at {target:,.0f} events/s offered, {self.options.latency_markers} probe "
                     f"calls, one simulated day per ~{wall_day:.0f} s")
            settings = Settings(broker_url=self.servers.broker_url, topic_crm=loaded.topics.crm,
                                topic_billing=loaded.topics.billing,
                                topic_kpi_values=group.env["KPI_TOPIC_KPI_VALUES"],
                                topic_kpi_alerts=group.env["KPI_TOPIC_KPI_ALERTS"])
            result = await run_latency(settings, simulator, target, self.partitions,
                                       self.options.latency_markers, self.say)
            group.check_alive()
        finally:
            group.stop()
        result["catch_up"] = caught
        result["activity"] = activity
        result["wall_seconds_per_day"] = wall_day
        return result

    def cleanup(self) -> None:
        for prefix in self.prefixes:
            try:
                delete_redis_keys(self.servers.redis_url, prefix)
            except Exception as exc:  # noqa: BLE001 - cleaning up must not hide the result
                self.say(f"could not delete Redis keys {prefix}:* ({type(exc).__name__})")


def pipeline_dict(result: PipelineResult) -> dict[str, Any]:
    out = asdict(result)
    out["rate"] = result.rate
    out["rate_from_first"] = result.rate_from_first
    return out


async def _run(bench: Bench, results: dict[str, Any]) -> None:
    only = bench.options.only
    loaded = await bench.load(bench.options.reps) if set(only) & {"a", "b", "c", "f"} else None
    if "a" in only:
        results["a"] = await bench.baseline(loaded)
    if "b" in only:
        results["b"], _ = await bench.pipeline(loaded, "b")
    if "f" in only:
        two, _ = await bench.pipeline(loaded, "f", workers=2)
        base = results.get("b")
        two["ratio"] = two["rate"] / base["rate"] if base else None
        results["f"] = two
    # (c) goes on producing onto the backlog's topics: every measurement that reads the
    # backlog as loaded runs before it.
    if "c" in only:
        results["c"] = await bench.latency(loaded, results.get("b", {}).get("rate"))
    if "a" in results and "b" in results:
        results["ratio_b_a"] = results["b"]["rate"] / results["a"]["rate"]
        results["ratio_sentence"] = ratio_sentence(results["a"]["rate"], results["b"]["rate"])
    if "d" in only:
        from agents.bench.memory import measure_memory

        results["d"] = measure_memory(bench.options.memory_opportunities, bench.options.reps, bench.say)
    if "e" in only:
        bigger = await bench.load(bench.options.reps * SCALE_FACTOR)
        scaled, _ = await bench.pipeline(bigger, "e")
        scaled["reps"] = bench.options.reps * SCALE_FACTOR
        scaled["opportunities"] = bigger.backlog.opportunities
        base = results.get("b")
        scaled["change"] = scaled["rate"] / base["rate"] - 1 if base else None
        results["e"] = scaled


def run_bench(options: BenchOptions, console: Console) -> int:
    """Run, print, write JSON; 0 when every selected measurement ran and checked out."""
    settings = Settings()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (settings.data_dir / "bench-runs" / stamp).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = options.json_path or settings.data_dir / "bench.json"
    results: dict[str, Any] = {
        "events": options.events, "reps": options.reps, "seed": options.seed, "only": list(options.only),
        "started_at": stamp, "run_dir": str(run_dir),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
    }
    code = 0
    with ExitStack() as stack:
        servers = start_servers(stack, run_dir)
        results["servers"] = {"broker": servers.broker_url, "redis": servers.redis_url,
                              "embedded": list(servers.embedded)}
        console.print(f"bench: broker {servers.broker_url}, Redis {servers.redis_url}; run dir {run_dir}",
                      highlight=False)
        bench = Bench(options, servers, run_dir, console)
        try:
            asyncio.run(_run(bench, results))
        except BenchFailure as exc:
            results["failure"] = str(exc)
            console.print(f"[bold red]bench failed:[/] {exc}", highlight=False)
            code = 1
        except Exception as exc:  # noqa: BLE001 - report what was measured before it broke
            import traceback

            (run_dir / "bench-error.log").write_text(traceback.format_exc())
            results["failure"] = f"{type(exc).__name__}: {exc}"
            console.print(f"[bold red]bench failed:[/] {type(exc).__name__}: {exc} "
                          f"(traceback in {run_dir / 'bench-error.log'})", highlight=False)
            code = 1
        finally:
            bench.cleanup()
    write_json(json_path, results)
    print_report(console, results)
    console.print(f"JSON: {json_path}", highlight=False)
    return code
