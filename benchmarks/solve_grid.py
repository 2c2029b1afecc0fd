"""Benchmark the exact grid solver against pygambit on the same crisis games.

What it measures, in one run:

1. ``deterrence.game.payoffs.build_game`` and ``deterrence.solve.equilibrium.solve_grid`` on a
   ``size x size`` grid over two parameter paths of one scenario and format: min and median
   wall time (``time.perf_counter``) over ``--repeats`` runs after one warm-up, with the
   solver's default thread count and with ``threads=1`` (the two are interleaved so that
   drift in machine load affects both alike). Peak memory of one more grid solve is taken
   with ``tracemalloc`` (bytes allocated during the solve) and the process's max RSS.
2. ``pygambit.nash.enumpure_solve`` on a seeded random sample of the same cells: each cell's
   guarantors' subgame (``guarantor_table(crisis_tables(game.take([cell])))[0]``) becomes a
   pygambit ``StrategicGame`` (build time reported separately, not in the solve time), is
   solved ``--repeats`` times after one warm-up, and its pure equilibria are checked against
   ``deterrence.solve.equilibrium.pure_equilibria`` on the same cell.
3. A summary: cells, guarantors, time per game for both, the speed ratio
   (pygambit / ours, from the medians; ours solves the whole subgame-perfect equilibrium,
   regime and stability, pygambit only enumerates pure equilibria), and whether the targets
   are met: grid solve <= 0.5 s on a 2-core machine and speed ratio >= 1000.

Run from the repository root (takes well under two minutes)::

    .venv/bin/python benchmarks/solve_grid.py
    .venv/bin/python benchmarks/solve_grid.py --format coalition --size 100 \\
        --x russia.war_cost 0 1 --y 'guarantors.*.audience_cost' 0 1

Options: ``--scenario``, ``--format``, ``--x PATH LOW HIGH``, ``--y PATH LOW HIGH``,
``--size``, ``--repeats``, ``--sample``, ``--seed`` (default: the scenario's seed).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pygambit as gbt
from machine import busy_cpu_seconds, timed

from deterrence.game.config import SCENARIOS_DIR, ConfigError, load_catalogue, load_scenario
from deterrence.game.payoffs import build_game
from deterrence.solve.equilibrium import (
    CHUNK_CELLS,
    REGIME_NAMES,
    crisis_tables,
    guarantor_table,
    pure_equilibria,
    solve_grid,
)

GRID_TARGET_S = 0.5
RATIO_TARGET = 1000.0


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
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--sample", type=int, default=20,
                        help="cells solved with pygambit (default 20)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the cell sample (default: the scenario's seed)")
    args = parser.parse_args()
    for name in ("x", "y"):
        path, low, high = getattr(args, name)
        try:
            setattr(args, name, (path, float(low), float(high)))
        except ValueError:
            parser.error(f"--{name}: LOW and HIGH must be numbers, got {low!r} {high!r}")
    if args.x[0] == args.y[0]:
        parser.error("--x and --y must vary different parameter paths")
    if args.size < 1 or args.repeats < 1 or args.sample < 1:
        parser.error("--size, --repeats and --sample must be positive")
    args.parser = parser
    return args


def to_pygambit(table: np.ndarray) -> gbt.StrategicGame:
    """A (2**n, n) binary-game table as a pygambit game; strategy "2" = action 1.

    Profile k gives player i the action (k >> i) & 1, so in Fortran order axis i is bit i.
    """
    n = table.shape[1]
    return gbt.StrategicGame.from_arrays(
        *(table[:, i].reshape((2,) * n, order="F") for i in range(n)))


def pygambit_profiles(game: gbt.StrategicGame, result) -> set[int]:
    """Profile indices (bit i = player i honours) of pygambit's pure equilibria."""
    players = list(game.players)
    found = set()
    for eq in result.equilibria:
        found.add(sum(int(eq[p]["2"] == 1) << i for i, p in enumerate(players)))
    return found


def main() -> None:
    args = parse_args()
    try:
        scenario = load_scenario(args.scenario)
        catalogue = load_catalogue()
        if args.format not in catalogue:
            raise ConfigError(f"unknown format {args.format!r}; allowed: {sorted(catalogue)}")
        fmt = catalogue[args.format]
        (x_path, x_low, x_high), (y_path, y_low, y_high) = args.x, args.y
        xs = np.linspace(x_low, x_high, args.size)
        ys = np.linspace(y_low, y_high, args.size)
        overrides = {x_path: xs[:, None], y_path: ys[None, :]}
        game = build_game(scenario, fmt, overrides)
    except ConfigError as exc:
        args.parser.error(str(exc))
    if game.n == 0:
        args.parser.error(f"format {fmt.id!r} has no guarantors: there is no subgame to compare")
    threshold = scenario.analysis.defended_below_russia_success
    cells, n = game.cells, game.n
    default_threads = min(-(-cells // CHUNK_CELLS), os.cpu_count() or 1)

    # 1. the grid: build, then solve with default threads and with one (interleaved)
    build_times = timed(lambda: build_game(scenario, fmt, overrides), args.repeats)
    solution = solve_grid(game, defended_below=threshold)                # warm-up
    solve_grid(game, defended_below=threshold, threads=1)                # warm-up
    solve_times: dict[str, list[float]] = {"default": [], "one": []}
    cpu_before, wall_before = busy_cpu_seconds(), time.perf_counter()
    for _ in range(args.repeats):
        for key, threads in (("default", None), ("one", 1)):
            start = time.perf_counter()
            solve_grid(game, defended_below=threshold, threads=threads)
            solve_times[key].append(time.perf_counter() - start)
    cpu_after, wall = busy_cpu_seconds(), time.perf_counter() - wall_before
    others = None  # share of the machine's CPUs used by other processes during the timing
    if cpu_before and cpu_after:
        used = (cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1])
        others = max(used, 0.0) / (wall * (os.cpu_count() or 1))
    tracemalloc.start()
    solve_grid(game, defended_below=threshold)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    # 2. pygambit on a sample of the same cells
    seed = scenario.seed if args.seed is None else args.seed
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(cells, size=min(args.sample, cells), replace=False))
    games, ours, gbt_build = [], [], 0.0
    for cell in sample:
        tables = crisis_tables(game.take([cell]))
        payoff = guarantor_table(tables)[0]
        ours.append(set(np.flatnonzero(pure_equilibria(tables)[0]).tolist()))
        start = time.perf_counter()
        games.append(to_pygambit(payoff))
        gbt_build += time.perf_counter() - start
    results = [gbt.nash.enumpure_solve(g) for g in games]                # warm-up
    agree = sum(pygambit_profiles(g, r) == o for g, r, o in zip(games, results, ours,
                                                                strict=True))
    gbt_times = timed(lambda: [gbt.nash.enumpure_solve(g) for g in games], args.repeats)

    # 3. report
    k = len(sample)
    med = statistics.median
    grid_s = med(solve_times["default"])
    ours_per_game = grid_s / cells
    ours_one_per_game = med(solve_times["one"]) / cells
    gbt_per_game = med(gbt_times) / k
    ratio = gbt_per_game / ours_per_game
    # what solving one cell with pygambit costs a user: build the game from the payoffs,
    # then enumerate (our time per game includes building our tables)
    gbt_full_per_game = gbt_per_game + gbt_build / len(sample)
    full_ratio = gbt_full_per_game / ours_per_game
    regimes = np.bincount(solution.regime, minlength=len(REGIME_NAMES))

    def row(label: str, value: str, note: str = "") -> None:
        print(f"  {label:<38}{value:>12}  {note}".rstrip())

    def stats(label: str, times: list[float], scale: float = 1.0, unit: str = "s") -> None:
        lo, mid = min(times) * scale, med(times) * scale
        print(f"  {label:<38}{lo:>12.4g}{mid:>12.4g}  {unit}")

    print(f"solve_grid benchmark: {scenario.name} / {fmt.id}, {args.size} x {args.size} grid")
    print(f"  x = {x_path} in [{x_low:g}, {x_high:g}]; y = {y_path} in [{y_low:g}, {y_high:g}]")
    print(f"  machine: {platform.platform()}, os.cpu_count() = {os.cpu_count()}")
    print(f"  Python {platform.python_version()}, numpy {np.__version__}, pygambit "
          f"{gbt.__version__}")
    if others is not None:
        print(f"  other processes used {others:.0%} of the CPUs during the grid timing"
              + ("; timings may be inflated" if others > 0.05 else ""))
    print("  regimes: " + ", ".join(f"{name} {count}" for name, count
                                      in zip(REGIME_NAMES, regimes, strict=True)))
    print(f"\n  {'timing (' + str(args.repeats) + ' repeats)':<38}{'min':>12}{'median':>12}")
    stats("build_game", build_times)
    stats(f"solve_grid, default ({default_threads} threads)", solve_times["default"])
    stats("solve_grid, threads=1", solve_times["one"])
    stats(f"pygambit enumpure, per game ({k} games)", gbt_times, 1e6 / k, "us")
    print(f"  {'pygambit from_arrays, per game':<38}{gbt_build / k * 1e6:>24.4g}  us "
          f"(not in the solve time)")
    print()
    row("grid cells", f"{cells}")
    row("guarantors n", f"{n}", f"({2 ** n} response profiles)")
    row("grid solve time (median)", f"{grid_s:.3f}", "s")
    row("ours per game", f"{ours_per_game * 1e6:.3g}",
        f"us (threads=1: {ours_one_per_game * 1e6:.3g} us)")
    row("pygambit per game", f"{gbt_per_game * 1e6:.3g}", "us")
    row("speed ratio pygambit / ours", f"{ratio:.3g}",
        f"enumpure only (threads=1: {gbt_per_game / ours_one_per_game:.3g})")
    row("  with pygambit's game construction", f"{full_ratio:.3g}",
        f"build + enumpure (threads=1: {gbt_full_per_game / ours_one_per_game:.3g})")
    row("peak memory of grid solve", f"{traced_peak / 2 ** 20:.1f}",
        f"MiB traced; process max RSS {max_rss_mb:.0f} MiB")
    row("pure equilibria agree", f"{agree}/{k}", f"sampled cells (seed {seed})")
    row(f"target grid <= {GRID_TARGET_S:g} s", "met" if grid_s <= GRID_TARGET_S else "NOT met",
        "" if args.size == 200 else "(the target is set for 200 x 200)")
    row(f"target ratio >= {RATIO_TARGET:g}", "met" if ratio >= RATIO_TARGET else "NOT met",
        "enumpure only")
    row(f"target ratio >= {RATIO_TARGET:g}", "met" if full_ratio >= RATIO_TARGET else "NOT met",
        "build + enumpure")


if __name__ == "__main__":
    main()
