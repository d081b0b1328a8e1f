"""`stats` and `show` list every stage folder of a run, registered or not, and the report package stays
split into small modules."""
import json
import re
from pathlib import Path

from click.testing import CliRunner

from selfinstruct.cli import main
from selfinstruct.io.shards import StageStore

REPORT_DIR = Path(__file__).resolve().parents[1] / "selfinstruct" / "report"
MAX_MODULE_LINES = 400


def _stage(run: Path, name: str, rows, rejects=(), counts=None, extra=None) -> None:
    store = StageStore(run, name, f"h-{name}")
    store.commit(list(rows), list(rejects), counts=counts or {})
    store.finish(extra)


def _run_with_unregistered_stages(root: Path) -> Path:
    """bootstrap, then two stages this installation does not register ("judge" of a plugin, say)."""
    run = root / "run"
    _stage(run, "bootstrap", [{"id": f"b{i}", "instruction": f"Write a poem about the number {i}."}
                              for i in range(3)], counts={"kept": 3}, extra={"reached": True})  # as a generator's
    _stage(run, "zz_judge", [{"id": "b0", "instruction": "Write a poem about the number 0.", "score": 4},
                             {"id": "b2", "instruction": "Write a poem about the number 2.", "score": 5}],
           [{"id": "b1", "instruction": "Write a poem about the number 1.", "reason": "low_score"}],
           counts={"reject:low_score": 1, "kept": 2})
    _stage(run, "aa_extra", [{"id": "b0", "instruction": "Write a poem about the number 0."}],
           counts={"kept": 1})
    return run


def test_unregistered_stage_listed_by_stats_and_paged_by_show(tmp_path):
    run = _run_with_unregistered_stages(tmp_path)
    cli = CliRunner()

    r = cli.invoke(main, ["stats", str(run), "--no-plots"])
    assert r.exit_code == 0, r.output
    rows = re.findall(r"^(\w+)\s+complete\s+(\d+)\s+(\d+)\s+(\d+)", r.output, re.M)
    # no run.json: the generator first (its manifest says so), then the others by name
    assert rows == [("bootstrap", "3", "3", "0"), ("aa_extra", "1", "1", "0"), ("zz_judge", "3", "2", "1")]
    assert re.search(r"^zz_judge\s+record\s+low_score\s+1\s+33\.3%$", r.output, re.M)
    assert re.search(r"^zz_judge/low_score\s+b1\s+Write a poem about the number 1\.$", r.output, re.M)

    r = cli.invoke(main, ["show", str(run)])
    assert r.exit_code == 2
    assert "pick one of: bootstrap, aa_extra, zz_judge" in r.output

    r = cli.invoke(main, ["show", str(run / "zz_judge"), "-n", "1"])
    assert r.exit_code == 0, r.output
    assert re.findall(r"^#(\d+)\s+(\S+)", r.output, re.M) == [("1", "b0")]
    assert "records 1-1 of 2" in r.output and "--offset 1" in r.output
    r = cli.invoke(main, ["show", str(run / "zz_judge"), "--offset", "1", "--json"])
    assert [json.loads(line)["score"] for line in r.stdout.splitlines()] == [5]
    r = cli.invoke(main, ["show", str(run / "zz_judge"), "--reason", "low_score"])
    assert r.exit_code == 0, r.output
    assert re.search(r"^#1\s+b1\s+reason=low_score", r.output, re.M)
    r = cli.invoke(main, ["show", str(run / "zz_judge"), "--reason", "nope"])
    assert r.exit_code == 2 and "available: low_score (1)" in r.output


def test_report_modules_are_small_and_only_plots_imports_matplotlib():
    modules = sorted(REPORT_DIR.glob("*.py"))
    assert modules
    for path in modules:
        text = path.read_text()
        assert len(text.splitlines()) < MAX_MODULE_LINES, path.name
        if path.name != "plots.py":
            assert not re.search(r"^\s*(import|from)\s+matplotlib", text, re.M), path.name
        # manifest counts are parsed by io.records.Counts only
        assert not re.search(r"""["'](reject|instance|note):["']""", text), path.name
