"""The export folder is a Hugging Face dataset repository: `datasets.load_dataset(folder, CONFIG)` loads
every config and split (offline), the card's metadata parses and names the files, Parquet copies hold
the same rows, a preference export's files get their config, the card describes the run, and hand edits
to the card survive a re-export (runs on the fake backend)."""
import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from selfinstruct.backends.fake import FakeBackend
from selfinstruct.cli import main
from selfinstruct.generate.config import load_config
from selfinstruct.io.hashing import stable_hash
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.hub.card import BEGIN, END, check_card
from selfinstruct.hub.configs import DataConfig, DataFile, DataLayout, dataset_configs, size_category
from selfinstruct.io.errors import UserError
from selfinstruct.io.shards import StageStore, verify_run

from .conftest import JUDGED, PROJECT_SEEDS, judged_config, stage_rows, write_jsonl

pytestmark = pytest.mark.timeout(180)
FORMAT_COLUMNS = {"messages": ["id", "messages"], "prompt_completion": ["id", "prompt", "completion"],
                  "alpaca": ["instruction", "input", "output"]}


@pytest.fixture
def load(tmp_path, monkeypatch):
    """datasets.load_dataset, offline, with its caches under tmp_path (nothing in ~/.cache)."""
    for var, value in (("HF_HOME", tmp_path / "hf"), ("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1")):
        monkeypatch.setenv(var, str(value))
    import datasets

    datasets.disable_progress_bars()
    return lambda folder, config=None: datasets.load_dataset(str(folder), config, cache_dir=str(tmp_path / "cache"))


def config(tmp_path, text="", name="p"):
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nstages: [bootstrap, classify, instances, filter, export]\n"
                 "bootstrap: {num_instructions: 24, requests_per_round: 4}\n" + text)
    return load_config(p)


def run(tmp_path, text="", name="run", **kw):
    out = tmp_path / name
    run_pipeline(config(tmp_path, text), out, quiet=True, backend=FakeBackend(), **kw)
    return out


def card(export: Path) -> tuple[dict, str]:
    """(the card's YAML metadata, its markdown), split as `datasets` splits a README."""
    text = (export / "README.md").read_text()
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def file_rows(path: Path) -> list[dict]:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# ------------------------------------------------------------------------------------------- loading

@pytest.mark.parametrize("parquet", [False, True])
def test_every_config_and_split_loads_with_its_columns_and_rows(tmp_path, load, parquet):
    out = run(tmp_path, "export: {formats: [messages, prompt_completion, alpaca, parquet]}\n" if parquet else "")
    export = out / "export"
    meta, _ = card(export)
    ext = {"messages": "jsonl", "prompt_completion": "jsonl", "alpaca": "json"}
    assert [c["config_name"] for c in meta["configs"]] == list(FORMAT_COLUMNS)
    assert [c.get("default", False) for c in meta["configs"]] == [True, False, False]
    for c in meta["configs"]:
        name = c["config_name"]
        assert c["data_files"] == [{"split": s, "path": f"{s}.{name}.{'parquet' if parquet else ext[name]}"}
                                   for s in ("train", "eval")]
        ds = load(export, name)
        assert sorted(ds) == ["eval", "train"]
        for split in ("train", "eval"):
            want = file_rows(export / f"{split}.{name}.{ext[name]}")  # the JSONL/JSON file, Parquet or not
            assert want and ds[split].column_names == FORMAT_COLUMNS[name]
            assert ds[split].num_rows == len(want) and ds[split].to_list() == want
    default = load(export)  # no config name: the default, messages
    assert default["train"].column_names == FORMAT_COLUMNS["messages"]
    assert meta["language"] == ["en"] and meta["task_categories"] == ["text-generation"]
    assert meta["tags"] == ["synthetic", "self-instruct"] and meta["size_categories"] == ["n<1K"]
    assert "license" not in meta
    files = json.loads((export / "manifest.json").read_text())["files"]
    assert ("train.alpaca.parquet" in files) == parquet and "README.md" in files
    assert not any(verify_run(out).values())


def test_an_empty_eval_split_is_left_out_of_the_configs(tmp_path, load):
    export = run(tmp_path, "export: {eval_fraction: 0}\n") / "export"
    assert (export / "eval.messages.jsonl").read_text() == ""  # still written, as before
    meta, body = card(export)
    for c in meta["configs"]:
        assert [f["split"] for f in c["data_files"]] == ["train"]
        assert list(load(export, c["config_name"])) == ["train"]
    assert "`eval.alpaca.json` (no rows" in body


def test_parquet_copies_hold_the_same_rows(tmp_path):
    import pyarrow.parquet as pq

    export = run(tmp_path, "export: {eval_fraction: 0, formats: [messages, alpaca, parquet]}\n") / "export"
    for name, ext in (("messages", "jsonl"), ("alpaca", "json")):
        table = pq.read_table(export / f"train.{name}.parquet")
        assert table.num_rows and table.to_pylist() == file_rows(export / f"train.{name}.{ext}")
        empty = pq.read_table(export / f"eval.{name}.parquet")  # no rows, and still its columns
        assert empty.num_rows == 0 and empty.column_names == FORMAT_COLUMNS[name]
    assert not (export / "train.prompt_completion.parquet").exists()


# ---------------------------------------------------------------------------------- configs from files

def preference_rows(n):
    return [{"prompt": [{"role": "user", "content": f"Task {i}"}], "chosen": [{"role": "assistant", "content": "good"}],
             "rejected": [{"role": "assistant", "content": "bad"}]} for i in range(n)]


def test_preference_files_get_a_config(tmp_path, load):
    """As a preference stage would: its files in its folder, then the card from the files present."""
    from selfinstruct.hub.card import CardSettings, write_card
    from selfinstruct.hub.facts import facts_of_run

    export = run(tmp_path) / "export"
    store = StageStore(export.parent, "export", json.loads((export / "manifest.json").read_text())["config_hash"])
    write_jsonl(export / "train.preference.jsonl", preference_rows(5))
    write_jsonl(export / "eval.preference.jsonl", preference_rows(2))
    layout = dataset_configs(export)
    assert [c.name for c in layout.configs] == ["messages", "prompt_completion", "alpaca", "preference"]
    pref = layout.configs[-1]
    assert not pref.default and [(f.split, f.path, f.rows) for f in pref.files] == [
        ("train", "train.preference.jsonl", 5), ("eval", "eval.preference.jsonl", 2)]
    write_card(store, facts_of_run(export.parent), CardSettings())
    meta, body = card(export)
    assert meta["configs"][-1]["config_name"] == "preference"
    ds = load(export, "preference")
    assert {k: (v.num_rows, v.column_names) for k, v in ds.items()} == {
        "train": (5, ["prompt", "chosen", "rejected"]), "eval": (2, ["prompt", "chosen", "rejected"])}
    assert "| `preference` | preference pairs" in body


def test_a_preference_only_folder_defaults_to_it(tmp_path):
    write_jsonl(tmp_path / "train.preference.jsonl", preference_rows(3))
    (tmp_path / "decontaminated.jsonl").write_text("")
    layout = dataset_configs(tmp_path)
    assert [(c.name, c.default, c.rows) for c in layout.configs] == [("preference", True, 3)]
    assert layout.file_type == "json"


def test_configs_use_one_file_type(tmp_path):
    """datasets picks one builder for all configs: Parquet only when every format has its copy."""
    write_jsonl(tmp_path / "train.messages.jsonl", [{"id": "a", "messages": []}])
    (tmp_path / "train.alpaca.json").write_text(json.dumps([{"instruction": "i", "input": "", "output": "o"}]))
    from selfinstruct.io.parquet import atomic_write_parquet

    atomic_write_parquet(tmp_path / "train.messages.parquet", [{"id": "a", "messages": []}], "messages")
    layout = dataset_configs(tmp_path)
    assert layout.file_type == "json" and [f.path for c in layout.configs for f in c.files] == [
        "train.messages.jsonl", "train.alpaca.json"]
    atomic_write_parquet(tmp_path / "eval.prompt_completion.parquet", [], "prompt_completion")  # alone, empty
    layout = dataset_configs(tmp_path)
    assert "eval.prompt_completion.parquet" in layout.left_out and len(layout.configs) == 2
    alpaca = [{"instruction": "i", "input": "", "output": "o"}]
    atomic_write_parquet(tmp_path / "train.alpaca.parquet", alpaca, "alpaca")
    (tmp_path / "eval.prompt_completion.parquet").unlink()
    layout = dataset_configs(tmp_path)
    assert layout.file_type == "parquet" and [f.path for c in layout.configs for f in c.files] == [
        "train.messages.parquet", "train.alpaca.parquet"]


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 99_999, 100_000, 10**12)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "n>1T"]


def test_the_card_is_checked_as_datasets_reads_it(tmp_path):
    layout = DataLayout([DataConfig("messages", [DataFile("train", "train.messages.jsonl", 1)], default=True),
                         DataConfig("alpaca", [DataFile("train", "train.alpaca.json", 1)], default=True)], "json")
    meta = {"configs": [c.to_metadata() for c in layout.configs]}
    with pytest.raises(UserError, match="README.md: the card's metadata does not load in datasets: .*several default"):
        check_card(f"---\n{yaml.safe_dump(meta)}---\nx\n", layout, tmp_path / "README.md")
    layout.configs[1].default = False
    check_card(f"---\n{yaml.safe_dump({'configs': [c.to_metadata() for c in layout.configs]})}---\nx\n", layout,
               tmp_path / "README.md")


# ------------------------------------------------------------------------------------------ the body

def test_the_card_describes_the_run(tmp_path):
    cfg = judged_config(tmp_path, stages=JUDGED[:-1] + ", export]", instructions=24)
    out = tmp_path / "run"
    run_pipeline(cfg, out, quiet=True, backend=FakeBackend())
    # again with one of the selected instructions as a benchmark prompt: the decontaminate stage leaves it out
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"prompt": stage_rows(out, "select")[0]["instruction"]}])
    cfg.stages = cfg.stages[:-1] + ["decontaminate", "export"]
    cfg.decontaminate.benchmarks, cfg.export.license = [str(bench)], "cc-by-4.0"
    run_pipeline(cfg, out, quiet=True, backend=FakeBackend(), force=True)
    meta, body = card(out / "export")
    info = json.loads((out / "run.json").read_text())
    assert meta["license"] == "cc-by-4.0" and "published under `cc-by-4.0`" in body
    assert f"`{PROJECT_SEEDS.name}`, sha256 `{hashlib.sha256(PROJECT_SEEDS.read_bytes()).hexdigest()}`" in body
    assert f"pipeline config sha256: `{stable_hash(info['config'])}`" in body
    export_manifest = json.loads((out / "export" / "manifest.json").read_text())
    assert f"stage hash of `export`: `{export_manifest['config_hash']}`" in body
    assert "made with selfinstruct 0.1.0" in body
    # the models, each with its stages and license
    assert ("| `embedded:smollm2-135m-instruct` | bootstrap, classify, instances, judge | fake | apache-2.0 |"
            in body)
    # every stage's rows and every drop reason, as the manifests count them
    for stage in ("bootstrap", "classify", "instances", "filter", "judge", "select", "decontaminate", "export"):
        assert f"\n| {stage} | complete |" in body
    for stage in ("bootstrap", "filter", "select", "decontaminate"):
        counts = json.loads((out / stage / "manifest.json").read_text())["counts"]
        for key, n in counts.items():
            if key.startswith("reject:"):
                assert f"| {stage} | record | {key[7:]} | {n:,} |" in body
    selection = json.loads((out / "select" / "manifest.json").read_text())["selection"]
    assert f"selection ({selection['rule']}): kept {selection['kept']:,} of {selection['of']:,}" in body
    assert "Judge settings: rubric `alpagasus`, samples `1`, aggregate `min`, structured `true`" in body
    counts = json.loads((out / "decontaminate" / "manifest.json").read_text())["counts"]
    assert counts["reject:decontaminated_rouge"] == 1
    bench_sha = hashlib.sha256(bench.read_bytes()).hexdigest()
    assert f"Checked against `bench.jsonl` (1 prompts, sha256 `{bench_sha}`)" in body
    assert (f"{counts['reject:decontaminated_rouge']:,} records left out for a ROUGE-L F1 > 0.7 with a benchmark "
            f"prompt, {counts.get('reject:decontaminated_ngram', 0):,} for a shared 13-gram") in body
    assert str(tmp_path) not in (out / "export" / "README.md").read_text()  # no local path is published


def test_the_card_of_a_finished_run_folder_is_the_one_its_export_wrote(tmp_path):
    """One function builds the facts: from what the pipeline held while the export ran, or from the run
    folder read afterwards (`facts_of_run`, for a command that writes a card for an existing run)."""
    from selfinstruct.hub.card import CardSettings, write_card
    from selfinstruct.hub.facts import facts_of_run

    cfg = judged_config(tmp_path, stages=JUDGED[:-1] + ", export]", instructions=24)
    out = tmp_path / "run"
    run_pipeline(cfg, out, quiet=True, backend=FakeBackend())
    written = (out / "export" / "README.md").read_text()
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    store = StageStore(out, "export", manifest["config_hash"], keep=("README.md",))
    (out / "export" / "README.md").unlink()  # written anew, not merged into the old one
    write_card(store, facts_of_run(out), CardSettings())
    assert (out / "export" / "README.md").read_text() == written
    with pytest.raises(UserError, match="run: no complete pairs stage"):
        facts_of_run(out, "pairs")


def test_model_licenses_from_folder_and_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from selfinstruct.hub.licenses import model_license

    folder = tmp_path / "model"
    folder.mkdir()
    assert model_license(str(folder)).license is None
    (folder / "README.md").write_text("---\nlicense: other\nlicense_name: llama3.1\nlicense_link: LICENSE\n---\n")
    assert model_license(str(folder)).text() == "other (llama3.1, LICENSE)"
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "README.md").write_text("---\nlicense: mit\n---\n")
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("abc")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    lic = model_license("org/tiny")
    assert lic.license == "mit" and "cache" in lic.source
    assert model_license("org/not-cached").license is None and model_license("gpt-4o:latest").license is None


# ------------------------------------------------------------------------------------- re-export

def test_hand_edits_survive_a_reexport(tmp_path):
    out = run(tmp_path)
    path = out / "export" / "README.md"
    meta, body = card(out / "export")
    start, stop = body.index(BEGIN), body.index(END)
    stale = "dataset_info: {splits: [{name: train, num_examples: 1}]}\n"  # as push_to_hub writes it
    edited = ("---\npretty_name: My data\nlicense: mit\n" + stale + yaml.safe_dump(meta, sort_keys=False) + "---\n"
              + "# My data\n\nWritten by hand, before.\n" + body[start:stop].replace("## Loading", "## Lost edit")
              + body[stop:] + "\nWritten by hand, after.\n")
    path.write_text(edited)
    assert not any(verify_run(out).values())  # the card is the user's: an edit is not damage
    run(tmp_path)  # resumed: the export is complete and skipped, the card is left alone
    assert path.read_text() == edited
    run(tmp_path, "export: {eval_fraction: 0.25}\n", force=True)  # the export is written again
    meta, body = card(out / "export")
    assert meta["pretty_name"] == "My data" and meta["license"] == "mit"  # keys it does not set are kept
    assert "dataset_info" not in meta  # but not the old files' split sizes
    assert "Written by hand, before." in body and body.rstrip().endswith("Written by hand, after.")
    assert "## Lost edit" not in body and "## Loading" in body
    assert body.count(BEGIN) == 1 and "# default\n" not in body  # no second title
    evals = [f for c in meta["configs"] for f in c["data_files"] if f["split"] == "eval"]
    assert len(evals) == 3 and "eval split: 25% of the instructions" in body  # the new export's
    run(tmp_path, "export: {eval_fraction: 0.25, license: cc-by-4.0}\n", force=True)
    assert card(out / "export")[0]["license"] == "cc-by-4.0"  # a configured license wins


def test_a_card_without_markers_keeps_its_text_and_gets_the_section(tmp_path):
    out = run(tmp_path)
    path = out / "export" / "README.md"
    path.write_text("Just my notes.\n")
    run(tmp_path, "export: {eval_fraction: 0.2}\n", force=True)
    meta, body = card(out / "export")
    assert meta["configs"] and body.startswith("Just my notes.\n\n" + BEGIN)


@pytest.mark.parametrize("text, why", [
    (f"{BEGIN}\nnotes\n", "the markers of the generated section are damaged"),
    (f"{END}\nx\n{BEGIN}\n", "the markers of the generated section are damaged"),
    ("---\nlicense: [unclosed\n---\nx\n", "its YAML metadata cannot be read"),
])
def test_a_damaged_card_is_one_line_exit_2(tmp_path, text, why):
    out = run(tmp_path)
    (out / "export" / "README.md").write_text(text)
    p = tmp_path / "p.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nbackend: fake\n"
                 "bootstrap: {num_instructions: 24, requests_per_round: 4}\nexport: {eval_fraction: 0.2}\n")
    r = CliRunner().invoke(main, ["generate", "-c", str(p), "-o", str(out), "--force", "-q"])
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith(f"error: {out / 'export' / 'README.md'}: ") and why in line


@pytest.mark.parametrize("setting, field", [
    (f"export: {{system_prompt: 'Answer. {END} Then stop.'}}", "export.system_prompt"),
    (f"name: '{BEGIN}'", "name"),
    (f"model: 'org/model{END}'", "model"),
])
def test_settings_the_card_quotes_cannot_hold_its_markers(tmp_path, setting, field):
    """The card quotes the system prompt, the name, the models: a marker among them used to be written
    into the card, and the next export failed on "markers damaged". Refused before anything runs."""
    p = tmp_path / "p.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nbackend: fake\nbootstrap: {{num_instructions: 8}}\n{setting}\n")
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["generate", "-c", str(p), "-o", str(out), "-q"])
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: {p}:4: field '{field}': must not contain ") and r.output.count("\n") == 1
    assert not out.exists()


def test_a_marker_in_anything_else_the_card_quotes_is_one_line(tmp_path):
    from selfinstruct.hub.card import merge_body

    path = tmp_path / "README.md"
    with pytest.raises(UserError, match=r"README\.md: a value the card quotes contains its marker"):
        merge_body(None, f"| model | other ({END}) |", "run", path)
    with pytest.raises(UserError, match="contains its marker"):
        merge_body(f"{BEGIN}\nold\n{END}\n", "new", f"a {BEGIN}", path)


@pytest.mark.parametrize("setting, field", [("license: Apache 2.0", "export.license"),
                                            ("language: [english]", "export.language[0]"),
                                            ("formats: [parquet]", "export.formats")])
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
