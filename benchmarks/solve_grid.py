"""Benchmark the crisis game's exact solver (``deterrence.solve.equilibrium.solve_grid``).

What it measures, in one run:

1. *The baseline map.* A ``size x size`` grid (default 200 x 200) over two parameter paths
   of the scenario (default: baseline) under the format (default: nato_lite, 8 members):
   the wall and CPU seconds (``time.perf_counter``, ``time.process_time``: the process's
   CPU over all its threads) of ``solve_grid`` on ``--threads`` threads (default 2), min
   and median of ``--repeats`` runs after a warm-up on a small grid.
2. *35 members.* A synthetic scenario (labelled so in every line): the baseline's
   guarantors copied round-robin to 35, each copy's military spending and GDP multiplied
   by a log-normal factor (sd 0.3) and its stake by a uniform factor in [0.8, 1.2], drawn
   from ``--seed``. Under the same format: one cell alone (median of ``--repeats`` runs,
   at least ``ONE_CELL_REPEATS``), the per-cell time amortised over a ``--amortise x
   --amortise`` grid, and the full map.
3. *Scaling in n.* The per-cell time, amortised over the ``--amortise`` grid, for the first
   n = 2, 4, 8, 16, 35 guarantors of the synthetic scenario.
4. The first call's seconds: the compiled loops of the solver are compiled then (on a new
   installation) or loaded from their cache on disk (in every new process).
5. Machine information, the share of the CPUs that other processes used during each
   timing (from ``/proc/stat``: this machine is shared), and each target next to its
   measurement: the 8-member map <= 0.5 s, 35 members <= 1 ms for one cell, <= 0.1 ms
   per cell amortised, <= 5 s for the map.

Run from the repository root (about a minute on a 2-core machine)::

    .venv/bin/python benchmarks/solve_grid.py
    .venv/bin/python benchmarks/solve_grid.py --format coalition --size 100 \\
        --x russia.war_cost 0 1 --y 'guarantors.*.audience_cost' 0 1

Options: ``--scenario``, ``--format``, ``--x PATH LOW HIGH``, ``--y PATH LOW HIGH``,
``--size``, ``--amortise``, ``--repeats``, ``--threads``, ``--seed`` (default: the
scenario's seed).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from machine import busy_cpu_seconds, cpu_model

from deterrence.game.config import (
    SCENARIOS_DIR,
    ConfigError,
    Scenario,
    load_catalogue,
    load_scenario,
)
from deterrence.game.payoffs import build_game
from deterrence.solve.equilibrium import REGIME_NAMES, solve_grid

#: Targets (seconds).
MAP_TARGET_S = 0.5            # the size x size map with the format's members (8)
LARGE_CELL_TARGET_S = 1e-3    # one cell with 35 members
LARGE_AMORTISED_TARGET_S = 1e-4  # per cell with 35 members, over a grid
LARGE_MAP_TARGET_S = 5.0      # the map with 35 members
#: Members of the synthetic scenario and the sizes of the scaling table.
LARGE_MEMBERS = 35
SCALING = (2, 4, 8, 16, 35)
#: Fewest timed runs of the single cell: a run takes about a millisecond, and the median of
#: three would mostly time the first calls after the large map (colder caches).
ONE_CELL_REPEATS = 50
#: Spread of the synthetic copies: log-normal sd of spending and GDP, range of the stake.
SPREAD_SD, STAKE_RANGE = 0.3, (0.8, 1.2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIOS_DIR / "baseline.toml",
                        help="scenario file (default: configs/scenarios/baseline.toml)")
    parser.add_argument("--format", default="nato_lite", help="format id (default: nato_lite)")
    parser.add_argument("--x", nargs=3, metavar=("PATH", "LOW", "HIGH"),
                        default=["format.commitment_bindingness", "0", "1"],
                        help="first grid axis (default: format.commitment_bindingness 0 1)")
    parser.add_argument("--y", nargs=3, metavar=("PATH", "LOW", "HIGH"),
                        default=["russia.status_quo_value", "0", "0.6"],
                        help="second grid axis (default: russia.status_quo_value 0 0.6)")
    parser.add_argument("--size", type=int, default=200, help="points per axis (default 200)")
    parser.add_argument("--amortise", type=int, default=50,
                        help="points per axis of the grids that amortise a cell (default 50)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="solver threads (default 2)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the synthetic scenario (default: the scenario's seed)")
    args = parser.parse_args()
    for name in ("x", "y"):
        path, low, high = getattr(args, name)
        try:
            setattr(args, name, (path, float(low), float(high)))
        except ValueError:
            parser.error(f"--{name}: LOW and HIGH must be numbers, got {low!r} {high!r}")
    if args.x[0] == args.y[0]:
        parser.error("--x and --y must vary different parameter paths")
    if min(args.size, args.amortise, args.repeats, args.threads) < 1:
        parser.error("--size, --amortise, --repeats and --threads must be positive")
    args.parser = parser
    return args


def synthetic(scenario: Scenario, members: int, seed: int) -> Scenario:
    """The scenario's guarantors copied round-robin to ``members``, with perturbed figures."""
    rng = np.random.default_rng(seed)
    copies = []
    for k in range(members):
        g = scenario.guarantors[k % len(scenario.guarantors)]
        copies.append(g.model_copy(update={
            "id": f"{g.id}_{k}", "name": f"{g.name} (synthetic copy {k})",
            "military_spending_usd_bn": g.military_spending_usd_bn * rng.lognormal(0, SPREAD_SD),
            "gdp_usd_tn": g.gdp_usd_tn * rng.lognormal(0, SPREAD_SD),
            "stake_in_ukraine": min(g.stake_in_ukraine * rng.uniform(*STAKE_RANGE), 100.0)}))
    return scenario.model_copy(update={"name": f"{scenario.name} (synthetic, {members} members)",
                                       "guarantors": copies})


def first(scenario: Scenario, n: int) -> Scenario:
    return scenario.model_copy(update={"guarantors": scenario.guarantors[:n]})


class Timing:
    """Wall and CPU seconds of repeated calls (after a warm-up call if ``warm``), and the
    share of the machine's CPUs that other processes used meanwhile."""

    def __init__(self, fn, repeats: int, warm: bool = True):
        self.first = None
        if warm:
            start = time.perf_counter()
            fn()
            self.first = time.perf_counter() - start
        self.wall, self.cpu = [], []
        before, start = busy_cpu_seconds(), time.perf_counter()
        for _ in range(repeats):
            w, c = time.perf_counter(), time.process_time()
            self.result = fn()
            self.wall.append(time.perf_counter() - w)
            self.cpu.append(time.process_time() - c)
        after, span = busy_cpu_seconds(), time.perf_counter() - start
        self.others = None
        if before and after:
            used = (after[0] - before[0]) - (after[1] - before[1])
            self.others = max(used, 0.0) / (span * (os.cpu_count() or 1))

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    def line(self, label: str, target: float | None = None, per: int = 1,
             unit: str = "s") -> str:
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
        wall = f"{min(self.wall) / per * scale:10.4g}{self.median / per * scale:10.4g}"
        cpu = f"{statistics.median(self.cpu) / per * scale:10.4g}"
        goal = ""
        if target is not None:
            met = "met" if self.median / per <= target else "NOT met"
            goal = f"  target <= {target * scale:g} {unit}: {met}"
        load = f"  (others used {self.others:.0%} of the CPUs)" if self.others else ""
        return f"  {label:<44}{wall}{cpu} {unit}{goal}{load}"


def main() -> None:
    args = parse_args()
    try:
        scenario = load_scenario(args.scenario)
        catalogue = load_catalogue()
        if args.format not in catalogue:
            raise ConfigError(f"unknown format {args.format!r}; allowed: {sorted(catalogue)}")
        fmt = catalogue[args.format]
        (x_path, x_low, x_high), (y_path, y_low, y_high) = args.x, args.y

        def grid(size: int) -> dict:
            return {x_path: np.linspace(x_low, x_high, size)[:, None],
                    y_path: np.linspace(y_low, y_high, size)[None, :]}

        game = build_game(scenario, fmt, grid(args.size))
        seed = scenario.seed if args.seed is None else args.seed
        large = synthetic(scenario, LARGE_MEMBERS, seed)
        if fmt.members != "all":
            raise ConfigError(f"format {fmt.id!r} lists its members; the synthetic scenario "
                              f"needs a format whose members are 'all'")
        large_map = build_game(large, fmt, grid(args.size))
    except ConfigError as exc:
        args.parser.error(str(exc))
    threads = args.threads

    def solve(g):
        return lambda: solve_grid(g, defended_below=scenario.analysis.defended_below_russia_success,
                                  threads=threads)

    print(f"solve_grid benchmark: {scenario.name} / {fmt.id}, {threads} threads")
    print(f"  x = {x_path} in [{x_low:g}, {x_high:g}]; y = {y_path} in [{y_low:g}, {y_high:g}]")
    print(f"  machine: {platform.platform()}, {cpu_model()}, os.cpu_count() = {os.cpu_count()}")
    print(f"  Python {platform.python_version()}, numpy {np.__version__}, "
          f"numba {importlib.metadata.version('numba')}")
    # the solver's compiled loops: compiled on the first call (a new installation) or
    # loaded from their on-disk cache, in every new process
    startup = Timing(solve(build_game(scenario, fmt)), 1)
    print(f"  first call in this process (compiling or loading the kernels): "
          f"{startup.first:.3g} s")
    print(f"\n  {'':<44}{'wall min':>10}{'median':>10}{'CPU':>10}")

    # 1. the map with the format's members
    base = Timing(solve(game), args.repeats)
    regimes = np.bincount(base.result.regime, minlength=len(REGIME_NAMES))
    print(base.line(f"{args.size}x{args.size} map, n = {game.n}", MAP_TARGET_S))
    print("    regimes: " + ", ".join(f"{name} {count}" for name, count
                                      in zip(REGIME_NAMES, regimes, strict=True))
          + f"; sets complete {base.result.equilibrium_set_complete.mean():.1%}")

    # 2. 35 members (synthetic)
    single = build_game(large, fmt)
    one = Timing(solve(single), max(args.repeats, ONE_CELL_REPEATS))
    print(one.line(f"one cell, n = {LARGE_MEMBERS} (synthetic)", LARGE_CELL_TARGET_S,
                   unit="ms"))
    cells = args.amortise ** 2
    amortised = Timing(solve(build_game(large, fmt, grid(args.amortise))), args.repeats)
    print(amortised.line(f"per cell over {args.amortise}x{args.amortise}, n = {LARGE_MEMBERS} "
                         f"(synthetic)", LARGE_AMORTISED_TARGET_S, per=cells, unit="ms"))
    big = Timing(solve(large_map), 1, warm=False)  # warmed up by the grid above
    print(big.line(f"{args.size}x{args.size} map, n = {LARGE_MEMBERS} (synthetic)",
                   LARGE_MAP_TARGET_S))
    print(f"    sets complete {big.result.equilibrium_set_complete.mean():.1%}; "
          f"equilibria per cell up to {big.result.equilibrium_count.max()}")

    # 3. the cost against n
    print(f"\n  per cell over {args.amortise}x{args.amortise}, first n synthetic guarantors:")
    for n in SCALING:
        t = Timing(solve(build_game(first(large, n), fmt, grid(args.amortise))), args.repeats)
        print(t.line(f"n = {n}", per=cells, unit="ms"))


if __name__ == "__main__":
    main()
