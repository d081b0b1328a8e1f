"""Training mixtures (`finetune.data`): the draw honours the weights on a large draw and uses each
source's rows evenly; text sources are trained on every token and instruction sources on the completion
only; what was drawn is recorded in the output folder; and the weights decide what the model learns: on a
tiny random model, a mixture weighted towards a planted text lowers that text's held-out loss more
than one weighted away from it (the same steps, the same rows available)."""
from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from selfinstruct.io.errors import UserError
from selfinstruct.train.config import FinetuneConfig
from selfinstruct.train.mixture import MIXTURE_FILE, MixtureSource, draw

from .tiny_model import save_tiny_model


def test_a_large_draw_honours_the_weights_and_uses_rows_evenly():
    sizes, weights = [50, 7, 300], [1.0, 0.5, 0.3]
    picks = draw(sizes, weights, 30000, seed=3)
    share = Counter(s for s, _ in picks)
    for s, w in enumerate(weights):
        assert abs(share[s] / len(picks) - w / sum(weights)) < 0.01
    for s, size in enumerate(sizes):  # shuffled passes: every row is drawn floor or ceil of drawn/size times
        uses = Counter(i for src, i in picks if src == s)
        assert set(uses) <= set(range(size)) and max(uses.values()) - min(uses.values()) <= 1
    assert draw(sizes, weights, 100, seed=3) == picks[:100] and draw(sizes, weights, 100, seed=4) != picks[:100]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", positions=64)


def planted_text(d: Path) -> Path:
    """Raw text: the tiny vocabulary's words in one fixed cycle (learnable), in two files."""
    d.mkdir(parents=True, exist_ok=True)
    cycle = "sun moon tree rock blue red fast slow ."
    for k in range(2):
        (d / f"notes{k}.txt").write_text("\n\n".join(" ".join([cycle] * 2) for _ in range(20)) + "\n")
    return d


def instructions(d: Path) -> Path:
    """Instruction data over other words: random prompts, completions of random words."""
    rng = random.Random(0)
    words = "alpha beta gamma delta one two three then so indeed".split()
    rows = [{"id": f"i{k}", "prompt": [{"role": "user", "content": "task " + " ".join(rng.choices(words, k=3))}],
             "completion": [{"role": "assistant", "content": "answer " + " ".join(rng.choices(words, k=4))}]}
            for k in range(40)]
    d.mkdir(parents=True, exist_ok=True)
    f = d / "train.prompt_completion.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "eval.prompt_completion.jsonl").write_text("".join(json.dumps(dict(r, id=f"e{k}")) + "\n"
                                                            for k, r in enumerate(rows[:6])))
    return d


def mixture_config(tiny: Path, text: Path, inst: Path, text_weight: float, inst_weight: float, **kw):
    return FinetuneConfig(model=str(tiny), data=[MixtureSource(run=str(inst), weight=inst_weight, name="inst"),
                                                 MixtureSource(text=str(text), weight=text_weight, name="text")],
                          mixture_size=96, text_eval_share=0.2, max_steps=12, batch_size=8, learning_rate=1e-2,
                          max_length=32, logging_steps=4, save_steps=1000, **kw)


def test_text_rows_train_every_token_and_instruction_rows_the_completion(tiny, tmp_path):
    from selfinstruct.train.finetune import build_trainer
    cfg = mixture_config(tiny, planted_text(tmp_path / "text"), instructions(tmp_path / "inst"), 1.0, 1.0)
    trainer, info = build_trainer(cfg, None, tmp_path / "out", quiet=True)
    by_kind = {"text": 0, "inst": 0}
    for row in trainer.train_dataset:
        labels = row["labels"]
        if all(t != -100 for t in labels):
            by_kind["text"] += 1  # a text chunk: every token is in the loss
        else:
            n = labels.index(next(t for t in labels if t != -100))
            assert n > 0 and all(t == -100 for t in labels[:n]) and all(t != -100 for t in labels[n:])
            by_kind["inst"] += 1
    drawn = {s["name"]: s["drawn"] for s in info["mixture"]["sources"]}
    assert by_kind == {"text": drawn["text"], "inst": drawn["inst"]} and sum(drawn.values()) == 96
    assert set(trainer.eval_dataset) == {"inst", "text"}


def train(tiny, tmp_path, text_weight, inst_weight, name):
    from selfinstruct.train.finetune import run_finetune
    text, inst = tmp_path / "text", tmp_path / "inst"
    if not text.exists():
        planted_text(text), instructions(inst)
    cfg = mixture_config(tiny, text, inst, text_weight, inst_weight)
    return run_finetune(cfg, None, tmp_path / name, quiet=True, log=lambda _: None)


@pytest.mark.slow  # two trainings: ~6 s
def test_the_weights_decide_what_the_model_learns(tiny, tmp_path):
    heavy = train(tiny, tmp_path, 1.0, 0.05, "text-heavy")
    light = train(tiny, tmp_path, 0.05, 1.0, "text-light")
    h, l = heavy["eval_loss_by_source"]["text"], light["eval_loss_by_source"]["text"]
    assert h[0] == pytest.approx(l[0])  # the same model, the same held-out text before training
    assert h[1] < l[1] - 0.5, (h, l)
    assert heavy["eval_loss_by_source"]["inst"][1] > light["eval_loss_by_source"]["inst"][1]
    record = json.loads((tmp_path / "text-heavy" / MIXTURE_FILE).read_text())
    assert record["seed"] == 42 and record["size"] == 96
    shares = {s["name"]: s["drawn_share"] for s in record["sources"]}
    assert shares["text"] > 0.85 and record["sources"][1]["files"]
    assert heavy["mixture"] == record and heavy["train_file"].endswith(MIXTURE_FILE)


def test_data_and_a_mixture_exclude_each_other(tiny, tmp_path):
    from selfinstruct.train.finetune import run_finetune
    cfg = mixture_config(tiny, tmp_path, tmp_path, 1.0, 1.0)
    with pytest.raises(UserError, match="not both"):
        run_finetune(cfg, tmp_path, tmp_path / "out")
    with pytest.raises(UserError, match="neither"):
        run_finetune(FinetuneConfig(model=str(tiny)), None, tmp_path / "out")


def test_an_unreadable_file_in_a_text_source_is_one_line(tiny, tmp_path):
    from selfinstruct.train.finetune import build_trainer
    text = planted_text(tmp_path / "text")
    (text / "scan.txt").write_bytes(b"\x00\x01binary")
    cfg = mixture_config(tiny, text, instructions(tmp_path / "inst"), 1.0, 1.0)
    with pytest.raises(UserError, match=r"scan\.txt.*binary file"):
        build_trainer(cfg, None, tmp_path / "out", quiet=True)


def pairs_file(d: Path, first: str, n: int) -> Path:
    """Preference pairs whose chosen answers start with `first` (so a pair says which file it came from)."""
    d.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"{first}{k}", "prompt": [{"role": "user", "content": "task one"}],
             "chosen": [{"role": "assistant", "content": f"{first} two"}],
             "rejected": [{"role": "assistant", "content": "so three"}]} for k in range(n)]
    f = d / "train.preference.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "eval.preference.jsonl").write_text(json.dumps(dict(rows[0], id="held")) + "\n")
    return d


@pytest.mark.slow  # TRL's DPO trainer on the tiny model: ~4 s
def test_dpo_trains_on_a_mixture_of_preference_runs(tiny, tmp_path):
    from selfinstruct.train.config import DpoConfig
    from selfinstruct.train.dpo import run_dpo
    cfg = DpoConfig(model=str(tiny), data=[MixtureSource(run=str(pairs_file(tmp_path / "a", "alpha", 5)), weight=3.0),
                                           MixtureSource(run=str(pairs_file(tmp_path / "b", "beta", 40)), weight=1.0)],
                    mixture_size=64, max_steps=2, batch_size=4, max_length=16, save_steps=1000)
    s = run_dpo(cfg, None, tmp_path / "out", quiet=True, log=lambda _: None)
    record = json.loads((tmp_path / "out" / MIXTURE_FILE).read_text())
    drawn = {x["name"]: x["drawn"] for x in record["sources"]}
    assert s["mixture"] == record and sum(drawn.values()) == 64 and drawn["a"] > 2 * drawn["b"]
    assert s["train_pairs"] == 64 and s["eval_pairs"] == 2 and (tmp_path / "out" / "config.json").is_file()
    with pytest.raises(UserError, match="text"):
        from selfinstruct.io.settings import load_settings
        p = tmp_path / "dpo.yaml"
        p.write_text(f"dpo:\n  model: {tiny}\n  data: [{{text: {tmp_path}}}]\n")
        load_settings(DpoConfig, p, section="dpo")
