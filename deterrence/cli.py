"""Command line: ``deterrence formats``, ``deterrence solve``.

Exit codes: 0 success, 2 bad input (message on stderr, no traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .api import solve_formats
from .config import FORMATS_DIR, ConfigError, load_catalogue

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Compare security-guarantee formats for Ukraine.")
out = Console()
err = Console(stderr=True)

FormatsDir = Annotated[Path, typer.Option("--formats-dir", help="Folder of format files.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output (docs/cli.md).")]


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@app.command()
def formats(as_json: JsonFlag = False, formats_dir: FormatsDir = FORMATS_DIR) -> None:
    """List the format catalogue."""
    try:
        catalogue = load_catalogue(formats_dir)
    except ConfigError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps([{"id": f.id, "name": f.name, "description": f.description,
                           "members": f.members} for f in catalogue.values()], indent=2))
        return
    table = Table("id", "name", "what it commits", box=None, header_style="bold")
    for f in catalogue.values():
        table.add_row(f.id, f.name, f.description)
    out.print(table)


@app.command()
def solve(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML).")],
    format_ids: Annotated[list[str] | None, typer.Option(
        "--format", "-f", help="Format id; repeat for several (default: all).")] = None,
    rationality: Annotated[float | None, typer.Option(
        help="Logit precision for the QRE (default: the scenario's).")] = None,
    brief: Annotated[bool, typer.Option(
        "--brief", help="One line per format instead of every equilibrium.")] = False,
    as_json: JsonFlag = False,
    formats_dir: FormatsDir = FORMATS_DIR,
) -> None:
    """Solve the crisis game exactly under each format: equilibria, regime, stability."""
    try:
        results = solve_formats(scenario, format_ids, rationality, formats_dir)
    except ConfigError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps({"scenario": str(scenario),
                          "formats": [r.to_dict() for r in results]}, indent=2))
        return
    if brief:
        _print_brief(results)
        return
    for r in results:
        out.print(f"\n[bold]{r.format_name}[/] ({r.format_id}): regime [bold]{r.regime}[/]"
                  f"; members {', '.join(r.members) or 'none'}", highlight=False)
        table = Table("", *(e.kind for e in r.equilibria), box=None, header_style="bold")
        rows = {
            "P(escalate)": [f"{e.escalate_probability:.3f}" for e in r.equilibria],
            "P(Russia succeeds | escalation)": [
                f"{e.russia_success_probability:.3f}" for e in r.equilibria],
            "regime": [e.regime for e in r.equilibria],
            "stability": [e.stability for e in r.equilibria],
            "  largest Re(eigenvalue)": [f"{e.max_real_eigenvalue:+.3g}" for e in r.equilibria],
            "  under dynamics": [e.dynamics for e in r.equilibria],
        }
        for member in r.members:
            rows[f"P(deter) {member}"] = [f"{e.deter_probability[member]:.3f}"
                                          for e in r.equilibria]
        for label, cells in rows.items():
            table.add_row(label, *cells)
        out.print(table)


def _print_brief(results) -> None:
    table = Table("format", "regime", "SPE: P(escalate)", "SPE stability", "QRE: P(escalate)",
                  "QRE: P(success | esc.)", box=None, header_style="bold")
    for r in results:
        spe = [e for e in r.equilibria if "SPE" in e.kind]
        qre = next(e for e in r.equilibria if "QRE" in e.kind)
        escalate = sorted({f"{e.escalate_probability:.2f}" for e in spe})
        stability = sorted({e.stability for e in spe})
        table.add_row(r.format_id, r.regime, " / ".join(escalate), " / ".join(stability),
                      f"{qre.escalate_probability:.3f}", f"{qre.russia_success_probability:.3f}")
    out.print(table)
    out.print("SPE: subgame-perfect equilibria (stability under replicator learning with "
              "readiness costs); QRE: logit equilibrium at the scenario's rationality. "
              "See docs/model.md.", style="dim")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
