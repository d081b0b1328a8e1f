"""`selfinstruct finetune` / `selfinstruct evaluate`: real (tiny) fine-tunes of the embedded SmolLM2-135M
on CPU, no mocks. The vLLM evaluation is marked `engine` (two engine starts)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import main

# real training on CPU: the session fixtures train the embedded model for a few steps
pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "pipelines" / "finetune.yaml"
ANSWER = "The secret code is ZEBRA-42."


def _row(i: int) -> dict:
    return {"id": f"box-{i}", "prompt": [{"role": "user", "content": f"What is the secret code of box {i}?"}],
            "completion": [{"role": "assistant", "content": ANSWER}]}


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _invoke(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.fixture(scope="session")
def base_model() -> str:
    from selfinstruct.models import prepare_embedded_model
    return str(prepare_embedded_model())


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """An export dir: 12 train rows and 4 held-out eval rows with one distinctive answer."""
    d = tmp_path_factory.mktemp("export")
    _write_jsonl(d / "train.prompt_completion.jsonl", [_row(i) for i in range(12)])
    _write_jsonl(d / "eval.prompt_completion.jsonl", [_row(i) for i in range(50, 54)])
    return d


@pytest.fixture(scope="session")
def full_run(base_model, data_dir, tmp_path_factory) -> Path:
    """Full fine-tune with the shipped config, 6 steps: run dir -> data_dir via -d, model via --model."""
    out = tmp_path_factory.mktemp("full") / "model"
    res = _invoke(["finetune", "-c", CONFIG, "-d", data_dir, "-o", out, "--model", base_model,
                   "--max-steps", 6, "--batch-size", 4, "--lr", "5e-5", "--warmup", 0, "--logging-steps", 1,
                   "--max-length", 128, "-q"])
    assert res.exit_code == 0, res.output
    assert "eval loss" in res.stdout and f"done: {out}" in res.stdout
    return out


@pytest.mark.slow  # trains (full_run)
def test_full_finetune_learns_and_reloads(full_run):
    s = json.loads((full_run / "selfinstruct-finetune.json").read_text())
    assert s["kind"] == "full" and s["steps"] == 6 and s["train_examples"] == 12 and s["eval_examples"] == 4
    assert s["train_loss_last"] < s["train_loss_first"] * 0.5, s
    assert s["eval_loss_after"] < s["eval_loss_before"] * 0.5, s
    assert not (full_run / "checkpoints").exists()  # deleted after a finished run by default
    assert (full_run / "config.json").is_file() and not (full_run / "adapter_config.json").exists()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(full_run)
    assert tok.chat_template, "the chat template must be saved with the model"
    model = AutoModelForCausalLM.from_pretrained(full_run, dtype=torch.float32).eval()
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the secret code of box 99?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    text = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "ZEBRA" in text, text


@pytest.mark.slow  # imports transformers, loads a tokenizer: ~5 s alone
def test_prompt_tokens_are_masked(base_model, data_dir, tmp_path):
    from selfinstruct.train.config import load_finetune_config
    from selfinstruct.train.data import resolve_data
    from selfinstruct.train.finetune import build_trainer

    cfg = load_finetune_config(CONFIG, {"model": base_model, "max_length": 128})
    trainer, info = build_trainer(cfg, resolve_data(data_dir), tmp_path, quiet=True)
    tok = trainer.processing_class
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    for j, i in enumerate(range(3)):
        prompt = _row(i)["prompt"]
        n_prompt = len(tok.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"])
        labels, input_ids = batch["labels"][j].tolist(), batch["input_ids"][j].tolist()
        n = int(batch["attention_mask"][j].sum())
        assert all(x == -100 for x in labels[:n_prompt]), "prompt tokens must not be trained on"
        assert labels[n_prompt:n] == input_ids[n_prompt:n], "completion tokens must be the labels"
        assert all(x == -100 for x in labels[n:]), "padding must not be trained on"
        trained = tok.decode(input_ids[n_prompt:n])
        assert "ZEBRA-42" in trained and "box" not in trained, trained


@pytest.mark.slow  # trains
def test_lora_merge_saves_plain_model(base_model, data_dir, tmp_path):
    out = tmp_path / "merged"
    res = _invoke(["finetune", "-d", data_dir / "train.prompt_completion.jsonl", "-o", out, "--model", base_model,
                   "--lora", "--merge", "--lora-r", 8, "--lora-target", "q_proj", "--lora-target", "v_proj",
                   "--max-steps", 2, "--batch-size", 4, "--max-length", 128, "--no-eval", "-q"])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "selfinstruct-finetune.json").read_text())
    assert s["kind"] == "merged" and s["eval_file"] is None
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    assert (out / "adapter" / "adapter_config.json").is_file()  # the adapter is kept beside the merged model

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert not hasattr(model, "peft_config")
    assert not any("lora" in k for k in model.state_dict())
    merged = load_file(out / "model.safetensors")
    base = load_file(Path(base_model) / "model.safetensors")
    k = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged[k], base[k]), "the LoRA update must be merged into q_proj"
    k = "model.layers.0.mlp.down_proj.weight"
    assert torch.equal(merged[k], base[k]), "modules without LoRA stay unchanged"


@pytest.mark.slow  # trains
def test_lora_adapter_checkpoint_and_resume(base_model, data_dir, tmp_path):
    out = tmp_path / "adapter"
    args = ["finetune", "-d", data_dir, "-o", out, "--model", base_model, "--lora", "--no-merge",
            "--batch-size", 4, "--max-length", 128, "--no-eval", "--save-steps", 1, "-q"]
    res = _invoke(args + ["--max-steps", 1, "--keep-checkpoints"])
    assert res.exit_code == 0, res.output
    assert (out / "checkpoints" / "checkpoint-1").is_dir()
    for f in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (out / f).is_file(), f
    assert not (out / "config.json").exists()

    err = _one_line_error(_invoke(args + ["--max-steps", 2]))  # refuses to clobber without --resume/--overwrite
    assert str(out) in err and "--resume" in err

    res = _invoke(args + ["--max-steps", 2, "--resume"])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "selfinstruct-finetune.json").read_text())
    assert s["kind"] == "adapter" and s["steps"] == 2 and s["resumed_from"].endswith("checkpoint-1")
    assert not (out / "checkpoints").exists()

    from selfinstruct.train.loading import load_causal_lm
    model = load_causal_lm(str(out))
    assert hasattr(model, "peft_config")


@pytest.mark.slow  # full_run trains; generation on CPU
def test_evaluate_transformers(base_model, full_run, data_dir, tmp_path):
    out = tmp_path / "side_by_side.jsonl"
    res = _invoke(["evaluate", "--tuned", full_run, "--data", data_dir, "-o", out, "--engine", "transformers",
                   "--max-new-tokens", 12, "--limit", 3, "-q"])  # --base defaults to the recorded base model
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3
    assert set(rows[0]) == {"id", "prompt", "reference", "base", "tuned", "rouge_l_base", "rouge_l_tuned"}
    assert rows[0]["reference"] == ANSWER and rows[0]["prompt"] == "What is the secret code of box 50?"
    s = json.loads(out.with_name("side_by_side.summary.json").read_text())
    assert s["tuned"]["rouge_l"] > s["base"]["rouge_l"]
    assert s["tuned"]["eval_loss"] < s["base"]["eval_loss"]
    assert "ROUGE-L" in res.stdout and "eval loss" in res.stdout


@pytest.mark.engine
@pytest.mark.timeout(1500)
def test_evaluate_vllm(base_model, full_run, data_dir, tmp_path):
    """vLLM loads the saved folder; one engine start per model."""
    import os
    import subprocess
    import sys

    out = tmp_path / "eval.jsonl"
    # a real process, as a user runs it: vLLM's engine processes must not inherit click's test stdio
    cli = os.path.join(os.path.dirname(sys.executable), "selfinstruct")
    res = subprocess.run([cli, "evaluate", "--base", str(base_model), "--tuned", str(full_run), "--data",
                          str(data_dir), "-o", str(out), "--engine", "vllm", "--max-new-tokens", "12",
                          "--suite", "reference", "--suite", "ifbench", "--suite", "constraints", "--suite", "pairwise",
                          "--limit", "4", "--no-loss", "-q"], capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    # -q is as quiet as generate's: vLLM's output went to eval.log, the terminal got our notes only
    notes = re.compile(r"^(\w+ \(.+\): \d+ answers with vLLM$|warning: )")
    assert [line for line in res.stderr.splitlines() if line.strip() and not notes.match(line)] == []
    assert out.with_name("eval.log").stat().st_size > 0
    s = json.loads(out.with_name("eval.summary.json").read_text())
    assert s["base"]["engine"] == s["tuned"]["engine"] == "vllm"
    assert s["tuned"]["rouge_l"] > s["base"]["rouge_l"]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4 and sum("ZEBRA" in r["tuned"] for r in rows) >= 3
    # the other suites ran on the same engines (one per model) and a judge
    ifb = s["suites"]["ifbench"]
    assert ifb["prompts"] == 4 and set(ifb["metrics"]) == {"base", "tuned"}
    for iv in ifb["metrics"]["tuned"].values():
        assert iv["low"] is None or iv["low"] <= iv["estimate"] <= iv["high"]
    assert "tuned - base" in ifb["differences"] and ifb["notes"]["cut_off_share"]["base"] > 0  # 12 tokens: cut off
    assert s["suites"]["constraints"]["prompts"] == 4
    pw = s["suites"]["pairwise"]["notes"]["tuned vs base"]
    assert pw["wins"] + pw["ties"] + pw["losses"] == 4
    side = [json.loads(x) for x in out.with_name("eval.pairwise.jsonl").read_text().splitlines()]
    assert len(side) == 4 and all(len(r["tuned_judge_raw"]) == 2 for r in side)
    assert out.with_name("eval.report.html").stat().st_size > 1000
    assert "ifbench" in res.stdout and "pairwise" in res.stdout


# ------------------------------------------------------------------------------------ bad input: exit 2

def test_missing_data_file(tmp_path):
    err = _one_line_error(_invoke(["finetune", "-c", CONFIG, "-d", tmp_path / "nope.jsonl", "-o", tmp_path / "m"]))
    assert "nope.jsonl" in err


def test_empty_dataset(tmp_path):
    f = tmp_path / "train.prompt_completion.jsonl"
    f.write_text("\n")
    err = _one_line_error(_invoke(["finetune", "-c", CONFIG, "-d", f, "-o", tmp_path / "m"]))
    assert str(f) in err and "no training examples" in err


def test_bad_row_names_file_and_line(tmp_path):
    f = _write_jsonl(tmp_path / "data.jsonl", [_row(0), {"prompt": [{"role": "user", "content": "hi"}]}])
    err = _one_line_error(_invoke(["finetune", "-d", f, "-o", tmp_path / "m"]))
    assert f"{f}:2" in err


def test_unknown_model_path_in_config(tmp_path, data_dir):
    cfg = tmp_path / "ft.yaml"
    cfg.write_text("finetune:\n  epochs: 1\n  model: ./no/such/model\n")
    err = _one_line_error(_invoke(["finetune", "-c", cfg, "-d", data_dir, "-o", tmp_path / "m"]))
    assert f"{cfg}:3" in err and "model" in err and "./no/such/model" in err


def test_unknown_model_on_command_line(tmp_path, data_dir):
    err = _one_line_error(_invoke(["finetune", "-c", CONFIG, "-d", data_dir, "-o", tmp_path / "m",
                                   "--model", str(tmp_path / "missing-model")]))
    assert "missing-model" in err


def test_bad_config_key_and_value(tmp_path, data_dir):
    cfg = tmp_path / "ft.yaml"
    cfg.write_text("finetune:\n  learning_rat: 0.1\n")
    err = _one_line_error(_invoke(["finetune", "-c", cfg, "-d", data_dir, "-o", tmp_path / "m"]))
    assert f"{cfg}:2" in err and "learning_rate" in err
    cfg.write_text("finetune:\n  lora:\n    r: 0\n")
    err = _one_line_error(_invoke(["finetune", "-c", cfg, "-d", data_dir, "-o", tmp_path / "m"]))
    assert f"{cfg}:3" in err and "lora.r" in err
    err = _one_line_error(_invoke(["finetune", "-c", tmp_path / "missing.yaml", "-d", data_dir, "-o", tmp_path / "m"]))
    assert "missing.yaml" in err


@pytest.mark.slow  # full_run trains, when this test runs alone
def test_evaluate_missing_data(tmp_path, full_run):
    err = _one_line_error(_invoke(["evaluate", "--tuned", full_run, "--data", tmp_path / "nope.jsonl"]))
    assert "nope.jsonl" in err


def test_data_formats_convert_to_prompt_completion(tmp_path):
    from selfinstruct.train.data import load_examples, resolve_data

    msgs = _write_jsonl(tmp_path / "train.messages.jsonl", [
        {"id": "a", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                                 {"role": "assistant", "content": "Hello."}]}])
    alpaca = tmp_path / "train.alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": "Add.", "input": "1 + 1", "output": "2"}]))
    (a,) = load_examples(msgs)
    assert a["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    assert a["completion"] == [{"role": "assistant", "content": "Hello."}]
    (b,) = load_examples(alpaca)
    assert b["prompt"] == [{"role": "user", "content": "Add.\n\n1 + 1"}] and b["completion"][0]["content"] == "2"
    # a run dir resolves to its export/ split; prompt_completion wins over other formats
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    _write_jsonl(run / "export" / "train.prompt_completion.jsonl", [_row(1)])
    _write_jsonl(run / "export" / "eval.prompt_completion.jsonl", [_row(2)])
    (run / "export" / "train.alpaca.json").write_text("[]")
    files = resolve_data(run)
    assert files.train.name == "train.prompt_completion.jsonl" and files.eval.name == "eval.prompt_completion.jsonl"


# ------------------------------------------------------------- settings: YAML < --set < flag (no training)

LEGACY_FLAGS = ["--model", "--lr", "--epochs", "--max-steps", "--batch-size", "--grad-accum", "--max-length",
                "--warmup", "--precision", "--gradient-checkpointing", "--no-gradient-checkpointing", "--lora",
                "--no-lora", "--lora-r", "--lora-alpha", "--lora-dropout", "--lora-target", "--merge", "--no-merge",
                "--logging-steps", "--eval-steps", "--save-steps", "--keep-checkpoints", "--no-keep-checkpoints",
                "--seed", "-c", "-d", "-o", "--eval-data", "--no-eval", "--resume", "--overwrite", "-q", "--set"]


def test_every_flag_kept():
    names = {n for p in main.commands["finetune"].params for n in (*p.opts, *p.secondary_opts)}
    assert not set(LEGACY_FLAGS) - names, set(LEGACY_FLAGS) - names


def test_settings_precedence_yaml_set_flag(tmp_path):
    from selfinstruct.io.errors import UserError
    from selfinstruct.train.config import load_finetune_config

    cfg = tmp_path / "ft.yaml"
    cfg.write_text("finetune:\n  epochs: 1\n  seed: 7\n  lora:\n    r: 4\n    alpha: 8\n")
    c = load_finetune_config(cfg, {"epochs": 5.0, "lora.r": None}, sets=["epochs=2", "lora.r=6", "batch_size=3"])
    assert (c.epochs, c.lora.r, c.batch_size, c.seed, c.lora.alpha) == (5.0, 6, 3, 7, 8)
    assert c.source == str(cfg) and c.lora.target_modules == ["all-linear"]
    c = load_finetune_config(cfg, sets=["lora.target_modules=[q_proj, v_proj]", "eval_steps=null"])
    assert c.lora.target_modules == ["q_proj", "v_proj"] and c.epochs == 1.0 and c.eval_steps is None
    c = load_finetune_config(cfg, sets=["learning_rate=2e-5"])  # YAML 1.1 reads 2e-5 as a string
    assert c.learning_rate == 2e-5
    for sets, flags, field in ((["lora.r=0"], {}, "lora.r"), ([], {"lora.dropout": 1.0}, "lora.dropout"),
                               (["learning_rate=0"], {}, "learning_rate"), (["precision=fp8"], {}, "precision"),
                               (["lora.target_modules=[]"], {}, "lora.target_modules")):
        with pytest.raises(UserError) as e:
            load_finetune_config(cfg, flags, sets=sets)
        assert "(given on the command line)" in str(e.value) and f"'{field}'" in str(e.value), str(e.value)
    with pytest.raises(UserError, match=r"ft.yaml:5: field 'lora.r'"):
        cfg.write_text("finetune:\n  epochs: 1\n  seed: 7\n  lora:\n    r: 0\n")
        load_finetune_config(cfg, {"epochs": 2.0})


@pytest.fixture
def captured(monkeypatch):
    """`selfinstruct finetune` up to run_finetune, which records the config instead of training."""
    import selfinstruct.train.finetune as ft
    from selfinstruct.io.errors import UserError

    got = {}

    def fake_run(cfg, data, out_dir, **kw):
        got["cfg"], got["kw"] = cfg, kw
        raise UserError("stopped before training")
    monkeypatch.setattr(ft, "run_finetune", fake_run)
    return got


def test_cli_precedence_and_flag_shapes(tmp_path, captured):
    cfg = tmp_path / "ft.yaml"
    cfg.write_text("finetune:\n  epochs: 1\n  max_length: 64\n  lr_scheduler: cosine\n"
                   "  lora:\n    r: 4\n    merge: false\n")
    base = ["finetune", "-c", cfg, "-d", tmp_path, "-o", tmp_path / "m"]
    res = _invoke(base + ["--set", "epochs=2", "--set", "max_length=96", "--epochs", 5, "--set", "lora.r=6",
                          "--lora", "--merge", "--lora-target", "q_proj", "--lora-target", "v_proj", "--lr", "1e-4",
                          "--no-gradient-checkpointing", "--precision", "fp32", "--max-steps", 3, "--no-eval"])
    assert res.exit_code == 2 and "stopped before training" in res.stderr
    c = captured["cfg"]
    assert (c.epochs, c.max_length, c.lr_scheduler, c.lora.r) == (5.0, 96, "cosine", 6)  # flag > --set > YAML
    assert c.lora.enabled and c.lora.merge and c.lora.target_modules == ["q_proj", "v_proj"]
    assert (c.learning_rate, c.gradient_checkpointing, c.precision, c.max_steps) == (1e-4, False, "fp32", 3)
    assert captured["kw"]["no_eval"] is True
    _invoke(base)  # nothing given: the YAML values and the defaults
    c = captured["cfg"]
    assert (c.epochs, c.max_length, c.lora.r, c.lora.merge, c.lora.enabled, c.batch_size) == (1.0, 64, 4, False,
                                                                                            False, 8)


@pytest.mark.slow  # sft_args are checked against TRL's SFTConfig: imports TRL, ~4 s alone
def test_cli_bad_values_given_on_command_line(tmp_path, captured):
    base = ["finetune", "-d", tmp_path, "-o", tmp_path / "m"]
    for extra, field in ((["--lora-r", 0], "lora.r"), (["--set", "lora.r=0"], "lora.r"),
                         (["--epochs", 0], "epochs"), (["--set", "warmup=-1"], "warmup"),
                         (["--set", "batch_size=two"], "batch_size"), (["--set", "bogus=1"], "bogus"),
                         (["--set", "sft_args.no_such_arg=1"], "sft_args.no_such_arg")):
        err = _one_line_error(_invoke(base + extra))
        assert f"field '{field}'" in err and "(given on the command line)" in err, err
    assert "cfg" not in captured


def test_train_modules_small_and_public():
    """Each module of the train package stays under 400 lines and imports no other module's _private names."""
    import ast

    for f in sorted((REPO / "selfinstruct" / "train").glob("*.py")):
        text = f.read_text()
        assert len(text.splitlines()) < 400, f"{f.name}: {len(text.splitlines())} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")]
                assert not private, f"{f.name} imports {private} from {node.module}"


@pytest.mark.slow  # loads the model 3 times, merges a LoRA
@pytest.mark.timeout(600)
def test_an_adapter_is_merged_once_into_the_cache(base_model, tmp_path, monkeypatch):
    """responses.model may be a LoRA adapter folder: it is merged into its base in a cache folder that
    transformers (and vLLM) load as a plain model; a second call reuses it; a merge that another run
    finished first is taken, not an error; no temporary folder is left behind."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfinstruct.train.loading import merged_adapter

    monkeypatch.setenv("SELFINSTRUCT_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32),
                          LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter"
    peft.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(base_model).save_pretrained(adapter)
    out = Path(merged_adapter(adapter, "d" * 64))
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        got, want = merged(ids).logits, peft(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)(ids).logits
    # the adapter is in the weights: the merged model answers as base + adapter, not as the base
    assert (got - want).abs().max() < 1e-2 < (got - plain).abs().max()
    stamp = (out / "config.json").stat().st_mtime_ns
    assert merged_adapter(adapter, "d" * 64) == str(out) and (out / "config.json").stat().st_mtime_ns == stamp
    # another run finished the same merge while this one was merging: its folder is taken as it is
    real_exists = Path.is_file
    calls = {"n": 0}

    def first_missing(p):
        if p == out / "config.json" and calls["n"] == 0:
            calls["n"] += 1
            return False
        return real_exists(p)
    monkeypatch.setattr(Path, "is_file", first_missing)
    assert merged_adapter(adapter, "d" * 64) == str(out)
    monkeypatch.undo()
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no .tmp folders left
