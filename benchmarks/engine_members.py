"""Benchmark the vectorised engine's cost against the number of members (n = 2 ... 33).

What it measures, in one run: ``engine.simulate`` of ``--runs`` runs x ``--steps`` rounds of
the coalition scenario (``configs/scenarios/coalition_35.toml``: 33 guarantors, the states
of the 35-state declaration that the scenario could establish, with the US) restricted to
its first n guarantors, under ``--format`` (default ``nato_lite``, which binds every guarantor),
for each n of ``--members``, after a warm-up. Each n is timed in CPU-seconds of this process
(``time.process_time``, which the machine's other load disturbs less than wall time) and in
wall time, with the share of the CPUs other processes used. It prints the CPU time per
run-step, the ratio to n = 8, the 45,000 x 200 sweep extrapolated linearly to one core, and
whether the target is met: with every guarantor (n = 33) within 10 times the cost at
n = 8.

Run from the repository root (about two minutes on a 2-core machine)::

    .venv/bin/python benchmarks/engine_members.py
    .venv/bin/python benchmarks/engine_members.py --runs 4000 --members 8 33

Options: ``--format``, ``--runs``, ``--steps``, ``--members``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from machine import cpu_model, machine_busy_seconds

from deterrence.game.config import SCENARIOS_DIR, load_catalogue, load_scenario
from deterrence.simulate import engine
from deterrence.simulate import rules as dyn

SWEEP_RUNS, SWEEP_STEPS = 45_000, 200   # the sweep the targets are set for
REFERENCE_MEMBERS = 8
GROWTH_TARGET = 10.0                    # every guarantor within this factor of n = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", default="nato_lite")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--members", type=int, nargs="+", default=None,
                        help="numbers of guarantors (default 2 4 8 16 and all 33)")
    args = parser.parse_args()
    full = load_scenario(SCENARIOS_DIR / "coalition_35.toml")
    args.members = args.members or [2, 4, 8, 16, len(full.guarantors)]
    fmt = load_catalogue()[args.format]
    most = len(full.guarantors)
    if any(not 1 <= n <= most for n in args.members):
        parser.error(f"--members must lie in 1..{most}")
    print(f"engine vs members: coalition_35 / {args.format}, {args.runs:,} runs x "
          f"{args.steps} steps, engine.CHUNK_RUNS = {engine.CHUNK_RUNS}")
    print(f"  machine: {platform.platform()}, {cpu_model()}, os.cpu_count() = "
          f"{os.cpu_count()}; Python {platform.python_version()}")
    print(f"  {'n':>4} {'CPU s':>8} {'wall s':>8} {'us/run-step':>12} {'x n=8':>7} "
          f"{'45k x 200, 1 core s':>20} {'others':>7}")
    per_step = {}
    for n in args.members:
        scenario = full.model_copy(update={"guarantors": full.guarantors[:n]})
        setup = dyn.Setup.from_config(scenario, fmt)
        engine.simulate(setup, 64, 4)  # warm-up: first calls, compiled kernels
        busy, cpu, wall = machine_busy_seconds(), time.process_time(), time.perf_counter()
        engine.simulate(setup, args.runs, args.steps)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        others = "" if busy is None else (
            f"{max(0.0, (machine_busy_seconds() - busy - cpu) / (wall * os.cpu_count())):.0%}")
        per_step[n] = cpu / (args.runs * args.steps)
        ratio = (f"{per_step[n] / per_step[REFERENCE_MEMBERS]:.2f}"
                 if REFERENCE_MEMBERS in per_step else "")
        print(f"  {n:>4} {cpu:>8.2f} {wall:>8.2f} {per_step[n] * 1e6:>12.2f} {ratio:>7} "
              f"{per_step[n] * SWEEP_RUNS * SWEEP_STEPS:>20.1f} {others:>7}")
    if REFERENCE_MEMBERS in per_step and most in per_step:
        growth = per_step[most] / per_step[REFERENCE_MEMBERS]
        verdict = "met" if growth <= GROWTH_TARGET else "NOT met"
        print(f"  target: n = {most} within {GROWTH_TARGET:g}x of n = {REFERENCE_MEMBERS}"
              f"   {verdict}  {growth:.2f}x (CPU-seconds per run-step)")


if __name__ == "__main__":
    main()
