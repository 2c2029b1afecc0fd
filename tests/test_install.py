"""The package works installed, outside the repository: its bundled data (formats, scenarios,
sweeps, the dashboard) is found through the package, archives go to the working directory,
optional dependencies that are missing are named with the extra that adds them.

The slow test builds the wheel, installs it in a new virtual environment in a temporary
folder and runs the command line there from another folder."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deterrence import api
from deterrence.analysis.discovery import find_box
from deterrence.game.config import ConfigError, MissingExtra, load_scenario, require_extra
from deterrence.sweep.execute import make_executor
from deterrence.sweep.spec import load_plan

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
#: What the wheel is built from (the rest of the repository is not needed).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "deterrence", "configs", "dashboard")
TINY_SWEEP = """\
name = "tiny"
scenario = "baseline"
formats = ["nato_lite", "bilateral"]
method = "grid"
replicates = 2
steps = 10

[[axes]]
path = "format.commitment_bindingness"
low = 0.0
high = 1.0
count = 4

[[axes]]
path = "russia.status_quo_value"
low = 0.1
high = 0.7
count = 3
"""


def bundled_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).with_suffix("").as_posix()
                  for p in folder.rglob("*.toml"))


# ---------------------------------------------------------------------------------------
# Bundled files by name


def test_the_package_finds_the_repositorys_configs_and_dashboard():
    assert bundled_files(api.SCENARIOS_DIR) == bundled_files(CONFIGS / "scenarios")
    assert bundled_files(api.SWEEPS_DIR) == bundled_files(CONFIGS / "sweeps")
    assert sorted(api.load_catalogue()) == sorted(p.stem for p in
                                                  (CONFIGS / "formats").glob("*.toml"))
    assert api.DASHBOARD_APP.read_text() == (ROOT / "dashboard" / "app.py").read_text()


@pytest.mark.parametrize("name", ["baseline", "baseline.toml", "us_withdrawal",
                                  "validation/baltic_efp"])
def test_a_bundled_scenario_loads_by_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no such file here
    expected = load_scenario(CONFIGS / "scenarios" / f"{name.removesuffix('.toml')}.toml")
    assert load_scenario(name) == expected


def test_a_file_of_that_name_wins_over_the_bundled_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (CONFIGS / "scenarios" / "baseline.toml").read_text()
    Path("baseline.toml").write_text(text.replace("seed = 20250801", "seed = 7"))
    assert load_scenario("baseline.toml").seed == 7
    assert load_scenario("baseline").seed == 20250801  # no file called "baseline"


def test_an_unknown_name_lists_the_bundled_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as scenario:
        load_scenario("basline")
    names = ", ".join(bundled_files(CONFIGS / "scenarios"))
    assert str(scenario.value) == (f"basline: file not found, and 'basline' is not the name "
                                   f"of a bundled scenario (bundled: {names})")
    with pytest.raises(ConfigError) as sweep:
        load_plan("quick")
    names = ", ".join(bundled_files(CONFIGS / "sweeps"))
    assert str(sweep.value) == (f"quick: file not found, and 'quick' is not the name of a "
                                f"bundled sweep (bundled: {names})")
    assert "quickstart" in names and "volunteers_dilemma" in names


def test_a_bundled_sweep_loads_by_name_and_a_sweep_file_can_name_a_bundled_scenario(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    by_path = load_plan(CONFIGS / "sweeps" / "quickstart.toml")
    assert load_plan("quickstart").to_json() == by_path.to_json()
    Path("tiny.toml").write_text(TINY_SWEEP)
    plan = load_plan("tiny.toml")
    assert plan.scenario == load_scenario(CONFIGS / "scenarios" / "baseline.toml")
    assert plan.cells == 4 * 3


def test_the_cli_runs_a_bundled_scenario_from_any_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "deterrence", "solve", "us_withdrawal",
                             "-f", "nato", "--json"], cwd=tmp_path, capture_output=True,
                            text=True, env=_with_this_package())
    assert result.returncode == 0, result.stderr
    assert [f["id"] for f in json.loads(result.stdout)["formats"]] == ["nato"]


# ---------------------------------------------------------------------------------------
# Where archives go, what they record


def test_archives_go_to_results_in_the_working_directory_unless_told(tmp_path, monkeypatch):
    monkeypatch.delenv("DETERRENCE_RESULTS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert api.results_dir() == tmp_path / "results"
    monkeypatch.setenv("DETERRENCE_RESULTS_DIR", "elsewhere")  # read at each call
    assert api.results_dir() == tmp_path / "elsewhere"
    assert api.results_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_from_its_git_work_tree_an_archive_records_the_commit():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git work tree")
    from deterrence.archive.manifest import code_version

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    code = code_version()
    assert (code["version"], code["git_commit"]) == (VERSION, head)


# ---------------------------------------------------------------------------------------
# Optional dependencies and the version


def test_a_missing_extra_is_named_in_one_line():
    with pytest.raises(MissingExtra) as missing:
        require_extra("no_such_package_here", "discovery", "scenario discovery (PRIM)")
    assert str(missing.value) == ("scenario discovery (PRIM) needs no_such_package_here, "
                                  'which is not installed: pip install "deterrence[discovery]"'
                                  " adds it")
    assert isinstance(missing.value, ConfigError)  # the faces report it as bad input


def test_without_dask_the_dask_executor_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(MissingExtra, match=r'pip install "deterrence\[dask\]"'):
        make_executor("dask")


def test_without_ema_workbench_prim_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ema_workbench", None)
    x = np.linspace(0.0, 1.0, 20)
    with pytest.raises(MissingExtra, match=r'pip install "deterrence\[discovery\]"'):
        find_box({"x": x}, x > 0.5)  # a box to find: PRIM is needed


def test_without_streamlit_the_dashboard_command_names_its_extra(tmp_path):
    code = ("import sys; sys.modules['streamlit'] = None; sys.argv = ['deterrence', "
            "'dashboard']; from deterrence.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, env=_with_this_package())
    assert result.returncode == 2
    assert " ".join(result.stderr.split()) == (
        'error: the dashboard needs streamlit, which is not installed: pip install '
        '"deterrence[dashboard]" adds it')


def test_version_comes_from_the_package_metadata():
    assert api.__version__ == VERSION
    result = subprocess.run([sys.executable, "-m", "deterrence", "--version"],
                            capture_output=True, text=True, env=_with_this_package())
    assert (result.returncode, result.stdout) == (0, f"deterrence {VERSION}\n")


def test_the_citation_and_changelog_name_the_version_and_licence_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(r'^version: "?([^"\n]+)"?$', citation, re.M).group(1) == VERSION
    assert re.search(r"^license: (\S+)$", citation, re.M).group(1) == project["license"]
    assert f"## [{VERSION}]" in (ROOT / "CHANGELOG.md").read_text()
    assert (ROOT / "LICENSE").read_text().startswith(f"{project['license']} License")


def _with_this_package() -> dict[str, str]:
    """The environment for a child Python that imports the package under test."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


# ---------------------------------------------------------------------------------------
# The wheel in a new environment


def _files(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its modification time, byte code left out (the
    wheel is installed without compiling it, so imports may add it)."""
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
            for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_the_wheel_installs_and_works_outside_the_repository(tmp_path):
    started = time.perf_counter()
    assert ROOT not in tmp_path.parents and tmp_path != ROOT
    # build from a copy, so the repository gets no build/ or egg-info folder
    source = tmp_path / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args, cwd=tmp_path, check=True):
        result = subprocess.run([str(a) for a in args], cwd=cwd, env=clean,
                                capture_output=True, text=True)
        if check:
            assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-4000:])
        return result

    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "-w", tmp_path / "dist", source)
    (wheel,) = (tmp_path / "dist").glob("deterrence-*.whl")
    assert wheel.name.startswith(f"deterrence-{VERSION}-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    expected = {f"deterrence/configs/{p.relative_to(CONFIGS).as_posix()}"
                for p in CONFIGS.rglob("*.toml")}
    expected |= {"deterrence/dashboard/app.py", "deterrence/py.typed",
                 f"deterrence-{VERSION}.dist-info/licenses/LICENSE"}
    assert expected <= names, sorted(expected - names)
    built = time.perf_counter()

    # the environment lies in a git work tree with a commit of its own, which an installed
    # package must not take for its own
    run("git", "init", "--quiet", tmp_path)
    run("git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit",
        "--quiet", "--allow-empty", "-m", "unrelated")
    env_dir = tmp_path / "env"
    run(sys.executable, "-m", "venv", env_dir)
    python, deterrence = env_dir / "bin" / "python", env_dir / "bin" / "deterrence"
    # without byte-compiling: it would double the time of the install
    run(python, "-m", "pip", "install", "--quiet", "--no-compile", f"{wheel}[dashboard]")
    installed = time.perf_counter()
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
                .stdout.strip())
    before = _files(site)

    work = tmp_path / "work"
    work.mkdir()
    assert run(deterrence, "--version", cwd=work).stdout == f"deterrence {VERSION}\n"
    catalogue = json.loads(run(deterrence, "formats", "--json", cwd=work).stdout)
    assert sorted(f["id"] for f in catalogue) == sorted(
        p.stem for p in (CONFIGS / "formats").glob("*.toml"))
    solved = json.loads(run(deterrence, "solve", "baseline", "--json", cwd=work).stdout)
    assert [f["id"] for f in solved["formats"]] == [f["id"] for f in catalogue]
    assert run(deterrence, "solve", "basline", cwd=work, check=False).returncode == 2

    (work / "tiny.toml").write_text(TINY_SWEEP)
    swept = run(deterrence, "sweep", "tiny.toml", cwd=work)
    (archive,) = [p for p in (work / "results").iterdir() if p.name.startswith("tiny-")
                  and (p / "manifest.json").is_file()]
    assert f"archive:{archive}" in "".join(swept.stdout.split())  # wrapped at 80 columns
    manifest = json.loads((archive / "manifest.json").read_text())
    assert (manifest["code"]["version"], manifest["code"]["git_commit"]) == (VERSION, None)
    # ema_workbench is not installed ([dashboard] only): the report says how to add it
    report = (work / "results" / f"{archive.name}.report" / "index.html").read_text()
    assert 'pip install "deterrence[discovery]" adds it' in html.unescape(report)
    run(deterrence, "verify", archive, cwd=work)

    assert "--port" in run(deterrence, "dashboard", "--help", cwd=work).stdout
    locate_app = "from deterrence import api; print(api.DASHBOARD_APP)"
    app = Path(run(python, "-c", locate_app, cwd=work).stdout.strip())
    assert site in app.parents
    assert app.read_text() == (ROOT / "dashboard" / "app.py").read_text()
    assert _files(site) == before, "something was written into site-packages"
    commands = time.perf_counter()

    # the same environment with an editable install of the copy (as `make` does): the
    # package data is the copy's own configs/ and dashboard/
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", source)
    catalogue = json.loads(run(deterrence, "formats", "--json", cwd=work).stdout)
    assert sorted(f["id"] for f in catalogue) == sorted(
        p.stem for p in (CONFIGS / "formats").glob("*.toml"))
    app = Path(run(python, "-c", locate_app, cwd=work).stdout.strip())
    assert app == source / "deterrence" / "dashboard" / "app.py"
    assert run(deterrence, "solve", "validation/baltic_efp", "-f", "nato", cwd=work).stdout
    print(f"wheel built in {built - started:.1f} s, installed in {installed - built:.1f} s, "
          f"commands run in {commands - installed:.1f} s, editable install and its checks "
          f"{time.perf_counter() - commands:.1f} s")
