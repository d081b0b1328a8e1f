"""The export folder is a Hugging Face dataset repository: Parquet copies hold the same rows as the
JSONL/JSON files, and the card (next) is the user's to edit (runs on the fake backend)."""
import hashlib
import json
import re
from pathlib import Path

import pytest

from selfinstruct.backends.fake import FakeBackend
from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.io.errors import UserError
from selfinstruct.io.shards import StageStore

from .conftest import PROJECT_SEEDS

pytestmark = pytest.mark.timeout(180)
FORMAT_COLUMNS = {"messages": ["id", "messages"], "prompt_completion": ["id", "prompt", "completion"],
                  "alpaca": ["instruction", "input", "output"]}


def config(tmp_path, text="", name="p"):
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nstages: [bootstrap, classify, instances, filter, export]\n"
                 "bootstrap: {num_instructions: 24, requests_per_round: 4}\n" + text)
    return load_config(p)


def run(tmp_path, text="", name="run", **kw):
    out = tmp_path / name
    run_pipeline(config(tmp_path, text), out, quiet=True, backend=FakeBackend(), **kw)
    return out


def file_rows(path: Path) -> list[dict]:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_parquet_copies_hold_the_same_rows(tmp_path):
    import pyarrow.parquet as pq

    export = run(tmp_path, "export: {eval_fraction: 0, formats: [messages, alpaca, parquet]}\n") / "export"
    for name, ext in (("messages", "jsonl"), ("alpaca", "json")):
        table = pq.read_table(export / f"train.{name}.parquet")
        assert table.num_rows and table.to_pylist() == file_rows(export / f"train.{name}.{ext}")
        empty = pq.read_table(export / f"eval.{name}.parquet")  # no rows, and still its columns
        assert empty.num_rows == 0 and empty.column_names == FORMAT_COLUMNS[name]
    assert not (export / "train.prompt_completion.parquet").exists()


@pytest.mark.parametrize("setting, field", [("formats: [parquet]", "export.formats")])
def test_export_settings_are_checked(tmp_path, setting, field):
    with pytest.raises(UserError, match=rf"p\.yaml:4: field '{re.escape(field)}'"):
        config(tmp_path, f"export: {{{setting}}}\n")


# ----------------------------------------------------------------------------------- the store's user files

def test_user_files_are_kept_and_not_hashed(tmp_path):
    store = StageStore(tmp_path, "export", "h1", keep=("README.md",))
    (store.dir / "README.md").write_text("mine")
    (store.dir / "train.x.jsonl").write_text("{}\n")
    store = StageStore(tmp_path, "export", "h1", keep=("README.md",))  # not complete: leftovers are removed
    assert sorted(p.name for p in store.dir.iterdir()) == ["README.md", "manifest.json"]
    (store.dir / "train.x.jsonl").write_text("{}\n")
    store.finish_files(["train.x.jsonl", "README.md"], store.totals())
    assert list(store.manifest["file_sha256"]) == ["train.x.jsonl"]
    (store.dir / "README.md").write_text("edited")
    assert StageStore(tmp_path, "export", "h1", keep=("README.md",)).complete  # verified, not refused
    StageStore(tmp_path, "export", "h2", force=True, keep=("README.md",))  # another config, forced
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["README.md", "manifest.json"]
    assert (tmp_path / "export" / "README.md").read_text() == "edited"
    StageStore(tmp_path, "export", "h3", force=True)  # a store that keeps nothing removes it
    assert [p.name for p in (tmp_path / "export").iterdir()] == ["manifest.json"]


def test_run_json_records_the_seed_files_sha256(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nstages: [bootstrap]\nbootstrap: {{num_instructions: 3}}\n")
    run_pipeline(load_config(p), tmp_path / "run", quiet=True, backend=FakeBackend())
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["seed_sha256"] == hashlib.sha256(PROJECT_SEEDS.read_bytes()).hexdigest()
