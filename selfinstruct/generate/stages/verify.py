"""Rejection sampling against the checkers: K answers to every constrained prompt from the answering model
(the stage's own `model:`, a teacher or the policy; by default the pipeline's), each checked against the
prompt's constraints (strict, `constraints.check_all`). A record keeps the first answer (lowest k) that
passes every constraint and was not cut at `max_tokens`, as its one instance's output; when none does it
is dropped with reason `unverified` (the reject holds all K answers and their verdicts).

The K requests of a prompt are K requests with the seeds s, s+1, ..., s+K-1 (s from the run's seed and the
record id): they share the prompt, so the engine's prefix cache computes it once, and they are exactly
the children vLLM makes of one `n = K` request seeded s (vLLM 0.32 splits it so), so either asks the
same and a resumed run asks the same (`bench/verify_n.py` measures the two).

With `base_rate_samples` B > 0 the prompt is also asked B times without its constraints, and those
answers are checked against the same constraints: how often a type holds when nobody asked for it (the
base rate per type in `stats`; a type the model satisfies anyway teaches nothing). Their texts are kept
too: `pairs.unconstrained_pairs` makes Tülu-style pairs from them.

Records without constraints pass through unasked (`unconstrained: keep`), or are dropped with reason
`unconstrained` (`drop`: an export of verified answers only).

What a kept or rejected record holds, next to `constraints`:

    "prompt": [{"role": "user", "content": ...}]        the messages asked (the preference export's prompt)
    "verify": {"answers": [K texts], "passed": [[bool per constraint] per answer], "truncated": [K bools],
               "chosen": k or null,
               "base": {"answers": [B texts], "passed": [[...]], "truncated": [...]}}   (with B > 0)

Counted in the manifest, per constraint type T: `asked:T` (prompts), `answers:T` (answers checked),
`pass1:T` (answers that pass it: pass@1 = pass1/answers), `passk:T` (prompts with at least one: pass@K =
passk/asked), `base_answers:T`, `base_pass:T` (base rate = base_pass/base_answers); over all of a prompt's
constraints: `constrained`, `answers`, `pass1_all`, `passk_all`, `verified`, `reject:unverified`,
`truncated`, `truncated_passing` (answers that passed but were cut, never kept), `unconstrained`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...backends.base import Completion, Request
from ...constraints import check_all
from ...io.formats import user_prompt
from ...io.records import Instance, Record, Reject
from ...io.settings import setting
from ..constrained import base_instruction, constraints_of
from ..options import Sampling, StageModel, derive_seed
from ..registry import register_stage
from ..stage import BatchStage, StageResult

SEED_ROOM = 1 << 10  # seeds s..s+K-1 stay below 2**31 (K <= 64)


@dataclass
class VerifyConfig(StageModel):
    samples: int = setting(8, min=1, max=64, help="K: answers per constrained prompt (K requests seeded s..s+K-1, "
                                                  "sharing the prompt's prefix)")
    base_rate_samples: int = setting(0, min=0, max=64,
                                     help="also ask each constrained prompt this many times without its "
                                          "constraints and check those answers: the base rate per type in stats")
    unconstrained: str = setting("keep", choices=("keep", "drop"),
                                 help="records without constraints: keep (passed on unasked) or drop (reason "
                                      "`unconstrained`: an export of verified answers only)")
    batch_size: int = setting(32, min=1, help="records per shard")
    sampling: Sampling = setting(factory=lambda: Sampling(temperature=1.0, top_p=0.95, max_tokens=256))

    def check(self, err) -> None:
        if self.samples > 1 and self.sampling.temperature == 0:
            err("sampling.temperature", "K greedy answers are all the same: sample (temperature > 0) or set "
                                        "samples: 1")


def first_seed(seed: int, stage: str, record_id: str, kind: str = "") -> int:
    """s: the seed of a record's first answer (the k-th is s + k); `kind` "base" for the base-rate answers."""
    return derive_seed(seed, stage, record_id, kind) % ((1 << 31) - SEED_ROOM)


def prompt_for(r: Record, instruction: str) -> list[dict[str, str]]:
    """The messages asking `instruction`: a preference run's own messages with their last user turn
    replaced, else one user turn with the instruction and the record's (first instance's) input."""
    given = r.extra.get("prompt")
    if isinstance(given, list) and any(m.get("role") == "user" for m in given):
        msgs = [dict(m) for m in given]
        last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
        msgs[last]["content"] = instruction
        return msgs
    return [{"role": "user", "content": user_prompt(instruction, r.instances[0].input if r.instances else "")}]


def verdicts(texts: list[str], constraints) -> list[list[bool]]:
    return [check_all(t, constraints) for t in texts]


@register_stage
class Verify(BatchStage):
    name = "verify"
    Config = VerifyConfig
    template_version = "verify-v1"
    reads = frozenset({"instruction", "constraints"})
    writes = frozenset({"instances", "verify", "prompt"})
    uses_model = True
    order = 44

    def requests(self, batch: list[Record]) -> list[Request]:
        out, seed = [], self.ctx.cfg.seed
        for r in batch:
            if not constraints_of(r):
                continue
            s = first_seed(seed, self.name, r.id)
            prompt = prompt_for(r, r.instruction)
            out += [Request.from_sampling(prompt, self.cfg.sampling, seed=s + k) for k in range(self.cfg.samples)]
            if self.cfg.base_rate_samples:
                b = first_seed(seed, self.name, r.id, "base")
                base = prompt_for(r, base_instruction(r))
                out += [Request.from_sampling(base, self.cfg.sampling, seed=b + j)
                        for j in range(self.cfg.base_rate_samples)]
        return out

    def process(self, batch: list[Record], completions: list[Completion]) -> StageResult:
        out, st = StageResult(), self.cfg
        k, b = st.samples, st.base_rate_samples
        at = 0
        for r in batch:
            cs = constraints_of(r)
            if not cs:
                if st.unconstrained == "drop":
                    out.reject(Reject(r.id, "unconstrained", instruction=r.instruction))
                else:
                    out.counts.add("unconstrained")
                    out.keep(r)
                continue
            asked, base = completions[at:at + k], completions[at + k:at + k + b]
            at += k + b
            answers = [c.text.strip() for c in asked]
            passed, cut = verdicts(answers, cs), [c.finish_reason == "length" for c in asked]
            ok = [all(p) and not t for p, t in zip(passed, cut)]
            chosen = ok.index(True) if any(ok) else None
            v: dict[str, Any] = {"answers": answers, "passed": passed, "truncated": cut, "chosen": chosen}
            base_passed: list[list[bool]] = []
            if b:
                base_answers = [c.text.strip() for c in base]
                base_passed = verdicts(base_answers, cs)
                v["base"] = {"answers": base_answers, "passed": base_passed,
                             "truncated": [c.finish_reason == "length" for c in base]}
            r.extra["prompt"] = prompt_for(r, r.instruction)
            r.extra["verify"] = v
            self.count(out, cs, passed, base_passed, cut)
            if chosen is None:
                out.reject(Reject(r.id, "unverified", record=r,
                                  detail=f"none of {k} answers passes every constraint "
                                         f"({', '.join(c.id for c in cs)}) uncut"))
                continue
            out.counts.add("verified")
            r.instances = [Instance(r.instances[0].input if r.instances else "", answers[chosen])]
            out.keep(r)
        return out

    @staticmethod
    def count(out: StageResult, cs, passed: list[list[bool]], base: list[list[bool]], cut: list[bool]) -> None:
        c = out.counts
        c.add("constrained")
        c.add("answers", len(passed))
        c.add("base_answers", len(base))
        c.add("truncated", sum(cut))
        c.add("truncated_passing", sum(all(p) and t for p, t in zip(passed, cut)))
        c.add("pass1_all", sum(all(p) for p in passed))
        c.add("passk_all", int(any(all(p) for p in passed)))
        for i, con in enumerate(cs):
            t = con.id
            c.add(f"asked:{t}")
            c.add(f"answers:{t}", len(passed))
            c.add(f"pass1:{t}", sum(p[i] for p in passed))
            c.add(f"passk:{t}", int(any(p[i] for p in passed)))
            if base:
                c.add(f"base_answers:{t}", len(base))
                c.add(f"base_pass:{t}", sum(p[i] for p in base))
