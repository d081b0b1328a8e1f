import json

import pytest
from click.testing import CliRunner
from rouge_score import rouge_scorer

from selfinstruct.cli import main

from .conftest import write_jsonl


def _greedy_reference(texts, threshold):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    tok = scorer._tokenizer.tokenize
    kept = []
    for t in texts:
        nt = tok(t)
        if all(rouge_scorer._score_lcs(nt, tok(k)).fmeasure <= threshold for k in kept):
            kept.append(t)
    return kept


def test_dedup_command_matches_rouge_score(tmp_path):
    texts = ["Give three tips for staying healthy.", "Give three tips for staying very healthy.",
             "Write a poem about the sea.", "Write a short poem about the sea.",
             "Explain photosynthesis to a child.", "Give 3 tips for staying healthy!", "Name a prime number."]
    src = write_jsonl(tmp_path / "in.jsonl", [{"instruction": t, "n": i} for i, t in enumerate(texts)])
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    r = CliRunner().invoke(main, ["dedup", str(src), "-o", str(out), "--rejects", str(rej), "-q"])
    assert r.exit_code == 0, r.output
    kept = [json.loads(l)["instruction"] for l in out.read_text().splitlines()]
    assert kept == _greedy_reference(texts, 0.7)
    dropped = [json.loads(l) for l in rej.read_text().splitlines()]
    assert len(dropped) == len(texts) - len(kept)
    assert all(d["rouge_l"] > 0.7 and texts[d["nearest_index"]] in kept for d in dropped)


def test_dedup_bad_input_exit_2_one_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "a b c"}\n{"text": "no field"}\n')
    r = CliRunner().invoke(main, ["dedup", str(src), "-o", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2
    assert r.output.strip() == f"error: {src}:2: field 'instruction': missing"
    assert not (tmp_path / "o.jsonl").exists()


def test_generate_bad_config_exit_2(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("bootstrap:\n  num_instructions: -3\n")
    r = CliRunner().invoke(main, ["generate", "-c", str(cfg), "-o", str(tmp_path / "run")])
    assert r.exit_code == 2 and "c.yaml:2: field 'bootstrap.num_instructions'" in r.output
    assert not (tmp_path / "run").exists()


def test_generate_unknown_model_path_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["generate", "-c", "pipelines/default.yaml", "-o", str(tmp_path / "run"),
                                  "--model", str(tmp_path / "no-such-model")])
    assert r.exit_code == 2 and "model path does not exist" in r.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # a subprocess
def test_evaluate_quiet_keeps_library_logging_set_up_inside_off_the_terminal(tmp_path):
    """evaluate -q starts its vLLM engines inside the redirection, and vLLM sets its logging up then: a
    handler on sys.stdout, which is the log. What it logs after the redirection (an engine's shutdown, at
    exit) goes on to the log; it used to reach the terminal as "--- Logging error ---" and a traceback."""
    import subprocess
    import sys
    script = f"""
import logging.config
from pathlib import Path
from selfinstruct.io.console import library_output_to
with library_output_to(Path({str(tmp_path / "eval.log")!r})):
    logging.config.dictConfig({{"version": 1, "disable_existing_loggers": False,
        "handlers": {{"lib": {{"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}}}},
        "loggers": {{"lib": {{"handlers": ["lib"], "level": "WARNING", "propagate": False}}}}}})
    logging.getLogger("lib").warning("lib-inside")
logging.getLogger("lib").warning("lib-after")
print("summary")
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr == "" and res.stdout == "summary\n", res.stderr
    assert (tmp_path / "eval.log").read_text().split() == ["lib-inside", "lib-after"]
