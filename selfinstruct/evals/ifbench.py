"""Scoring of answers to IFEval-schema prompts (IFBench, and the `constraints` suite) — no model here.

A row is `{"key", "prompt", "instruction_id_list", "kwargs"}`; each instruction id names a checker in
one registry of `checkers` ("ifbench" or "ifeval"). Strict and loose follow the reference
implementation (allenai/IFBench `evaluation_lib`): strict checks the answer as is; loose passes when
any of the answer, the answer without its first and/or last line, or any of those without `*`, passes.

Where this differs from if-verifiable's `evaluate_instructions`, on purpose:
* an empty (or whitespace-only) answer fails every instruction; there it returns no results, which
  drops its instructions from the denominator and flatters a model that answers nothing;
* an instruction is *skipped*, never silently dropped, when its id is unknown to the registry, its
  kwargs are rejected by the checker, or the NLTK data it needs is missing; skips are decided before
  the answer is looked at, so two models scored on the same rows have the same denominators;
* a checker that raises on an answer (other than NLTK's LookupError) counts that instruction as not
  followed and records the error; a LookupError skips it (reason `nltk_lookup_error`), reported;
* instruction-level accuracy is micro-averaged over all scored instructions of the dataset (the
  IFEval/IFBench definition), not the mean of per-prompt fractions.
A prompt counts at prompt level only when none of its instructions was skipped.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np

from . import checkers

# Skip reasons (stable strings: they are counted in summaries and written to result files).
UNKNOWN_INSTRUCTION = "unknown_instruction"
BAD_KWARGS = "bad_kwargs"
NLTK_DATA_MISSING = "nltk_data_missing"
NLTK_LOOKUP_ERROR = "nltk_lookup_error"

METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")


@dataclass
class InstructionResult:
    instruction_id: str
    strict: bool | None = None  # None when skipped
    loose: bool | None = None
    skipped: str | None = None  # a skip reason above
    detail: str = ""  # why skipped, or the checker's error when it raised on this answer
    error: bool = False  # the checker raised on the answer; counted as not followed

    @property
    def scored(self) -> bool:
        return self.skipped is None


@dataclass
class PromptResult:
    key: str
    instructions: list[InstructionResult]
    empty_answer: bool = False

    @property
    def scored(self) -> bool:
        """Counts at prompt level: every instruction was scored."""
        return bool(self.instructions) and all(r.scored for r in self.instructions)

    @property
    def n_scored(self) -> int:
        return sum(r.scored for r in self.instructions)

    @property
    def n_strict(self) -> int:
        return sum(bool(r.strict) for r in self.instructions if r.scored)

    @property
    def n_loose(self) -> int:
        return sum(bool(r.loose) for r in self.instructions if r.scored)

    @property
    def strict(self) -> bool | None:
        """All instructions followed (strict); None when the prompt is not scored."""
        return self.n_strict == len(self.instructions) if self.scored else None

    @property
    def loose(self) -> bool | None:
        return self.n_loose == len(self.instructions) if self.scored else None

    def to_dict(self) -> dict:
        return {"key": self.key, "empty_answer": self.empty_answer, "strict": self.strict,
                "loose": self.loose, "instructions": [asdict(r) for r in self.instructions]}


@dataclass
class Summary:
    prompts: int
    prompts_scored: int
    prompts_skipped: int
    instructions: int
    instructions_scored: int
    instructions_skipped: int
    skipped_by_reason: dict[str, int]
    skipped_by_id: dict[str, int]
    checker_errors: int  # instructions whose checker raised on the answer (counted as failed)
    empty_answers: int
    prompt_strict: float | None  # share of scored prompts with every instruction followed
    prompt_loose: float | None
    instruction_strict: float | None  # followed / scored instructions, micro-averaged
    instruction_loose: float | None
    truncated_share: float | None = None  # share of answers cut off by max_tokens: set by the caller
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def loose_variants(response: str) -> list[str]:
    """The reference implementation's loose transformations (the answer itself first)."""
    lines = response.split("\n")
    first = "\n".join(lines[1:]).strip()
    last = "\n".join(lines[:-1]).strip()
    both = "\n".join(lines[1:-1]).strip()
    plain = [response, first, last, both]
    return [response, response.replace("*", ""), first, last, both] + [v.replace("*", "") for v in plain[1:]]


def _check_row(row: dict) -> tuple[str, str, list[str], list[dict]]:
    try:
        key, prompt, ids = str(row["key"]), row["prompt"], list(row["instruction_id_list"])
    except KeyError as e:
        raise ValueError(f"row {row.get('key', '?')!r}: missing field {e.args[0]!r}") from None
    kwargs = list(row.get("kwargs") or [{} for _ in ids])
    if len(kwargs) != len(ids):
        raise ValueError(f"row {key!r}: {len(ids)} instruction ids but {len(kwargs)} kwargs")
    return key, prompt, ids, kwargs


def _build(cls, instruction_id: str, kwargs: dict, prompt: str):
    checker = cls(instruction_id)
    # The datasets pad every kwargs dict with all keys set to None; a None must not reach the checker
    # (several would then draw a random value).
    checker.build_description(**{k: v for k, v in (kwargs or {}).items() if v is not None})
    args = checker.get_instruction_args()
    if args and "prompt" in args:
        checker.build_description(prompt=prompt)
    return checker


def _follows(checker, text: str) -> bool:
    return bool(text.strip()) and bool(checker.check_following(text))


def score_response(row: dict, response: str | None, registry: str) -> PromptResult:
    """Score one answer against the row's instructions with the checkers of `registry`
    ("ifbench" or "ifeval"). `response` None is treated as an empty answer."""
    key, prompt, ids, kwargs_list = _check_row(row)
    table = checkers.load_registry(registry)
    response = response or ""
    empty = not response.strip()
    variants = None if empty else loose_variants(response)
    out = []
    for instruction_id, kwargs in zip(ids, kwargs_list):
        cls = table.get(instruction_id)
        if cls is None:
            out.append(InstructionResult(instruction_id, skipped=UNKNOWN_INSTRUCTION,
                                         detail=f"not in the {registry} registry"))
            continue
        reason = checkers.unavailable_reason(registry, instruction_id)
        if reason:
            out.append(InstructionResult(instruction_id, skipped=NLTK_DATA_MISSING, detail=reason))
            continue
        try:
            checker = _build(cls, instruction_id, kwargs, prompt)
        except Exception as e:  # the row's kwargs, not the answer: skip, same for every model
            out.append(InstructionResult(instruction_id, skipped=BAD_KWARGS, detail=f"{type(e).__name__}: {e}"))
            continue
        if empty:
            out.append(InstructionResult(instruction_id, strict=False, loose=False))
            continue
        out.append(_run_checker(checker, instruction_id, variants))
    return PromptResult(key, out, empty_answer=empty)


def _run_checker(checker, instruction_id: str, variants: list[str]) -> InstructionResult:
    results, errors = [], []
    for text in variants:
        try:
            results.append(_follows(checker, text))
        except LookupError as e:  # NLTK data we did not foresee: skip it, and say so
            return InstructionResult(instruction_id, skipped=NLTK_LOOKUP_ERROR, detail=_lookup_detail(e))
        except Exception as e:  # a checker crashing on odd text: that variant does not pass
            results.append(False)
            errors.append(f"{type(e).__name__}: {e}")
    strict = results[0]
    return InstructionResult(instruction_id, strict=strict, loose=strict or any(results[1:]),
                             error=bool(errors), detail=errors[0][:300] if errors else "")


def _lookup_detail(e: LookupError) -> str:
    """The line of NLTK's boxed LookupError banner that names the resource."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip().strip("*")]
    return next((ln for ln in lines if "Resource" in ln), lines[0] if lines else "LookupError")


def score_rows(rows: Sequence[dict], responses: Sequence[str | None], registry: str) -> list[PromptResult]:
    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} rows but {len(responses)} responses")
    return [score_response(r, a, registry) for r, a in zip(rows, responses)]


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def summarize(results: Sequence[PromptResult], truncated: Sequence[bool] | None = None) -> Summary:
    """Prompt- and instruction-level accuracy (strict and loose) with counts of what was skipped.
    `truncated` (one flag per answer, same order) fills `truncated_share`; the caller knows it."""
    scored = [p for p in results if p.scored]
    instr = [r for p in results for r in p.instructions]
    done = [r for r in instr if r.scored]
    skipped = [r for r in instr if not r.scored]
    if truncated is not None and len(truncated) != len(results):
        raise ValueError(f"{len(results)} results but {len(truncated)} truncation flags")
    return Summary(
        prompts=len(results), prompts_scored=len(scored), prompts_skipped=len(results) - len(scored),
        instructions=len(instr), instructions_scored=len(done), instructions_skipped=len(skipped),
        skipped_by_reason=dict(Counter(r.skipped for r in skipped)),
        skipped_by_id=dict(Counter(r.instruction_id for r in skipped)),
        checker_errors=sum(r.error for r in done),
        empty_answers=sum(p.empty_answer for p in results),
        prompt_strict=_share(sum(bool(p.strict) for p in scored), len(scored)),
        prompt_loose=_share(sum(bool(p.loose) for p in scored), len(scored)),
        instruction_strict=_share(sum(bool(r.strict) for r in done), len(done)),
        instruction_loose=_share(sum(bool(r.loose) for r in done), len(done)),
        truncated_share=_share(sum(bool(t) for t in truncated), len(truncated)) if truncated is not None else None,
    )


def metric_vectors(results: Sequence[PromptResult], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt (numerator, denominator) whose ratio of sums is `metric`, for `bootstrap`.
    Prompt level: (all followed, 1) for a scored prompt, (0, 0) otherwise. Instruction level:
    (instructions followed, instructions scored), so resampling prompts keeps the micro-average."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (expected one of {', '.join(METRICS)})")
    level, mode = metric.split("_")
    num = np.zeros(len(results))
    den = np.zeros(len(results))
    for i, p in enumerate(results):
        if level == "prompt":
            if p.scored:
                num[i], den[i] = float(getattr(p, mode)), 1.0
        else:
            num[i], den[i] = (p.n_strict if mode == "strict" else p.n_loose), p.n_scored
    return num, den


def paired_vectors(base: Sequence[PromptResult], tuned: Sequence[PromptResult], metric: str
                   ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """`metric_vectors` of two models on the same prompts, aligned by key (the order of `base`)."""
    by_key = {p.key: p for p in tuned}
    if len(by_key) != len(tuned) or len({p.key for p in base}) != len(base):
        raise ValueError("duplicate prompt keys")
    if set(by_key) != {p.key for p in base}:
        raise ValueError("base and tuned results cover different prompts")
    return metric_vectors(base, metric), metric_vectors([by_key[p.key] for p in base], metric)


def offline_scorable(rows: Iterable[dict], registry: str, probes: Sequence[str] = ()) -> tuple[list[str], dict]:
    """Keys of the rows whose every instruction scores on this machine, and {key: skips} for the
    rest. The static skips need no answer; `probes` (answers to try) also surface LookupErrors."""
    ok, bad = [], {}
    for row in rows:
        skips = {}
        for answer in list(probes) or ["x"]:
            for r in score_response(row, answer, registry).instructions:
                if not r.scored:
                    skips[r.instruction_id] = f"{r.skipped}: {r.detail}"
        key = str(row["key"])
        if skips:
            bad[key] = skips
        else:
            ok.append(key)
    return ok, bad
