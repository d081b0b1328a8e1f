"""Evaluation suites. Each turns its data into chat prompts (`items`) and the models' answers into
metrics with confidence intervals (`score`); the runner answers every suite's prompts with one engine
per model. A suite's metrics are `Interval`s: a point estimate and a seeded paired-bootstrap 95%
interval over prompts; `differences` compares every other model with the first (base)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..io.errors import UserError
from ..train.data import load_examples, resolve_eval_data
from . import ifbench, pairwise
from .benchmarks import load_ifbench
from .bootstrap import Interval, bootstrap_ci, paired_diff_ci
from .constraints import build_constraint_prompts
from .generation import Answer

IF_METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")


@dataclass
class Options:
    data: Path | None = None  # a run / export dir / file with the held-out split (constraints, pairwise, reference)
    questions: Path | None = None  # closed-book questions with reference spans (knowledge)
    limit: int | None = None
    seed: int = 0
    resamples: int = 2000
    # differences asked for besides every model vs the first (base): (a, b) reads "a - b"
    compare: tuple[tuple[str, str], ...] = ()
    limits: dict[str, int | None] = field(default_factory=dict)  # a suite's own limit, over `limit`

    def limit_for(self, suite: str) -> int | None:
        return self.limits.get(suite, self.limit)

    def comparisons(self, labels: list[str]) -> list[tuple[str, str]]:
        """(a, b) pairs for the paired differences a - b: each model against the first, then `compare`."""
        first = [(m, labels[0]) for m in labels[1:]]
        return first + [p for p in self.compare if p[0] in labels and p[1] in labels and p not in first]


@dataclass
class Item:
    key: str
    messages: list[dict[str, str]]
    row: dict[str, Any]  # what scoring needs


@dataclass
class SuiteResult:
    name: str
    metrics: dict[str, dict[str, Interval]]  # model label -> metric -> interval
    differences: dict[str, dict[str, Interval]]  # "tuned - base" -> metric -> interval
    notes: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)  # side by side, one per prompt

    def to_dict(self) -> dict[str, Any]:
        def ivs(d):
            return {k: {m: iv.to_dict() for m, iv in v.items()} for k, v in d.items()}
        return {"metrics": ivs(self.metrics), "differences": ivs(self.differences), "notes": self.notes}


def held_out(opts: Options, suite: str) -> list[dict[str, Any]]:
    """The held-out (eval) split as prompt-completion rows."""
    if opts.data is None:
        raise UserError("--data is required for this suite (a run directory, its export, or an eval file)")
    path = resolve_eval_data(opts.data)
    rows = load_examples(path)
    if not rows:
        raise UserError("no eval examples (the file is empty)", path=path)
    limit = opts.limit_for(suite)
    return rows[:limit] if limit else rows


def user_text(prompt: list[dict]) -> str:
    users = [m["content"] for m in prompt if m["role"] == "user"]
    return users[-1] if users else prompt[-1]["content"]


class Suite:
    name: ClassVar[str]
    max_new_tokens: ClassVar[int]
    judged: ClassVar[bool] = False  # a judge model reads the answers (pairwise)

    def items(self, opts: Options) -> list[Item]:
        raise NotImplementedError

    def score(self, items: list[Item], answers: dict[str, list[Answer]], opts: Options,
              verdicts: list[str] | None = None) -> SuiteResult:
        raise NotImplementedError


def per_prompt_intervals(scores: dict[str, dict[str, np.ndarray]], opts: Options
                         ) -> tuple[dict[str, dict[str, Interval]], dict[str, dict[str, Interval]]]:
    """Model -> metric -> a per-prompt score vector, as intervals: each model's (bootstrap) and the paired
    differences `opts.comparisons` asks for."""
    labels = list(scores)
    metrics = {m: {k: bootstrap_ci(v, n_resamples=opts.resamples, seed=opts.seed) for k, v in scores[m].items()}
               for m in labels}
    diffs = {f"{a} - {b}": {k: paired_diff_ci(scores[b][k], scores[a][k], n_resamples=opts.resamples, seed=opts.seed)
                            for k in scores[a]}
             for a, b in opts.comparisons(labels)}
    return metrics, diffs


def _cut_off(answers: dict[str, list[Answer]]) -> dict[str, float]:
    return {m: sum(a.cut_off for a in got) / len(got) if got else 0.0 for m, got in answers.items()}


class VerifiableSuite(Suite):
    """Prompts with verifiable instructions (IFEval schema), scored by deterministic checkers."""
    registry: ClassVar[str]

    def score(self, items, answers, opts, verdicts=None) -> SuiteResult:
        rows = [it.row for it in items]
        results = {m: ifbench.score_rows(rows, [a.text for a in got], self.registry) for m, got in answers.items()}
        labels = list(answers)
        metrics, diffs, notes = {}, {}, {"cut_off_share": _cut_off(answers), "max_new_tokens": self.max_new_tokens}
        for m in labels:
            s = ifbench.summarize(results[m], [a.cut_off for a in answers[m]])
            notes[m] = {k: v for k, v in s.to_dict().items() if k not in IF_METRICS}
            metrics[m] = {k: bootstrap_ci(*ifbench.metric_vectors(results[m], k), n_resamples=opts.resamples,
                                          seed=opts.seed) for k in IF_METRICS}
        for a, b in opts.comparisons(labels):
            diffs[f"{a} - {b}"] = {}
            for k in IF_METRICS:
                (bn, bd), (an, ad) = ifbench.paired_vectors(results[b], results[a], k)
                diffs[f"{a} - {b}"][k] = paired_diff_ci(bn, an, bd, ad, n_resamples=opts.resamples, seed=opts.seed)
        side = [{"key": it.key, "prompt": it.row["prompt"], "instruction_id_list": it.row["instruction_id_list"],
                 **{m: answers[m][i].text for m in labels},
                 **{f"{m}_checks": results[m][i].to_dict()["instructions"] for m in labels}}
                for i, it in enumerate(items)]
        return SuiteResult(self.name, metrics, diffs, notes, side)


class IFBenchSuite(VerifiableSuite):
    name, max_new_tokens, registry = "ifbench", 384, "ifbench"

    def items(self, opts):
        limit = opts.limit_for(self.name)
        rows = load_ifbench()[:limit] if limit else load_ifbench()
        return [Item(str(r["key"]), [{"role": "user", "content": r["prompt"]}], r) for r in rows]


class ConstraintsSuite(VerifiableSuite):
    """IFEval-style constraints on the run's own held-out instructions: in-domain instruction following."""
    name, max_new_tokens, registry = "constraints", 384, "ifeval"

    def items(self, opts):
        ex = held_out(opts, self.name)
        seen: dict[str, int] = {}
        texts, ids = [], []
        for r in ex:  # one prompt per instruction (an instruction has several instances in the split)
            t = user_text(r["prompt"])
            if t not in seen:
                seen[t] = len(texts)
                texts.append(t)
                ids.append(f"{r['id']}#{len(texts)}")
        rows = build_constraint_prompts(texts, seed=opts.seed, ids=ids)
        return [Item(r["key"], [{"role": "user", "content": r["prompt"]}], r) for r in rows]


class PairwiseSuite(Suite):
    """A judge compares each model's answers with the first model's, in both orders."""
    name, max_new_tokens, judged = "pairwise", 256, True

    def items(self, opts):
        return [Item(str(r["id"]), r["prompt"], {"instruction": user_text(r["prompt"])}) for r in held_out(opts, self.name)]

    @staticmethod
    def judge_prompts(items: list[Item], answers: dict[str, list[Answer]]) -> list[list[dict]]:
        """For every other model vs the first, per item: (A=first, B=other) then (A=other, B=first)."""
        labels = list(answers)
        out = []
        for m in labels[1:]:
            for i, it in enumerate(items):
                a, b = answers[labels[0]][i].text, answers[m][i].text
                out += [pairwise.judge_messages(it.row["instruction"], a, b, it.key),
                        pairwise.judge_messages(it.row["instruction"], b, a, it.key)]
        return out

    def score(self, items, answers, opts, verdicts=None) -> SuiteResult:
        labels, n = list(answers), len(items)
        metrics, diffs, rows = {}, {}, [dict(key=it.key, instruction=it.row["instruction"]) for it in items]
        notes: dict[str, Any] = {"cut_off_share": _cut_off(answers), "max_new_tokens": self.max_new_tokens}
        wins: dict[str, np.ndarray] = {}  # model -> its per-prompt score against the first model
        for j, m in enumerate(labels[1:]):
            raw = verdicts[2 * n * j: 2 * n * (j + 1)]
            outcomes = [pairwise.combine(pairwise.parse_verdict(raw[2 * i]), pairwise.parse_verdict(raw[2 * i + 1]))
                        for i in range(n)]
            name = f"{m} vs {labels[0]}"
            notes[name] = pairwise.summarize(outcomes)
            scores = wins[m] = np.array([o.score for o in outcomes])
            diffs[name] = {"win_rate": bootstrap_ci(scores, n_resamples=opts.resamples, seed=opts.seed)}
            for i, row in enumerate(rows):
                row.update({labels[0]: answers[labels[0]][i].text, m: answers[m][i].text,
                            f"{m}_judge_raw": [raw[2 * i], raw[2 * i + 1]], f"{m}_score": outcomes[i].score})
        for a, b in opts.comparisons(labels)[len(labels) - 1:]:  # two models, each judged against the first
            if labels[0] not in (a, b):
                diffs[f"{a} - {b}"] = {"win_rate": paired_diff_ci(wins[b], wins[a], n_resamples=opts.resamples,
                                                                  seed=opts.seed)}
        return SuiteResult(self.name, metrics, diffs, notes, rows)


class ReferenceSuite(Suite):
    """ROUGE-L of each answer against the held-out reference (the generated data's own answers)."""
    name, max_new_tokens = "reference", 256

    def items(self, opts):
        return [Item(str(r["id"]), r["prompt"], {"reference": r["completion"][-1]["content"], "row": r})
                for r in held_out(opts, self.name)]

    def score(self, items, answers, opts, verdicts=None) -> SuiteResult:
        from ..train.evaluate import rouge_l
        labels = list(answers)
        scores = {m: {"rouge_l": np.array([rouge_l(it.row["reference"], answers[m][i].text)
                                           for i, it in enumerate(items)])} for m in labels}
        metrics, diffs = per_prompt_intervals(scores, opts)
        rows = [{"id": it.key, "prompt": user_text(it.messages), "reference": it.row["reference"],
                 **{m: answers[m][i].text for m in labels},
                 **{f"rouge_l_{m}": float(scores[m]["rouge_l"][i]) for m in labels}}
                for i, it in enumerate(items)]
        return SuiteResult(self.name, metrics, diffs, {"cut_off_share": _cut_off(answers)}, rows)


class KnowledgeSuite(Suite):
    """Closed-book questions about a document set, scored against reference spans (evals/knowledge.py)."""
    name, max_new_tokens = "knowledge", 64
    METRICS = ("contains", "f1")

    def items(self, opts):
        from .knowledge import load_questions
        if opts.questions is None:
            raise UserError("--questions FILE is required for --suite knowledge (JSONL: id, question, answers)")
        rows = load_questions(opts.questions)
        limit = opts.limit_for(self.name)
        rows = rows[:limit] if limit else rows
        return [Item(r["id"], [{"role": "user", "content": r["question"]}], r) for r in rows]

    def score(self, items, answers, opts, verdicts=None) -> SuiteResult:
        from .knowledge import contains, token_f1
        labels = list(answers)
        fns = {"contains": contains, "f1": token_f1}
        scores = {m: {k: np.array([f(answers[m][i].text, it.row["answers"]) for i, it in enumerate(items)])
                      for k, f in fns.items()} for m in labels}
        metrics, diffs = per_prompt_intervals(scores, opts)
        rows = [{"id": it.key, "question": it.row["question"], "answers": it.row["answers"],
                 **{m: answers[m][i].text for m in labels},
                 **{f"{m}_{k}": float(scores[m][k][i]) for m in labels for k in fns}} for i, it in enumerate(items)]
        return SuiteResult(self.name, metrics, diffs, {"cut_off_share": _cut_off(answers),
                                                       "max_new_tokens": self.max_new_tokens}, rows)


class KnowledgeJudgeSuite(KnowledgeSuite):
    """The knowledge questions again, each answer read by the judge against the reference (for a judge that
    can judge: correct answers in words the reference spans do not contain). Verdict: Yes/No on the first
    line; an unreadable one counts as not correct, and the notes say how many there were."""
    name, judged = "knowledge_judge", True
    METRICS = ("judge_correct",)

    @staticmethod
    def judge_prompts(items: list[Item], answers: dict[str, list[Answer]]) -> list[list[dict]]:
        from .knowledge import judge_messages
        return [judge_messages(it.row["question"], it.row["answers"], answers[m][i].text, it.key)
                for m in answers for i, it in enumerate(items)]

    def score(self, items, answers, opts, verdicts=None) -> SuiteResult:
        from .knowledge import parse_yes_no
        labels, n = list(answers), len(items)
        read = {m: [parse_yes_no(v) for v in verdicts[j * n:(j + 1) * n]] for j, m in enumerate(labels)}
        scores = {m: {"judge_correct": np.array([1.0 if v else 0.0 for v in read[m]])} for m in labels}
        metrics, diffs = per_prompt_intervals(scores, opts)
        notes = {"cut_off_share": _cut_off(answers), "unreadable_verdicts": {m: sum(v is None for v in read[m])
                                                                            for m in labels}}
        rows = [{"id": it.key, "question": it.row["question"], "answers": it.row["answers"],
                 **{m: answers[m][i].text for m in labels}, **{f"{m}_judge": verdicts[j * n + i]
                                                               for j, m in enumerate(labels)}}
                for i, it in enumerate(items)]
        return SuiteResult(self.name, metrics, diffs, notes, rows)


SUITES: dict[str, type[Suite]] = {s.name: s for s in (IFBenchSuite, ConstraintsSuite, PairwiseSuite, ReferenceSuite,
                                                      KnowledgeSuite, KnowledgeJudgeSuite)}
