"""The select stage (by judge score, and the longest / random baselines): exactly the expected records,
the same selection however the run was sharded or finished, selection metadata on every record; and
the teacher pipeline's mechanics: a model per stage, each fingerprinted, baselines redone alone."""
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from selfinstruct.backends import register_backend
from selfinstruct.backends.fake import FakeBackend, FakeOptions
from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.generate.stages.select import answer_length
from selfinstruct.io.errors import UserError
from selfinstruct.io.records import Record
from selfinstruct.report.compute import compute_report

from .conftest import JUDGED, PROJECT_SEEDS, ROOT, judged_config, stage_rows as rows

pytestmark = pytest.mark.timeout(180)


def config(tmp_path, select, judge="", stages=JUDGED, name="p"):
    return judged_config(tmp_path, select=select, judge=f"batch_size: 5, {judge}", stages=stages, instructions=48,
                         name=name)


def selected(tmp_path, select, judge="", backend=None, name="run"):
    run = tmp_path / name
    run_pipeline(config(tmp_path, select, judge, name=name), run, quiet=True, backend=backend or FakeBackend())
    return run, [r["id"] for r in rows(run, "select")]


def test_top_k_and_top_fraction_by_score(tmp_path):
    run, kept = selected(tmp_path, "min_score: null, k: 10")
    judged = {r["id"]: r["judge_score"] for r in rows(run, "judge")}
    dropped = [r["id"] for r in rows(run, "select", rejects=True)]
    assert len(kept) == 10 and len(dropped) == len(judged) - 10
    assert min(judged[i] for i in kept) >= max(judged[i] for i in dropped)
    assert kept == [i for i in judged if i in set(kept)]  # written in input order
    # selection metadata: the rule, a rank over all inputs, the key it ranked by
    meta = {r["id"]: r["selection"] for r in rows(run, "select") + rows(run, "select", rejects=True)}
    assert sorted(m["rank"] for m in meta.values()) == list(range(1, len(judged) + 1))
    assert {m["rule"] for m in meta.values()} == {"top 10 by judge_score"}
    assert all(meta[i]["key"] == judged[i] for i in judged) and max(meta[i]["rank"] for i in kept) == 10
    assert json.loads((run / "select" / "manifest.json").read_text())["selection"] == {
        "rule": "top 10 by judge_score", "by": "score", "of": len(judged), "kept": 10}

    frac, kept = selected(tmp_path, "min_score: 2, fraction: 0.25", name="frac")
    assert rows(frac, "select")[0]["selection"]["rule"] == "judge_score >= 2 and top 25% by judge_score"
    eligible = [i for i, s in judged.items() if s >= 2]
    assert len(kept) == min(len(eligible), math.ceil(0.25 * len(judged)))
    assert all(judged[i] >= 2 for i in kept)


def test_the_baselines_longest_and_random(tmp_path):
    run, kept = selected(tmp_path, "by: longest, k: 8")
    length = {r["id"]: answer_length(Record.from_json(r)) for r in rows(run, "judge")}
    dropped = [r["id"] for r in rows(run, "select", rejects=True)]
    assert len(kept) == 8 and min(length[i] for i in kept) >= max(length[i] for i in dropped)
    assert {r["reason"] for r in rows(run, "select", rejects=True)} == {"not_selected"}
    assert rows(run, "select")[0]["selection"]["rule"] == "top 8 by answer length"

    _, rand = selected(tmp_path, "by: random, k: 8", name="r1")
    _, again = selected(tmp_path, "by: random, k: 8", name="r2", backend=FakeBackend(order_seed=5, cap=2))
    _, other = selected(tmp_path, "by: random, k: 8, seed: 7", name="r3")
    assert len(rand) == 8 and rand == again and set(rand) != set(other)  # seeded: reproducible, and a seed matters
    report = compute_report(tmp_path / "r1").judge.selection
    assert (report.rule, report.kept) == ("random 8 (seed 42)", 8) and report.kept_mean is not None


def test_the_selection_does_not_depend_on_sharding_or_finish_order(tmp_path):
    _, a = selected(tmp_path, "min_score: 3, k: 12", name="a")
    b_run = tmp_path / "b"
    cfg = config(tmp_path, "min_score: 3, k: 12, batch_size: 3", judge="", name="b")
    cfg.judge.batch_size = 2
    run_pipeline(cfg, b_run, quiet=True, backend=FakeBackend(order_seed=9, cap=1))
    assert [r["id"] for r in rows(b_run, "select")] == a


def test_select_is_checked_when_the_config_is_loaded(tmp_path):
    for select, why in [("by: random", "by: random needs k or fraction"), ("k: 3, fraction: 0.5", "not both"),
                        ("min_score: null", "say what to keep"), ("by: longest, fraction: 0", "select.fraction")]:
        with pytest.raises(UserError, match=why):
            config(tmp_path, select)
    # the baselines need no judge; by score does
    assert config(tmp_path, "by: random, k: 3", stages="[bootstrap, classify, instances, filter, select]")
    with pytest.raises(UserError, match="'select' reads judge_score, which no earlier stage writes"):
        config(tmp_path, "k: 3", stages="[bootstrap, classify, instances, filter, select]")


# -------------------------------------------------------------------------------- the teacher pipeline

class PerModel(FakeBackend):
    """The fake backend as an in-process engine that loads a model folder: records which it opened."""
    opened: list = []

    def __init__(self, model, options, seed=0):
        super().__init__(model, options, seed)
        PerModel.opened.append(Path(model).name)


register_backend("per_model", FakeOptions, local_model=True, in_process=True)(PerModel)


def model_folder(root: Path, name: str) -> Path:
    p = root / name
    p.mkdir()
    (p / "config.json").write_text(json.dumps({"model_type": "llama", "name": name}))
    (p / "model.safetensors").write_bytes(name.encode())
    return p


def test_the_teacher_pipeline_uses_a_model_per_stage(tmp_path):
    text = (ROOT / "pipelines" / "teacher.yaml").read_text()
    cfg = load_config(ROOT / "pipelines" / "teacher.yaml")  # as shipped: three models
    assert (cfg.model_of("bootstrap"), cfg.model_of("instances"), cfg.model_of("judge")) == (
        "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "meta-llama/Llama-3.3-70B-Instruct")
    assert cfg.backend_of("instances") == cfg.backend_of("judge") == "openai" and cfg.backend_of("classify") == "vllm"
    assert "judge" in cfg.stages and "select" in cfg.stages

    # the same file with local folders for the generator and the teacher (which also judges here)
    gen, teacher = model_folder(tmp_path, "generator"), model_folder(tmp_path, "teacher")
    data = yaml.safe_load(text)
    data.update(model=str(gen), backend="per_model", seed_tasks=str(PROJECT_SEEDS))
    data["bootstrap"].update(num_instructions=16, requests_per_round=4)
    for stage in ("instances", "judge"):
        data[stage].update(model=str(teacher), backend="per_model", base_urls=None)
    data["select"] = {"by": "score", "min_score": 3}
    p = tmp_path / "teacher.yaml"
    p.write_text(yaml.safe_dump(data))
    run = tmp_path / "run"
    PerModel.opened.clear()
    run_pipeline(load_config(p), run, quiet=True)
    assert PerModel.opened == ["generator", "teacher"]  # opened once each, one at a time

    def model(stage):
        return json.loads((run / stage / "manifest.json").read_text())["provenance"]["model"]

    info = json.loads((run / "run.json").read_text())["models"]
    for stage, folder in [("bootstrap", gen), ("classify", gen), ("instances", teacher), ("judge", teacher)]:
        assert model(stage)["name"] == str(folder) and model(stage)["config_sha256"] == info[stage]["config_sha256"]
    assert model("instances")["weights_sha256"] != model("bootstrap")["weights_sha256"]
    assert model("select") is None and rows(run, "judge") and (run / "export" / "train.messages.jsonl").exists()

    # a baseline at the judge's size in a copy of the run: only select and export are redone, no model opens
    n = len(rows(run, "select"))
    shutil.copytree(run, tmp_path / "longest")
    PerModel.opened.clear()
    cfg = load_config(p, sets=["select.by=longest", f"select.k={n}"])
    run_pipeline(cfg, tmp_path / "longest", quiet=True, force=True)
    assert PerModel.opened == [] and len(rows(tmp_path / "longest", "select")) == n
    assert rows(tmp_path / "longest", "judge") == rows(run, "judge")
