"""`selfinstruct browse`: the SQLite copy of a run, checked through Datasette's JSON API in process against
the run's manifests; the incremental build; a run killed mid-stage; the server in a real headless browser."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.backends.fake import FakeBackend, answer, judged_answer
from selfinstruct.cli import main
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.io.errors import UserError
from selfinstruct.io.records import Counts
from selfinstruct.io.seeds import load_seed_tasks
from selfinstruct.io.shards import StageStore

from .conftest import PROJECT_SEEDS, ROOT, judged_config, stage_rows

pytest.importorskip("datasette")
pytest.importorskip("sqlite_utils")

from selfinstruct.browse import database  # noqa: E402  (the extra is there)
from selfinstruct.browse.database import build, db_name, db_path  # noqa: E402
from selfinstruct.browse.serve import app, bind, refresh  # noqa: E402

STAGES = "[bootstrap, classify, instances, filter, judge, select, export]"


def manifest(run: Path, stage: str) -> dict:
    return json.loads((run / stage / "manifest.json").read_text())


class Client:
    """Datasette's in-process client, one event loop for a module's requests."""

    def __init__(self, built):
        self.ds, self.built, self.db = app(built), built, db_name(built.run.path)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.ds.invoke_startup())

    def get(self, path: str):
        r = self.loop.run_until_complete(self.ds.client.get(f"/{self.db}/{path}"))
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        return r.json()

    def count(self, table: str, query: str = "") -> int:
        return self.get(f"{table}.json?_size=0{query}")["filtered_table_rows_count"]

    def facet(self, table: str, column: str, query: str = "") -> dict:
        res = self.get(f"{table}.json?_size=0&_facet={column}{query}")["facet_results"][column]["results"]
        return {r["value"]: r["count"] for r in res}

    def rows(self, path: str) -> list[dict]:
        sep = "&" if "?" in path else "?"
        return self.get(f"{path}{sep}_shape=array&_size=max")


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browse")
    run = tmp / "run"
    run_pipeline(judged_config(tmp, stages=STAGES, instructions=40), run, quiet=True, backend=FakeBackend(cap=4))
    built = build(run, tmp / "db" / "run.db")
    client = Client(built)
    yield run, client
    client.loop.close()


# ------------------------------------------------------------------------------------------- the JSON API

def test_each_stage_table_and_the_reject_facets_equal_the_manifests(judged_run):
    run, api = judged_run
    for stage in ("bootstrap", "classify", "instances", "filter", "judge", "select"):
        m = manifest(run, stage)
        assert api.count(stage) == sum(p["rows"] for p in m["parts"]), stage
        reasons = Counts(m["counts"]).reasons()
        assert reasons, stage  # every stage of this run dropped or noted something
        assert api.facet("rejects", "reason", f"&stage={stage}") == reasons, stage
    counts = manifest(run, "classify")["counts"]
    assert api.facet("classify", "classification") == {"yes": counts["classification"],
                                                       "no": counts["not_classification"]}
    assert api.facet("rejects", "level", "&stage=filter") == {"instance": 1}
    export = manifest(run, "export")["counts"]
    for split in ("train", "eval"):
        for fmt in ("messages", "prompt_completion", "alpaca"):
            assert api.count(f"export_{split}_{fmt}") == export[f"{split}_examples"]
    # the facets the metadata asks for, per table: a judge score where a judge stage wrote one
    scores = api.facet("judge", "judge_score")
    assert sum(scores.values()) == api.count("judge") and set(scores) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert {f["name"] for f in api.get("judge.json?_size=0")["facet_results"].values()} >= {
        "task_type", "classification", "judge_score"}
    stages = api.rows("stages.json")
    assert [s["name"] for s in stages] == ["bootstrap", "classify", "instances", "filter", "judge", "select", "export"]
    assert all(s["status"] == "complete" for s in stages)


def test_search_finds_a_known_instruction(judged_run):
    run, api = judged_run
    target = stage_rows(run, "filter")[7]
    found = api.rows(f"filter.json?_search={target['instruction'].rstrip('.')}")
    assert target["id"] in [r["id"] for r in found]
    dropped = next(r for r in stage_rows(run, "bootstrap", rejects=True) if r["reason"] == "rouge_similar")
    found = api.rows(f"rejects.json?_search={dropped['instruction'].rstrip('.')}")
    assert [(r["stage"], r["reason"]) for r in found if r["id"] == dropped["id"]] == [("bootstrap", "rouge_similar")]
    output = target["instances"][0]["output"]
    assert target["id"] in [r["id"] for r in api.rows(f"filter.json?_search={output.rstrip('.')}")]


def test_the_near_duplicate_query_returns_the_pair_rouge_l_caught(judged_run):
    run, api = judged_run
    caught = [r for r in stage_rows(run, "bootstrap", rejects=True) if r["reason"] == "rouge_similar"]
    assert caught
    seeds = {t.id: t.instruction for t in load_seed_tasks(PROJECT_SEEDS)}
    pairs = api.rows("near_duplicates.json")
    by_id = {p["id"]: p for p in pairs}
    for r in caught:
        p = by_id[r["id"]]
        assert (p["nearest_id"], p["rouge_l"], p["outcome"]) == (r["nearest"]["id"], r["nearest"]["score"],
                                                                 "dropped: rouge_similar")
        assert p["nearest_instruction"] == seeds[r["nearest"]["id"]] and p["instruction"] == r["instruction"]
    assert [p["rouge_l"] for p in pairs] == sorted((p["rouge_l"] for p in pairs), reverse=True)


def test_judged_answers_rejects_by_reason_and_one_records_path(judged_run):
    run, api = judged_run
    judged = stage_rows(run, "judge")
    scores = sorted(sum(s) / len(s) for r in judged for s in r["judge_scores"])
    assert [a["score"] for a in api.rows("lowest_judged.json")] == scores[:100]
    assert [a["score"] for a in api.rows("highest_judged.json")] == sorted(scores, reverse=True)[:100]
    lowest = api.rows("lowest_judged.json")[0]
    rec = next(r for r in judged if r["id"] == lowest["id"])
    assert rec["instances"][lowest["answer"] - 1]["output"] == lowest["output"]

    by_reason = {(r["stage"], r["reason"]): r for r in api.rows("rejects_by_reason.json")}
    m = manifest(run, "select")
    assert by_reason["select", "below_min_score"]["rejects"] == m["counts"]["reject:below_min_score"]
    first = stage_rows(run, "select", rejects=True)[0]
    assert by_reason["select", "below_min_score"]["example_id"] == first["id"]

    kept = stage_rows(run, "select")[0]
    path = api.rows(f"record_path.json?id={kept['id']}")
    assert [(p["stage"], p["outcome"]) for p in path if p["outcome"] == "kept"] == [
        (s, "kept") for s in ("bootstrap", "classify", "instances", "filter", "judge", "select")]
    exported = {p["outcome"] for p in path if p["stage"] == "export"}
    assert exported & {"exported: train.messages.jsonl", "exported: eval.messages.jsonl"}, exported
    assert json.loads(path[0]["record"])["id"] == kept["id"]


def test_the_cli_refuses_a_folder_that_is_not_a_run_in_one_line(tmp_path, judged_run):
    run, _ = judged_run
    (tmp_path / "empty").mkdir()
    for folder, said in ((tmp_path / "empty", "not a run directory"), (tmp_path / "nope", "no such run directory"),
                         (run / "filter", "is a stage directory")):
        r = CliRunner().invoke(main, ["browse", str(folder)])
        assert r.exit_code == 2, r.output
        assert r.output.count("\n") == 1 and r.output.startswith("error: ") and said in r.output, r.output
    params = {p.name: p.default for p in main.commands["browse"].params}
    assert params["host"] == "127.0.0.1" and params["port"] == 8001


def test_without_the_extra_it_says_how_to_install_it(judged_run, monkeypatch):
    run, _ = judged_run
    monkeypatch.setitem(sys.modules, "datasette", None)  # `import datasette` raises ImportError
    r = CliRunner().invoke(main, ["browse", str(run)])
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert "pip install 'selfinstruct[browse]'" in r.output


def test_it_listens_on_127_0_0_1_and_says_so_when_the_port_is_taken():
    sock = bind("127.0.0.1", 0)
    try:
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1" and port > 0
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port)
    finally:
        sock.close()


def test_show_prints_the_command_and_the_report_links_to_it(judged_run, tmp_path):
    run, _ = judged_run
    r = CliRunner().invoke(main, ["show", str(run / "filter"), "-n", "1"])
    assert r.exit_code == 0 and f"selfinstruct browse {run}" in r.output.splitlines()[-1], r.output
    r = CliRunner().invoke(main, ["show", str(run / "filter"), "-n", "1", "--json"])
    assert len(r.stdout.splitlines()) == 1 and f"selfinstruct browse {run}" in r.stderr
    from selfinstruct.report.compute import compute_report
    from selfinstruct.report.html import render_html
    page = render_html(compute_report(run), {})
    assert f"<code>selfinstruct browse {run}</code>" in page and "<a href='http://127.0.0.1:8001/'>" in page


def test_the_database_lives_in_the_cache_not_in_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFINSTRUCT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "my run").mkdir()
    path = db_path(tmp_path / "my run")
    assert path.is_relative_to(tmp_path / "cache" / "browse") and path.name == "my_run.db"
    assert db_path(tmp_path / "my run") == path and db_path(tmp_path / "other") != path


# ------------------------------------------------------------------------------- incremental, while written

def test_a_new_stage_builds_only_its_table_and_a_growing_stage_only_its_new_parts(judged_run, tmp_path):
    src, _ = judged_run
    run = shutil.copytree(src, tmp_path / "run")
    path = tmp_path / "db.db"
    first = build(run, path)
    assert first.rebuilt == ["bootstrap", "classify", "instances", "filter", "judge", "select", "export"]
    assert build(run, path).changed is False
    with sqlite3.connect(path) as c:  # a mark in every table: a table that is rebuilt loses it
        for table in ("bootstrap", "judge", "export_train_messages"):
            c.execute(f"UPDATE [{table}] SET id = 'untouched' WHERE seq = 0")
    notes = StageStore(run, "notes", "h")
    rows = stage_rows(run, "select")
    notes.commit(rows[:3], [{"id": rows[3]["id"], "reason": "off_topic", "instruction": rows[3]["instruction"]}],
                 counts={"reject:off_topic": 1})
    second = build(run, path)
    assert (second.rebuilt, second.appended) == (["notes"], [])
    assert second.unchanged == first.rebuilt
    with sqlite3.connect(path) as c:
        for table in ("bootstrap", "judge", "export_train_messages"):
            assert c.execute(f"SELECT id FROM [{table}] WHERE seq = 0").fetchone() == ("untouched",), table
        assert c.execute("SELECT count(*) FROM notes").fetchone() == (3,)
        c.execute("UPDATE notes SET id = 'untouched' WHERE seq = 0")
    # the stage commits another part, and a crash leaves a part file no manifest names: only the part shows
    notes.commit(rows[4:6], [])
    (run / "notes" / "part-00002.jsonl").write_text(json.dumps(rows[7]) + "\n")
    third = build(run, path)
    assert (third.rebuilt, third.appended) == ([], ["notes"])
    api = Client(third)
    assert api.count("notes") == 5 and api.count("rejects", "&stage=notes") == 1
    assert [r["id"] for r in api.rows("notes.json?_sort=seq")] == ["untouched"] + [r["id"] for r in rows[1:3] + rows[4:6]]
    assert api.rows("stages.json?name=notes")[0]["status"] == "in progress"
    api.loop.close()
    # the stage regenerated (another config hash): rebuilt; removed: its tables go
    shutil.rmtree(run / "notes")
    StageStore(run, "notes", "h2").commit(rows[:1], [])
    assert build(run, path).rebuilt == ["notes"]
    shutil.rmtree(run / "notes")
    gone = build(run, path)
    assert gone.removed == ["notes"] and "notes" not in sqlite3.connect(path).execute(
        "SELECT group_concat(name) FROM sqlite_master WHERE type = 'table'").fetchone()[0].split(",")


def test_a_build_killed_half_way_is_redone_for_that_stage(judged_run, tmp_path, monkeypatch):
    src, _ = judged_run
    path = tmp_path / "db.db"
    real = database._load_parts
    calls = []

    def dies(db, sd, start, table):
        calls.append(sd.name)
        if sd.name == "judge":
            db[table].insert_all([{"seq": 0, "id": "half"}], pk="seq")
            raise KeyboardInterrupt  # as a kill between two inserts would leave it
        return real(db, sd, start, table)

    monkeypatch.setattr(database, "_load_parts", dies)
    with pytest.raises(KeyboardInterrupt):
        build(src, path)
    monkeypatch.setattr(database, "_load_parts", real)
    again = build(src, path)
    assert again.unchanged == ["bootstrap", "classify", "instances", "filter"]
    assert again.rebuilt == ["judge", "select", "export"]
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT count(*) FROM judge WHERE id = 'half'").fetchone() == (0,)
        assert c.execute("SELECT count(*) FROM judge").fetchone()[0] == sum(
            p["rows"] for p in manifest(src, "judge")["parts"])


class KilledInJudge(FakeBackend):
    """The fake model, and a process that dies (as with kill -9) once the judge has answered `after` requests."""

    def __init__(self, after: int, **kw):
        super().__init__(**kw)
        self.left = after

    def answer(self, r):
        if not isinstance(r.prompt, str) and judged_answer(r.prompt[-1]["content"]) is not None:
            self.left -= 1
            if self.left < 0:
                raise SystemExit("killed")
        return answer(r)


def test_a_run_killed_mid_stage_shows_what_it_committed_then_the_rest(tmp_path):
    run, path = tmp_path / "run", tmp_path / "db.db"
    cfg = judged_config(tmp_path, stages="[bootstrap, classify, instances, filter, judge]", instructions=16)
    with pytest.raises(SystemExit):
        run_pipeline(cfg, run, quiet=True, backend=KilledInJudge(after=12, cap=4))
    m = manifest(run, "judge")
    assert not m["complete"] and m["parts"]
    committed = len(m["parts"])
    (run / "judge" / f"part-{committed:05d}.jsonl").write_text('{"id": "not committed"}\n')  # mid-commit
    built = build(run, path)
    api = Client(built)
    assert api.count("judge") == sum(p["rows"] for p in m["parts"]) and api.count("judge", "&id=not+committed") == 0
    assert api.rows("stages.json?name=judge")[0]["status"] == "in progress"
    api.loop.close()
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend(cap=4))
    done = build(run, path)
    assert (done.appended, done.rebuilt) == (["judge"], [])
    api = Client(done)
    assert api.count("judge") == sum(p["rows"] for p in manifest(run, "judge")["parts"])
    assert api.facet("rejects", "reason", "&stage=judge") == Counts(manifest(run, "judge")["counts"]).reasons()
    assert api.rows("stages.json?name=judge")[0]["status"] == "complete"
    api.loop.close()
    fresh = build(run, tmp_path / "fresh.db")  # appending gave the table a fresh build's rows and columns
    for db in (path, fresh.path):
        with sqlite3.connect(db) as c:
            rows = c.execute("SELECT * FROM judge ORDER BY seq").fetchall()
            columns = sorted(r[1] for r in c.execute("PRAGMA table_info(judge)"))
        if db == path:
            appended = (rows, columns)
    assert appended == (rows, columns)


def test_metadata_follows_a_refresh(judged_run, tmp_path):
    src, _ = judged_run
    run = shutil.copytree(src, tmp_path / "run", ignore=shutil.ignore_patterns("judge", "select", "export"))
    built = build(run, tmp_path / "db.db")
    api = Client(built)
    tables = api.loop.run_until_complete(api.ds.client.get(f"/{api.db}.json")).json()
    assert "lowest_judged" not in {q["name"] for q in tables["queries"]}
    shutil.copytree(src / "judge", run / "judge")
    refresh(api.ds, build(run, tmp_path / "db.db"))
    tables = api.loop.run_until_complete(api.ds.client.get(f"/{api.db}.json")).json()
    assert {"lowest_judged", "highest_judged", "near_duplicates", "record_path"} <= {q["name"] for q in tables["queries"]}
    assert api.count("judge") > 0
    api.loop.close()


def _checked(rid: str, types: list[str], passed: list[list[bool]]) -> dict:
    """A record as `verify` writes it: its constraints and its answers' verdicts (the first passing kept)."""
    chosen = next((k for k, p in enumerate(passed) if all(p)), None)
    return {"id": rid, "instruction": f"Write a haiku about {rid}. Follow the rules.",
            "constraints": {"base_instruction": f"Write a haiku about {rid}.", "description": "Follow the rules.",
                            "items": [{"id": t, "kwargs": {}} for t in types]},
            "instances": [{"input": "", "output": "answer"}],
            "verify": {"answers": ["a"] * len(passed), "passed": passed, "truncated": [False] * len(passed),
                       "chosen": chosen}}


def test_constraint_types_and_verified_are_facets_and_the_failing_types_a_query(tmp_path):
    run = tmp_path / "run"
    kept = [_checked("r1", ["t:a", "t:b"], [[True, False], [True, True]]), _checked("r2", ["t:a"], [[True]])]
    dropped = _checked("r3", ["t:b", "t:c"], [[False, True], [False, False]])
    StageStore(run, "verify", "h").commit(kept, [dict(dropped, reason="unverified")], counts={"reject:unverified": 1})
    api = Client(build(run, tmp_path / "db.db"))
    assert api.facet("verify", "verified") == {"yes": 2}
    res = api.get("verify.json?_size=0&_facet_array=constraint_types")["facet_results"]["constraint_types"]["results"]
    assert {r["value"]: r["count"] for r in res} == {"t:a": 2, "t:b": 1}
    assert api.facet("rejects", "verified") == {"no": 1}
    assert api.rows("verify.json?task_type=write")[0]["constraint_types"] == '["t:a", "t:b"]'
    rows = api.rows("constraint_failures.json")
    assert [(r["constraint_type"], r["answers"], r["answers_failed"], r["prompts_unverified"]) for r in rows] == [
        ("t:b", 4, 3, 1), ("t:c", 2, 1, 1), ("t:a", 3, 0, 0)]  # 75%, 50%, 0% of the answers fail
    api.loop.close()


# ---------------------------------------------------------------------------- the real server, a real browser

SCRIPT = '<script>window.pwned = 1; document.title = "pwned";</script>'


class Scripting(FakeBackend):
    """The fake model, whose instance outputs carry a <script> element for one task in four."""

    def answer(self, r):
        text = answer(r)
        if isinstance(r.prompt, str) and r.prompt.endswith("\n") and "Task: " in r.prompt \
                and zlib.crc32(r.prompt.encode()) % 4 == 0:
            text = re.sub(r"(?m)^(Output: )(.+)$", lambda m: f"{m.group(1)}{SCRIPT} {m.group(2)}", text, count=1)
        return text


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = next((b for b in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(b).exists()), None)
    if binary is None or not Path("/usr/bin/chromedriver").exists():
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/install.sh installs them "
                    "where apt-get is there: apt-get install chromium chromium-driver)")
    opts = Options()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_server_in_a_headless_browser_shows_a_script_as_text(tmp_path):
    from selenium.webdriver.common.by import By

    run = tmp_path / "run"
    run_pipeline(judged_config(tmp_path, stages=STAGES, instructions=40), run, quiet=True, backend=Scripting(cap=4))
    scripted = next(r for r in stage_rows(run, "filter") if any(SCRIPT in i["output"] for i in r["instances"]))
    env = dict(os.environ, SELFINSTRUCT_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-m", "selfinstruct.cli", "browse", str(run), "--port", "0"],
                              cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    driver = None
    try:
        said = []
        while not any("open http" in s for s in said):
            line = server.stderr.readline()
            assert line or server.poll() is None, "".join(said)
            said.append(line)
        url = re.search(r"open (http://127\.0\.0\.1:\d+/)(\S+)", "".join(said))
        assert url, said
        base, name = url.group(1), url.group(2)
        assert not any(run.rglob("*.db")) and any((tmp_path / "cache" / "browse").rglob(f"{name}.db"))
        driver = _browser()
        driver.get(f"{base}{name}/filter?id={scripted['id']}")
        body = driver.find_element(By.TAG_NAME, "body").text
        assert SCRIPT in body  # shown as text ...
        assert driver.execute_script("return window.pwned") is None and driver.title != "pwned"  # ... not run
        driver.get(f"{base}{name}/record_path?id={scripted['id']}")
        assert "filter" in driver.find_element(By.TAG_NAME, "body").text
        assert driver.execute_script("return window.pwned") is None
        driver.get(f"{base}{name}/judge")
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "judge_score" in body and "task_type" in body and "classification" in body  # the facets
        rows = sum(p["rows"] for p in manifest(run, "judge")["parts"])
        assert f"{rows} rows" in body
        shot = os.environ.get("SELFINSTRUCT_BROWSE_SCREENSHOT")  # README's docs/browse.png
        if shot:
            driver.get(f"{base}{name}/rejects")
            driver.save_screenshot(shot)
        # a stage committed while it serves shows up after the next refresh (every 5 s)
        StageStore(run, "notes", "h").commit(stage_rows(run, "select")[:2], [])
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}{name}/notes.json?_shape=array") as r:
                    assert len(json.load(r)) == 2
                break
            except urllib.error.HTTPError:
                assert time.time() < deadline, "the new stage never showed"
                time.sleep(1)
        assert server.poll() is None
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)
