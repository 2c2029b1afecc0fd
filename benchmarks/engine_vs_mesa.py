"""Benchmark the vectorised engine against the Mesa model, and a large sweep on 1 and 2 cores.

What it measures, in one run:

1. *Both engines on the same runs.* ``deterrence.simulate.mesa_model.run`` (the Mesa model,
   ``keep_series=False``) on run indices ``0 .. --runs-mesa - 1`` and
   ``deterrence.simulate.engine.simulate`` on ``--runs-engine`` runs, each after a short warm-up:
   throughput in run-steps per second and the ratio engine / Mesa. The engine's summaries of
   the Mesa runs (computed alone and as part of the larger simulation) must equal Mesa's
   (``np.array_equal`` with ``equal_nan``).
2. *A sweep* of 45,000 runs (``--sweep-runs``) over the scenario's guarantors on one worker
   process and on two (the run indices split in halves), each worker a fresh process of a
   ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` context, started and warmed
   up before the timing (start-up time is reported apart). The two results must be equal:
   a run's numbers must not depend on how runs are split. If the estimated one-process time
   of the full sweep exceeds three minutes, fewer runs are simulated by default and the
   times are extrapolated linearly (and labelled so).
3. *Where the time goes.* ``deterrence.simulate.rules.uniforms`` is timed for the same draws the
   one-process sweep makes (chunk by chunk, step by step, in the same worker right after
   the sweep) and divided by that sweep's time. A cProfile of ``engine.simulate`` on
   ``--profile-runs x --profile-steps`` lists the top functions by own and cumulative time.
4. *Memory.* The max RSS (``resource.getrusage``) of each sweep worker, and the
   ``tracemalloc`` peak of one more, untimed, two-process pass (tracing slows numpy down).
5. Machine information, the share of the CPUs that other processes used during each timing
   (from ``/proc/stat``), and whether the targets are met: engine / Mesa >= 30, sweep on
   two cores <= 2 s, random numbers <= 20 % of the engine's time, peak memory <= 200 MiB.

Run from the repository root (about two to three minutes on a 2-core machine)::

    .venv/bin/python benchmarks/engine_vs_mesa.py
    .venv/bin/python benchmarks/engine_vs_mesa.py --format coalition --sweep-runs 8000

Options: ``--scenario``, ``--format``, ``--runs-mesa``, ``--runs-engine``, ``--steps``,
``--sweep-runs``, ``--profile-runs``, ``--profile-steps``, ``--seed``.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import platform
import pstats
import resource
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from machine import cpu_model, machine_busy_seconds

from deterrence.game.config import SCENARIOS_DIR, ConfigError, load_catalogue, load_scenario
from deterrence.simulate import engine
from deterrence.simulate import rules as dyn

SWEEP_RUNS = 45_000          # the sweep the targets are set for
SWEEP_BUDGET_S = 180.0       # longer than this on one process: scale the sweep down ...
SCALED_SWEEP_S = 60.0        # ... to about this long
RATIO_TARGET = 30.0
SWEEP_TARGET_S = 2.0
RANDOM_TARGET = 0.20
MEMORY_TARGET_MIB = 200.0
START_METHOD = "spawn"       # Mesa 3.3 forces "spawn" globally on import; be explicit anyway
WARM_UP_WAIT_S = 0.3         # each warm-up task waits this long, so every worker gets one
TOP = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIOS_DIR / "baseline.toml",
                        help="scenario file (default: configs/scenarios/baseline.toml)")
    parser.add_argument("--format", default="nato_lite", help="format id (default: nato_lite)")
    parser.add_argument("--runs-mesa", type=int, default=20,
                        help="runs of the Mesa model (default 20)")
    parser.add_argument("--runs-engine", type=int, default=2000,
                        help="runs of the vectorised engine in part 1 (default 2000)")
    parser.add_argument("--steps", type=int, default=200, help="steps per run (default 200)")
    parser.add_argument("--sweep-runs", type=int, default=None,
                        help=f"runs of the sweep (default {SWEEP_RUNS:,}, fewer with a linear "
                             f"extrapolation if that would take over {SWEEP_BUDGET_S:.0f} s "
                             "on one process)")
    parser.add_argument("--profile-runs", type=int, default=2000,
                        help="runs of the profiled simulation (default 2000)")
    parser.add_argument("--profile-steps", type=int, default=50,
                        help="steps of the profiled simulation (default 50)")
    parser.add_argument("--seed", type=int, default=None,
                        help="root seed (default: the scenario's seed)")
    args = parser.parse_args()
    counts = ("runs_mesa", "runs_engine", "steps", "profile_runs", "profile_steps")
    if any(getattr(args, name) < 1 for name in counts):
        parser.error("run and step counts must be positive")
    if args.sweep_runs is not None and args.sweep_runs < 2:
        parser.error("--sweep-runs must be at least 2 (it is split over two processes)")
    if args.steps > dyn.MAX_STEPS or args.profile_steps > dyn.MAX_STEPS:
        parser.error(f"steps must be <= {dyn.MAX_STEPS}")
    if args.seed is not None and args.seed < 0:
        parser.error("--seed must be a non-negative integer")
    args.parser = parser
    return args


# ---------------------------------------------------------------------------------------
# Work done in the worker processes (module level, so that spawned workers can import it)


def warm_up(setup: dyn.Setup, delay: float) -> int:
    """Run a tiny simulation (first calls, caches), then wait so that every worker of the
    pool gets one of these tasks; return the worker's process id."""
    engine.simulate(setup, 64, 2)
    time.sleep(delay)
    return os.getpid()


def uniforms_of_sweep(setup: dyn.Setup, run_ids: np.ndarray, steps: int) -> float:
    """Seconds spent drawing the uniforms the engine draws for ``run_ids``: per chunk of
    ``engine.CHUNK_RUNS`` runs, per step, ``slot_count(n)`` slots."""
    chunk, slots = engine.CHUNK_RUNS, dyn.slot_count(setup.base.n)
    start = time.perf_counter()
    for s in range(0, run_ids.size, chunk):
        ids = run_ids[s:s + chunk]
        for t in range(steps):
            dyn.uniforms(setup.key, ids, t, slots)
    return time.perf_counter() - start


def resident_bytes() -> int | None:
    """The process's current resident set size; None off Linux."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def sweep_part(setup: dyn.Setup, first: int, stop: int, steps: int, trace: bool = False,
               time_uniforms: bool = False) -> dict:
    """Simulate runs ``first .. stop - 1``; what the parent needs to report on it."""
    rss_before = resident_bytes()  # the interpreter, numpy, deterrence and its imports
    cpu_start = time.process_time()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    summary = engine.simulate(setup, np.arange(first, stop), steps).summary
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    cpu = time.process_time() - cpu_start
    uniform_s = uniforms_of_sweep(setup, np.arange(first, stop), steps) if time_uniforms else None
    return {"summary": summary, "seconds": seconds, "cpu": cpu, "uniform_s": uniform_s,
            "traced_peak": traced_peak, "pid": os.getpid(), "rss_before": rss_before,
            "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}  # KiB


# ---------------------------------------------------------------------------------------
# Measurement helpers


def own_cpu_seconds() -> float:
    own = os.times()
    return own.user + own.system


class CpuWatch:
    """Share of the machine's CPUs used by other processes during a timing: the machine's
    busy time minus this process's CPU time and that reported by its workers."""

    def __init__(self) -> None:
        self.machine, self.own = machine_busy_seconds(), own_cpu_seconds()
        self.wall = time.perf_counter()

    def others(self, worker_cpu: float = 0.0) -> float | None:
        machine, wall = machine_busy_seconds(), time.perf_counter() - self.wall
        if machine is None or self.machine is None or wall <= 0:
            return None
        used = (machine - self.machine) - (own_cpu_seconds() - self.own) - worker_cpu
        return min(max(used, 0.0) / (wall * (os.cpu_count() or 1)), 1.0)


def same_summaries(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def concatenated(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def start_pool(setup: dyn.Setup, workers: int) -> tuple[ProcessPoolExecutor, float]:
    """A pool of ``workers`` fresh processes, each started and warmed up: (pool, seconds
    to start it, without the warm-up tasks' wait)."""
    start = time.perf_counter()
    pool = ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context(START_METHOD))
    tasks = [pool.submit(warm_up, setup, WARM_UP_WAIT_S) for _ in range(workers)]
    pids = {f.result() for f in tasks}
    if len(pids) != workers:
        raise RuntimeError(f"warm-up reached {len(pids)} of {workers} workers")
    return pool, time.perf_counter() - start - WARM_UP_WAIT_S


def sweep(setup: dyn.Setup, runs: int, steps: int, workers: int, trace: bool = False,
          time_uniforms: bool = False) -> dict:
    """The sweep over ``runs`` split in ``workers`` contiguous parts, on a fresh pool."""
    bounds = np.linspace(0, runs, workers + 1).round().astype(int)
    pool, startup = start_pool(setup, workers)
    with pool:
        watch = CpuWatch()
        start = time.perf_counter()
        futures = [pool.submit(sweep_part, setup, int(lo), int(hi), steps, trace, time_uniforms)
                   for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        parts = [f.result() for f in futures]
        wall = time.perf_counter() - start
        others = watch.others(sum(p["cpu"] for p in parts))
    return {"wall": wall, "startup": startup, "others": others, "parts": parts,
            "summary": concatenated([p["summary"] for p in parts])}


def profile_engine(setup: dyn.Setup, runs: int, steps: int) -> tuple[float, list[tuple]]:
    """cProfile of one simulation: (total seconds, [(name, calls, own s, cum s)])."""
    profiler = cProfile.Profile()
    profiler.enable()
    engine.simulate(setup, runs, steps)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    rows = []
    for (path, line, func), (_, calls, own, cum, _) in stats.items():
        if func == "<method 'disable' of '_lsprof.Profiler' objects>":
            continue
        if path == "~":  # a built-in
            name = func.replace("<method '", "").replace("' objects>", "").replace(
                "<built-in method ", "").rstrip(">").replace("' of '", " of ")
        else:
            name = f"{Path(path).stem}.{func}:{line}"
        rows.append((name, calls, own, cum))
    total = max(row[3] for row in rows)
    return total, rows


# ---------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    try:
        scenario = load_scenario(args.scenario)
        catalogue = load_catalogue()
        if args.format not in catalogue:
            raise ConfigError(f"unknown format {args.format!r}; allowed: {sorted(catalogue)}")
        setup = dyn.Setup.from_config(scenario, catalogue[args.format], args.seed)
    except ConfigError as exc:
        args.parser.error(str(exc))
    import mesa

    from deterrence.simulate import (
        mesa_model as abm,  # imports mesa: kept out of the workers' imports
    )

    steps, n = args.steps, setup.base.n
    cpus = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus

    # 1. the same runs with both engines
    mesa_ids = np.arange(args.runs_mesa)
    abm.run(setup, 0, 2, keep_series=False)                              # warm-up
    watch = CpuWatch()
    start = time.perf_counter()
    mesa_results = [abm.run(setup, int(r), steps, keep_series=False)[0] for r in mesa_ids]
    mesa_s = time.perf_counter() - start
    mesa_others = watch.others()
    mesa_summary = concatenated(mesa_results)

    engine.simulate(setup, 64, 2)                                        # warm-up
    watch = CpuWatch()
    start = time.perf_counter()
    big = engine.simulate(setup, args.runs_engine, steps).summary
    engine_s = time.perf_counter() - start
    engine_others = watch.others()
    alone = engine.simulate(setup, mesa_ids, steps).summary
    checks = [same_summaries(mesa_summary, alone)]
    if args.runs_mesa <= args.runs_engine:
        checks.append(same_summaries(mesa_summary,
                                     {k: v[:args.runs_mesa] for k, v in big.items()}))
    mesa_rate = args.runs_mesa * steps / mesa_s
    engine_rate = args.runs_engine * steps / engine_s
    ratio = engine_rate / mesa_rate

    # 2. the sweep on one and on two processes (fresh pools), then an untimed traced pass
    estimate = SWEEP_RUNS * steps / engine_rate
    if args.sweep_runs is not None:
        sweep_runs = args.sweep_runs
    elif estimate <= SWEEP_BUDGET_S:
        sweep_runs = SWEEP_RUNS
    else:
        sweep_runs = max(2 * engine.CHUNK_RUNS,
                         int(SWEEP_RUNS * SCALED_SWEEP_S / estimate) // 1000 * 1000)
    scale = SWEEP_RUNS / sweep_runs
    one = sweep(setup, sweep_runs, steps, 1, time_uniforms=True)
    two = sweep(setup, sweep_runs, steps, 2)
    traced = sweep(setup, sweep_runs, steps, 2, trace=True)
    split_ok = (same_summaries(one["summary"], two["summary"])
                and same_summaries(one["summary"], traced["summary"]))

    # 3. random numbers and the profile
    one_part = one["parts"][0]
    uniform_share = one_part["uniform_s"] / one_part["seconds"]
    draws = sweep_runs * steps * dyn.slot_count(n)
    profile_s, rows = profile_engine(setup, args.profile_runs, args.profile_steps)

    # 4. memory
    rss = {k: max(p["max_rss"] for p in r["parts"]) / 2 ** 20 for k, r in
           (("one", one), ("two", two))}
    traced_peak = max(p["traced_peak"] for p in traced["parts"]) / 2 ** 20
    before = [p["rss_before"] for r in (one, two) for p in r["parts"]]
    rss_imports = None if None in before else max(before) / 2 ** 20
    peak = max(rss["one"], rss["two"], traced_peak)

    # 5. report
    def row(label: str, value: str, note: str = "") -> None:
        print(f"  {label:<44}{value:>12}  {note}".rstrip())

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    cpu = cpu_model()
    label_sweep = f"{sweep_runs:,} runs x {steps} steps"
    extrapolated = sweep_runs != SWEEP_RUNS
    per_full = f"for {SWEEP_RUNS:,} runs, extrapolated x{scale:.3g}" if extrapolated else ""
    sweep_two_full = two["wall"] * scale
    load = [("Mesa", mesa_others), ("engine", engine_others), ("1-process", one["others"]),
            ("2-process", two["others"])]

    print(f"engine vs Mesa: {scenario.name} / {args.format} ({n} guarantors), {steps} steps, "
          f"seed {scenario.seed if args.seed is None else args.seed}")
    print(f"  machine: {platform.platform()}, {cpu}, os.cpu_count() = {cpus} "
          f"({usable} usable)")
    print(f"  Python {platform.python_version()}, numpy {np.__version__}, mesa "
          f"{mesa.__version__}; workers: {START_METHOD}, engine.CHUNK_RUNS = "
          f"{engine.CHUNK_RUNS}")
    if all(v is not None for _, v in load):
        busiest = max(v for _, v in load)
        print("  other processes' share of the CPUs during the timings: "
              + ", ".join(f"{k} {share(v)}" for k, v in load)
              + ("; timings may be inflated" if busiest > 0.05 else ""))

    print(f"\n{'1. same runs, both engines':<46}{'runs':>12}{'seconds':>12}{'run-steps/s':>14}")
    print(f"  {'Mesa: abm.run, keep_series=False':<44}{args.runs_mesa:>12,}{mesa_s:>12.3g}"
          f"{mesa_rate:>14,.0f}")
    print(f"  {'vectorised: engine.simulate':<44}{args.runs_engine:>12,}{engine_s:>12.3g}"
          f"{engine_rate:>14,.0f}")
    row("speed ratio engine / Mesa", f"{ratio:.3g}", "per run-step")
    row(f"summaries identical on the {args.runs_mesa} Mesa runs",
        "yes" if all(checks) else "NO",
        "engine on those runs alone" + (f" and within {args.runs_engine:,}"
                                        if len(checks) > 1 else ""))

    print(f"\n{'2. sweep, ' + label_sweep:<46}{'wall s':>12}{'in worker':>12}"
          f"{'run-steps/s':>14}{'CPU/wall':>10}")
    for name, res in (("1 process", one), ("2 processes", two)):
        in_worker = max(p["seconds"] for p in res["parts"])
        busy = np.mean([p["cpu"] / p["seconds"] for p in res["parts"]])  # < 1: waited for a CPU
        print(f"  {name:<44}{res['wall']:>12.3g}{in_worker:>12.3g}"
              f"{sweep_runs * steps / res['wall']:>14,.0f}{busy:>10.2f}")
    if extrapolated:
        row(f"1 process, {SWEEP_RUNS:,} runs (extrapolated)", f"{one['wall'] * scale:.3g}",
            f"s, linear from {sweep_runs:,} runs")
        row(f"2 processes, {SWEEP_RUNS:,} runs (extrapolated)", f"{sweep_two_full:.3g}",
            f"s, linear from {sweep_runs:,} runs")
    row("speed-up 2 / 1 processes", f"{one['wall'] / two['wall']:.2f}",
        f"pool start-up not timed: {one['startup']:.2g} s (1), {two['startup']:.2g} s (2)")
    row("2-process result equals 1-process result", "yes" if split_ok else "NO",
        "and the traced pass's")

    print(f"\n3. random numbers: dynamics.uniforms for the same {draws / 1e6:.3g} M draws "
          f"({sweep_runs:,} x {steps} x {dyn.slot_count(n)})")
    row("uniforms time", f"{one_part['uniform_s']:.3g}",
        f"s in the 1-process worker, {uniform_share:.1%} of its sweep "
        f"({one_part['seconds']:.3g} s)")
    print(f"  cProfile of engine.simulate, {args.profile_runs:,} runs x {args.profile_steps} "
          f"steps: {profile_s:.3g} s (profiled)")
    drivers = [r for r in rows if r[3] >= 0.99 * profile_s]  # simulate and its chunk loop
    for key, title in ((2, f"top {TOP} by own time"),
                       (3, f"top {TOP} by cumulative time, below the drivers")):
        print(f"    {title:<51}{'calls':>9}{'own s':>9}{'cum s':>9}{'own %':>8}")
        for name, calls, own, cum in sorted((r for r in rows if key == 2 or r not in drivers),
                                            key=lambda r: -r[key])[:TOP]:
            print(f"    {name[:51]:<51}{calls:>9,}{own:>9.3f}{cum:>9.3f}"
                  f"{own / profile_s:>8.1%}")

    print("\n4. memory of the sweep")
    row("max RSS of the worker, 1 process", f"{rss['one']:.0f}", "MiB (all runs)")
    if rss_imports is not None:
        row("  of which RSS before the sweep (imports)", f"{rss_imports:.0f}",
            "MiB (interpreter, numpy, deterrence and what it imports)")
    row("max RSS per worker, 2 processes", f"{rss['two']:.0f}", "MiB")
    row("tracemalloc peak per worker, 2 processes", f"{traced_peak:.1f}",
        "MiB (untimed traced pass)")

    print("\n5. targets")
    row(f"engine / Mesa >= {RATIO_TARGET:g}", verdict(ratio >= RATIO_TARGET), f"{ratio:.3g}")
    row(f"sweep of {SWEEP_RUNS:,} runs on 2 cores <= {SWEEP_TARGET_S:g} s",
        verdict(sweep_two_full <= SWEEP_TARGET_S),
        f"{sweep_two_full:.3g} s {'(' + per_full + ')' if extrapolated else ''}"
        + ("" if usable >= 2 else f"; only {usable} CPU usable")
        + ("" if steps == 200 and n == 8 else "; the target is set for 8 guarantors, 200 "
           "steps"))
    row(f"random numbers <= {RANDOM_TARGET:.0%} of engine time",
        verdict(uniform_share <= RANDOM_TARGET), f"{uniform_share:.1%}")
    row(f"peak memory <= {MEMORY_TARGET_MIB:g} MiB", verdict(peak <= MEMORY_TARGET_MIB),
        f"{peak:.0f} MiB (largest of the RSS and traced peaks)")
    row("Mesa and engine agree; split-independent",
        "yes" if all(checks) and split_ok else "NO")


if __name__ == "__main__":
    main()
