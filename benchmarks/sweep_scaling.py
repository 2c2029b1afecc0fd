"""Benchmark whole sweeps: peak memory at 10^5 and 10^6 runs, and 2 Dask workers against 1.

What it measures, in one run:

1. *Memory of a whole sweep* (``load_plan``, then ``run_sweep``: ``execute`` with the
   in-process executor and the archive assembly) of ``--sizes`` runs (default 10^5 and
   10^6), each in a fresh ``spawn`` process. The sweep file is written into a temporary
   folder: one format, a ``--grid`` x ``--grid`` grid over ``format.commitment_bindingness``
   and ``russia.status_quo_value``, whole replicates to reach the size, ``--steps`` steps,
   ``--chunk-runs`` runs per chunk. Peak RSS is ``VmHWM`` (``/proc/self/status``), reset
   through ``/proc/self/clear_refs`` between the phases plan / execute / assemble, and
   ``ru_maxrss``; ``tracemalloc`` peaks per phase come from a second, slower pass.
   Memory bounded by the chunk size means a peak that does not grow with the runs.
2. *Dask, 2 local workers against 1*, on a mid-size sweep (``--dask-runs`` x
   ``--dask-steps``, ``--dask-chunk-runs`` per chunk): ``sweep.make_executor("dask", w)``
   is started and every worker warmed up with a tiny ``run_chunk`` (start-up is reported,
   not timed), then ``run_sweep`` into a temporary folder is timed, split into execution
   (until the last chunk is on disk) and assembly (in the client). The archives' data files
   must be byte-identical (sha256). Busy CPUs of the machine and of this benchmark's
   processes (client with scheduler, nannies, workers) come from ``/proc``. One chunk is
   also timed in this process and in a Dask worker, with the minor page faults it causes.
3. Machine information, and whether the targets are met: peak memory <= 500 MiB at 10^6
   runs, speed-up of 2 workers over 1 >= 1.8.

Run from the repository root (about two to three minutes on a 2-core machine)::

    .venv/bin/python benchmarks/sweep_scaling.py
    .venv/bin/python benchmarks/sweep_scaling.py --sizes 20000 100000 --dask-runs 50000

Options: ``--scenario``, ``--format``, ``--sizes``, ``--steps``, ``--grid``,
``--chunk-runs``, ``--dask-runs``, ``--dask-chunk-runs``, ``--dask-steps``, ``--repeats``,
``--no-trim``, ``--no-trace``, ``--no-memory``, ``--no-dask``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from machine import cpu_model, machine_busy_seconds

from deterrence import api
from deterrence.archive import manifest as archive_manifest
from deterrence.game.config import SCENARIOS_DIR, ConfigError
from deterrence.sweep import datasets, execute

MEMORY_TARGET_MIB = 500.0
MEMORY_TARGET_RUNS = 1_000_000
SPEEDUP_TARGET = 1.8
AXES = (("format.commitment_bindingness", 0.0, 1.0), ("russia.status_quo_value", 0.1, 0.7))
WARM_UP_WAIT_S = 0.5         # each warm-up task waits this long, so every worker gets one
MIB = 2 ** 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIOS_DIR / "baseline.toml",
                        help="scenario file (default: configs/scenarios/baseline.toml)")
    parser.add_argument("--format", default="nato_lite", help="format id (default: nato_lite)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="runs of the memory sweeps (default 100000 1000000)")
    parser.add_argument("--steps", type=int, default=5,
                        help="steps of the memory sweeps (default 5)")
    parser.add_argument("--grid", type=int, default=10,
                        help="points per axis of the 2-D grid (default 10: 100 cells)")
    parser.add_argument("--chunk-runs", type=int, default=8192,
                        help="runs per chunk (default 8192)")
    parser.add_argument("--dask-runs", type=int, default=200_000,
                        help="runs of the Dask sweep (default 200000)")
    parser.add_argument("--dask-chunk-runs", type=int, default=5000,
                        help="runs per chunk of the Dask sweep (default 5000: 40 chunks, an "
                             "even split over 2 workers)")
    parser.add_argument("--dask-steps", type=int, default=20,
                        help="steps of the Dask sweep (default 20: enough that fixed "
                             "per-chunk costs do not dominate)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="Dask timings per worker count, alternating; the fastest counts "
                             "(default 1)")
    parser.add_argument("--no-trim", action="store_true",
                        help="start the Dask workers without the MALLOC_TRIM_THRESHOLD_ that "
                             "Dask's nanny sets by default (not what the package does)")
    parser.add_argument("--no-trace", action="store_true",
                        help="skip the second pass of each memory sweep under tracemalloc")
    parser.add_argument("--no-memory", action="store_true", help="skip part 1")
    parser.add_argument("--no-dask", action="store_true", help="skip part 2")
    args = parser.parse_args()
    if min(args.sizes + [args.steps, args.grid, args.chunk_runs, args.dask_runs,
                         args.dask_chunk_runs, args.dask_steps, args.repeats]) < 1:
        parser.error("sizes, steps, grid, chunk runs and repeats must be positive")
    args.parser = parser
    return args


# ---------------------------------------------------------------------------------------
# Sweep files


def write_sweep(folder: Path, name: str, scenario: Path, format_id: str, runs: int,
                steps: int, grid: int, chunk_runs: int) -> Path:
    """A sweep file of at least ``runs`` runs (whole replicates of a grid x grid grid)."""
    replicates = -(-runs // grid ** 2)
    lines = [f'name = "{name}"', f"scenario = {json.dumps(scenario.resolve().as_posix())}",
             f"formats = [{json.dumps(format_id)}]", 'method = "grid"',
             f"replicates = {replicates}",
             f"steps = {steps}", f"chunk_runs = {chunk_runs}"]
    for path, low, high in AXES:
        lines += ["", "[[axes]]", f'path = "{path}"', f"low = {low}", f"high = {high}",
                  f"count = {grid}"]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------
# Part 1: in a fresh process per sweep


def vm_hwm() -> int | None:
    """Peak resident set size of this process since start or the last reset; None off
    Linux."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh
                        if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); whether that worked."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def memory_sweep(sweep_file: Path, trace: bool) -> dict:
    """Plan, execute in-process and assemble the sweep; peaks and times of each phase."""
    import xarray  # noqa: F401  imported by the assembly: counted with the imports
    from scipy.io import netcdf_file  # noqa: F401

    from deterrence.solve import equilibrium  # noqa: F401

    out: dict = {"imports": vm_hwm(), "phases": {}}
    resettable = reset_hwm()
    if trace:
        tracemalloc.start()
    marks = {"start": time.perf_counter()}

    def phase(name: str) -> None:
        marks[name] = time.perf_counter()
        out["phases"][name] = {"seconds": marks[name] - marks[list(marks)[-2]],
                               "hwm": vm_hwm() if resettable else None,
                               "traced": tracemalloc.get_traced_memory()[1] if trace else None}
        if resettable:
            reset_hwm()
        if trace:
            tracemalloc.reset_peak()

    plan = api.load_plan(sweep_file)
    phase("plan")

    def progress(done: int, total: int) -> None:
        if done == total:
            phase("execute")

    with tempfile.TemporaryDirectory(prefix="sweep-scaling-") as tmp:
        archive, failures = api.run_sweep(plan, Path(tmp) / "archive", execute.InProcessExecutor(),
                                         "inprocess", source=sweep_file, progress=progress)
        if failures:
            raise RuntimeError(f"sweep failed: {failures}")
        phase("assemble")
        out["archive_bytes"] = sum(p.stat().st_size for p in archive.rglob("*") if p.is_file())
    if trace:
        tracemalloc.stop()
    out.update(runs=plan.runs_per_format * len(plan.formats), chunks=len(plan.chunks()),
               cells=plan.cells, replicates=plan.spec.replicates,
               max_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB
               resettable=resettable)
    return out


def in_fresh_process(fn, *args):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# ---------------------------------------------------------------------------------------
# Part 2: Dask


def warm_up(plan_json: dict, format_id: str, delay: float) -> int:
    """A tiny chunk (imports, first calls), then a wait so that every worker gets one."""
    from deterrence.sweep.execute import chunk_task, run_chunk
    from deterrence.sweep.spec import Plan

    run_chunk(chunk_task(Plan.from_json(plan_json, "warm-up"), format_id, 0, 64))
    time.sleep(delay)
    return os.getpid()


def chunk_probe(plan_json: dict, format_id: str, stop: int) -> dict:
    """Time ``run_chunk`` of runs 0 .. stop - 1 here; with the minor page faults it caused
    and this process's glibc trim threshold (Dask's nanny sets one for its workers)."""
    from deterrence.sweep.execute import chunk_task, run_chunk
    from deterrence.sweep.spec import Plan

    task = chunk_task(Plan.from_json(plan_json, "probe"), format_id, 0, stop)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    run_chunk(task)
    return {"seconds": time.perf_counter() - start,
            "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
            "trim": os.environ.get("MALLOC_TRIM_THRESHOLD_")}


def tree_cpu_seconds() -> float | None:
    """CPU seconds of this process and all its descendants (Dask scheduler, nannies,
    workers), from /proc/<pid>/stat; None off Linux."""
    parents, cpu = {}, {}
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return None
    for pid in entries:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                data = fh.read()
        except OSError:  # ended meanwhile
            continue
        fields = data[data.rindex(")") + 2:].split()
        parents[int(pid)] = int(fields[1])
        cpu[int(pid)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    me, total = os.getpid(), 0
    for pid in cpu:
        p = pid
        while p not in (me, 0, 1) and p in parents:
            p = parents[p]
        if p == me:
            total += cpu[pid]
    return total / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """The machine's busy CPUs and those of this benchmark's processes during a timing."""

    def __init__(self) -> None:
        self.machine, self.tree = machine_busy_seconds(), tree_cpu_seconds()
        self.wall = time.perf_counter()

    def read(self) -> dict:
        machine, tree = machine_busy_seconds(), tree_cpu_seconds()
        wall = time.perf_counter() - self.wall
        if None in (machine, tree, self.machine, self.tree) or wall <= 0:
            return {"machine": None, "ours": None, "others": None}
        busy, ours = machine - self.machine, tree - self.tree
        cpus = os.cpu_count() or 1
        return {"machine": busy / wall, "ours": ours / wall,
                "others": min(max(busy - ours, 0.0) / (wall * cpus), 1.0)}


def dask_sweep(plan: api.Plan, sweep_file: Path, workers: int, no_trim: bool) -> dict:
    """Start a local Dask cluster, warm every worker, then time ``run_sweep``."""
    import dask
    import distributed  # noqa: F401  its configuration defaults, before dask.config.set

    unset = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    start = time.perf_counter()
    with dask.config.set(unset if no_trim else {}):
        executor = api.make_executor("dask", workers)
    try:
        startup = time.perf_counter() - start
        tiny = plan.to_json()
        fid = next(iter(plan.formats))
        pids = {f.result() for f in [executor.submit(warm_up, tiny, fid, WARM_UP_WAIT_S)
                                     for _ in range(workers)]}
        probe = executor.submit(chunk_probe, tiny, fid,
                                min(plan.spec.chunk_runs, plan.runs_per_format)).result()
        marks: dict[str, float] = {}

        def progress(done: int, total: int) -> None:
            if done == total:
                marks["executed"] = time.perf_counter()

        with tempfile.TemporaryDirectory(prefix="sweep-scaling-") as tmp:
            watch = CpuWatch()
            start = time.perf_counter()
            archive, failures = api.run_sweep(plan, Path(tmp) / "archive", executor, "dask",
                                             source=sweep_file, progress=progress)
            end = time.perf_counter()
            load = watch.read()
            if failures:
                raise RuntimeError(f"sweep failed: {failures}")
            digests = {name: archive_manifest.sha256(archive / name)
                       for name in (datasets.SIMULATION_FILE, datasets.EXACT_FILE)}
    finally:
        executor.shutdown()
    return {"wall": end - start, "execute": marks["executed"] - start,
            "assemble": end - marks["executed"], "startup": startup,
            "warmed": len(pids), "digests": digests, "probe": probe, **load}


# ---------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    cpus = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    cpu = cpu_model()
    try:
        import dask
        dask_version = dask.__version__
    except ImportError:
        dask_version = "not installed"

    def row(label: str, value: str, note: str = "") -> None:
        print(f"  {label:<40}{value:>12}  {note}".rstrip())

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def mib(value: float | None) -> str:
        return "n/a" if value is None else f"{value / MIB:.0f}"

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    print(f"sweep scaling: {args.scenario.stem} / {args.format}, "
          f"{args.grid} x {args.grid} grid, chunk_runs = {args.chunk_runs:,}")
    print(f"  machine: {platform.platform()}, {cpu}, os.cpu_count() = {cpus} "
          f"({usable} usable)")
    print(f"  Python {platform.python_version()}, numpy {np.__version__}, dask {dask_version}")
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="sweep-scaling-") as folder:
        folder = Path(folder)
        try:
            files = {size: write_sweep(folder, f"memory{size}", args.scenario, args.format,
                                       size, args.steps, args.grid, args.chunk_runs)
                     for size in args.sizes}
            dask_file = write_sweep(folder, "dask", args.scenario, args.format, args.dask_runs,
                                    args.dask_steps, args.grid, args.dask_chunk_runs)
            dask_plan = api.load_plan(dask_file)
        except ConfigError as exc:
            args.parser.error(str(exc))

        # 1. memory of whole sweeps, each in a fresh process
        if not args.no_memory:
            print(f"\n1. whole sweep in a fresh process, in-process executor, {args.steps} "
                  "steps")
            print(f"  {'runs':>10}{'chunks':>8}{'seconds':>9}{'plan':>7}{'execute':>9}"
                  f"{'assemble':>10}{'imports':>9}{'peak RSS':>10}{'archive':>9}")
            results = {}
            for size, path in files.items():
                res = in_fresh_process(memory_sweep, path, False)
                results[size] = res
                ph = res["phases"]
                peak = max(res["max_rss"], *(p["hwm"] or 0 for p in ph.values()))
                res["peak"] = peak
                print(f"  {res['runs']:>10,}{res['chunks']:>8,}"
                      f"{sum(p['seconds'] for p in ph.values()):>9.1f}"
                      f"{ph['plan']['seconds']:>7.1f}{ph['execute']['seconds']:>9.1f}"
                      f"{ph['assemble']['seconds']:>10.1f}{mib(res['imports']):>9}"
                      f"{mib(peak):>10}{res['archive_bytes'] / MIB:>9.1f}")
            traced = ({} if args.no_trace else
                      {size: in_fresh_process(memory_sweep, path, True)
                       for size, path in files.items()})
            print(f"  peak by phase, MiB{'':<22}" + "".join(
                f"{r['runs']:>12,}" for r in results.values()))
            for name in ("execute", "assemble"):
                if next(iter(results.values()))["resettable"]:
                    print(f"    RSS, {name:<33}" + "".join(
                        f"{mib(r['phases'][name]['hwm']):>12}" for r in results.values()))
                if traced:
                    print(f"    tracemalloc, {name:<25}" + "".join(
                        f"{r['phases'][name]['traced'] / MIB:>12.1f}"
                        for r in traced.values()))
            sizes = sorted(results.values(), key=lambda r: r["runs"])
            if len(sizes) > 1:
                lo, hi = sizes[0], sizes[-1]
                span = f"{lo['runs']:,} -> {hi['runs']:,} runs"
                growth = (hi["peak"] - lo["peak"]) / (hi["runs"] - lo["runs"])
                row(f"peak RSS growth, {span}", f"{growth:.0f}",
                    f"bytes per run ({(hi['peak'] - lo['peak']) / MIB:+.0f} MiB)")
                if traced:
                    tlo, thi = traced[min(traced)], traced[max(traced)]

                    def traced_growth(name: str) -> float:
                        return ((thi["phases"][name]["traced"] - tlo["phases"][name]["traced"])
                                / (thi["runs"] - tlo["runs"]))

                    row("traced peak growth, execute / assemble",
                        f"{traced_growth('execute'):.0f} / {traced_growth('assemble'):.0f}",
                        "bytes per run")
                if growth > 0:
                    reach = hi["runs"] + (MEMORY_TARGET_MIB * MIB - hi["peak"]) / growth
                    row(f"runs at which the peak reaches {MEMORY_TARGET_MIB:g} MiB",
                        f"{reach:.2g}", "linear extrapolation, one format")
            big = sizes[-1]
            verdicts.append((f"peak memory <= {MEMORY_TARGET_MIB:g} MiB at "
                             f"{MEMORY_TARGET_RUNS:,} runs",
                             verdict(big["peak"] <= MEMORY_TARGET_MIB * MIB),
                             f"{mib(big['peak'])} MiB at {big['runs']:,} runs"
                             + ("" if big["runs"] >= MEMORY_TARGET_RUNS else
                                " (fewer runs than the target is set for)")))

        # 2. Dask, 1 and 2 workers
        if not args.no_dask:
            runs = dask_plan.runs_per_format * len(dask_plan.formats)
            print(f"\n2. Dask LocalCluster, {runs:,} runs x {args.dask_steps} steps, "
                  f"{len(dask_plan.chunks())} chunks of {args.dask_chunk_runs:,} runs"
                  + (", workers without MALLOC_TRIM_THRESHOLD_" if args.no_trim else ""))
            # the scheduler's HTTP server falls back to another port if 8787 is taken
            warnings.filterwarnings("ignore", message="Port 8787 is already in use")
            # the client assembles the archive: import and warm that path before timing
            api.run_sweep(api.load_plan(write_sweep(folder, "warm", args.scenario, args.format,
                                                  64, 2, 2, 32)),
                         folder / "warm", execute.InProcessExecutor(), "inprocess")
            probe_runs = min(args.dask_chunk_runs, dask_plan.runs_per_format)
            local = min((chunk_probe(dask_plan.to_json(), next(iter(dask_plan.formats)),
                                     probe_runs) for _ in range(2)), key=lambda p: p["seconds"])
            timings: dict[int, list[dict]] = {1: [], 2: []}
            for _ in range(args.repeats):
                for workers in (1, 2):
                    timings[workers].append(dask_sweep(dask_plan, dask_file, workers,
                                                      args.no_trim))
            best = {w: min(ts, key=lambda t: t["wall"]) for w, ts in timings.items()}
            print(f"  {'workers':<10}{'start-up':>9}{'run_sweep':>10}{'execute':>9}"
                  f"{'assemble':>9}{'ours CPU':>9}{'machine':>9}{'others':>8}")
            for w, t in best.items():
                print(f"  {w:<10}{t['startup']:>9.1f}{t['wall']:>10.1f}{t['execute']:>9.1f}"
                      f"{t['assemble']:>9.1f}{t['ours'] or 0:>9.2f}{t['machine'] or 0:>9.2f}"
                      f"{share(t['others']):>8}")
            print("  (seconds; CPU columns: busy CPUs on average over run_sweep, 'ours' = this "
                  "benchmark's processes)")
            speedup = best[1]["wall"] / best[2]["wall"]
            speedup_exec = best[1]["execute"] / best[2]["execute"]
            warmed = all(t["warmed"] == w for w, ts in timings.items() for t in ts)
            same = all(t["digests"] == best[1]["digests"] for ts in timings.values()
                       for t in ts)
            row("speed-up 2 / 1 workers, run_sweep", f"{speedup:.2f}",
                f"execution alone: {speedup_exec:.2f}")
            row("every worker warmed up before timing", "yes" if warmed else "NO")
            remote = min((t["probe"] for ts in timings.values() for t in ts),
                         key=lambda p: p["seconds"])
            row(f"one chunk ({probe_runs:,} runs), this process", f"{local['seconds']:.2f}",
                f"s, {local['faults']:,} minor page faults")
            row("  the same in a Dask worker", f"{remote['seconds']:.2f}",
                f"s, {remote['faults']:,} faults (x{remote['seconds'] / local['seconds']:.2f}); "
                f"worker MALLOC_TRIM_THRESHOLD_ = {remote['trim']}")
            row("data files byte-identical (sha256)", "yes" if same else "NO",
                ", ".join(f"{Path(n).name} {d[:12]}" for n, d in best[1]["digests"].items()))
            others = max((t["others"] or 0) for t in best.values())
            verdicts.append((f"speed-up 2 / 1 Dask workers >= {SPEEDUP_TARGET:g}",
                             verdict(speedup >= SPEEDUP_TARGET),
                             f"{speedup:.2f}" + ("" if usable >= 2 else
                                                 f"; only {usable} CPU usable")
                             + (f"; other processes used up to {others:.0%} of the CPUs"
                                + ("; rerun on a quiet machine" if others > 0.1 else "")
                                if others > 0.05 else "")))
            verdicts.append(("Dask archives byte-identical", "yes" if same else "NO", ""))

    print("\n3. targets")
    for label, value, note in verdicts:
        row(label, value, note)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
