"""`selfinstruct stats`: compute the report of a run directory (rendered by :mod:`.text`, :mod:`.html`).

* per stage: rows in/out, drops per reason (record level, instance level, and notes that kept the
  record), accept rate, requests and tokens (all from the stage manifests);
* the share of classification tasks (classify stage, and among the final records);
* instruction length in words;
* ROUGE-L F1 of every generated instruction to its nearest seed instruction (Self-Instruct Fig. 4),
  exact: a :class:`selfinstruct.dedup.RougeIndex` with ``floor=0.0`` over the seeds, which gives
  rouge-score's own max;
* diversity (Self-Instruct Fig. 2), by the heuristic of :mod:`.diversity`;
* the judge's scores, the selection and the judge sanity figure (:mod:`.judge`), when a judge ran;
* per constraint type and family: base rate, pass@1, pass@K, and the share of prompts with a verified
  answer (:mod:`.constraints`), when a verify stage ran;
* examples of kept records and of rejects, a few per reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io.records import Instance
from ..io.seeds import load_seed_tasks
from .constraints import constraint_section
from .diversity import diversity
from .judge import judge_section
from ..run.reader import Run, StageDir, check_parts, open_run, seed_path
from .sections import (DROP_LEVELS, Example, InstanceTally, LengthSection, Report, RougeMatch, RougeSection,
                       SeedInfo, Share, StageRows, StageSection, Summary)

EXAMPLES_PER_REASON = 3
KEPT_EXAMPLES = 5
CLOSEST_TO_SEEDS = 5
# Stages whose manifests hold tallies that only they write: the classify stage counts its answers, the
# instances stage creates the instances (none dropped there), export writes files instead of shards.
CLASSIFY_STAGE, INSTANCES_STAGE, EXPORT_STAGE = "classify", "instances", "export"
# runs made before the decontaminate stage: export's `decontaminate` setting left out records that copy
# benchmark prompts, as tallies in its manifest, shown as the export's record drops too (the stage's drops
# are ordinary rejects)
DECONTAMINATED = ("decontaminated_rouge", "decontaminated_ngram")
EXPORT_TALLIES = ("train_examples", "eval_examples", "train_pairs", "eval_pairs", "train_instructions",
                  "eval_instructions", "train_pair_instructions", "eval_pair_instructions") + DECONTAMINATED


def stage_section(stage: StageDir, prev_out: int | None) -> StageSection:
    """One stage's numbers; `prev_out`: the rows out of the stage before it (its expected input)."""
    counts = stage.counts
    name = stage.name
    drops = {level: counts.reasons(level) for level in DROP_LEVELS}
    dropped = counts.dropped("record")
    if name == EXPORT_STAGE:
        out = counts["train_instructions"] + counts["eval_instructions"]
        for key in DECONTAMINATED:
            if counts[key]:
                drops["record"][key] = counts[key]
                dropped += counts[key]
    else:
        out = stage.num_rows()
    rows_in = out + dropped
    if name == EXPORT_STAGE and prev_out is not None:
        # export records no drops: whatever it did not write (e.g. records without instances) is dropped
        rows_in = prev_out
        dropped = rows_in - out
    st = StageSection(
        name=name, complete=stage.complete, rows_in=rows_in, rows_out=out, dropped=dropped, drops=drops,
        requests=counts["requests"], prompt_tokens=counts["prompt_tokens"],
        completion_tokens=counts["completion_tokens"], rejects_rows=stage.num_rows(rejects=True),
        generator=stage.generator)
    # a stage that makes several records of one (grounded: instructions from a chunk) counts its `inputs`
    read = counts["inputs"] if "inputs" in counts.tallies else rows_in
    if prev_out is not None and name != EXPORT_STAGE and not st.generator and prev_out != read:
        st.warning = f"{read} in, but the stage before it has {prev_out} rows (stage not complete?)"
    if "instances" in counts.tallies:
        kept = counts["instances"]
        inst_dropped = 0 if name == INSTANCES_STAGE else counts.dropped("instance")
        st.instances = InstanceTally(kept + inst_dropped, kept, inst_dropped)
    if name == CLASSIFY_STAGE:
        yes, no = counts["classification"], counts["not_classification"]
        st.classification = Share(yes, yes + no)
    if name == EXPORT_STAGE:
        st.export = {k: counts[k] for k in EXPORT_TALLIES if k in counts.tallies}
    if st.generator and "reached" in stage.manifest:
        st.reached = stage.manifest["reached"]
    return st


def spread(items: list, k: int) -> list:
    """k items evenly spread over the list (deterministic)."""
    if len(items) <= k:
        return list(items)
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)] if k > 1 else items[:1]


def word_count(text: str) -> int:
    """Whitespace-separated words, as the bootstrap length filter counts them."""
    return len(text.split())


def rouge_to_seeds(texts: list[str], seeds: list[tuple[str, str]]) -> list[tuple[float, str | None]]:
    """(score, seed id) of the nearest seed for each text."""
    from ..dedup import RougeIndex

    index = RougeIndex(threshold=1.0, floor=0.0)  # floor 0: the exact nearest seed, always
    for key, text in seeds:
        index.add(text, key)
    out = []
    for t in texts:
        match = index.query(t)
        out.append((match.score, match.nearest))
    return out


def example(row: dict[str, Any]) -> Example:
    def text(key: str) -> Any:
        return None if row.get(key) in (None, "") else row[key]

    ex = Example(id=row.get("id"), instruction=text("instruction"), reason=text("reason"), detail=text("detail"),
                 error=text("error"), kept_as=text("kept_as"), is_classification=text("is_classification"))
    if isinstance(row.get("nearest"), dict):
        ex.nearest = row["nearest"]
    insts = row.get("instances")
    if isinstance(insts, list) and insts:
        ex.instances = [Instance(i.get("input", ""), i.get("output", "")) for i in insts[:2] if isinstance(i, dict)]
    elif "output" in row or "input" in row:  # a reject of one instance (filter stage)
        ex.instances = [Instance(row.get("input", ""), row.get("output", ""))]
        ex.level = "instance"
    if "raw" in row and "instruction" not in row:
        ex.raw = row["raw"]
    return ex


def reject_examples(run: Run) -> dict[str, dict[str, list[Example]]]:
    """stage -> reason -> the first few rejects with it."""
    out: dict[str, dict[str, list[Example]]] = {}
    for stage in run.stages:
        per: dict[str, list[Example]] = {}
        for row in stage.rows(rejects=True):
            found = per.setdefault(str(row.get("reason", "?")), [])
            if len(found) < EXAMPLES_PER_REASON:
                found.append(example(row))
        if per:
            out[stage.name] = per
    return out


def length_section(instructions: list[str], seed_instructions: list[str],
                   final_rows: list[dict[str, Any]]) -> LengthSection:
    generated = [word_count(t) for t in instructions]
    seeds = [word_count(t) for t in seed_instructions]
    inputs, outputs = [], []
    for r in final_rows:
        for inst in r.get("instances") or []:
            if isinstance(inst, dict):
                inputs.append(word_count(str(inst.get("input", ""))))
                outputs.append(word_count(str(inst.get("output", ""))))
    return LengthSection(generated, seeds, Summary.of(generated), Summary.of(seeds), Summary.of(inputs),
                         Summary.of(outputs))


def rouge_section(items: list[tuple[str, str]], seeds: list[tuple[str, str]],
                  threshold: float | None) -> RougeSection:
    """`items`: (id, instruction) generated; `seeds`: (id, instruction)."""
    scored = rouge_to_seeds([t for _, t in items], seeds)
    seed_text = dict(seeds)
    scores = [score for score, _ in scored]
    closest = sorted(range(len(scored)), key=lambda i: -scored[i][0])[:CLOSEST_TO_SEEDS]
    return RougeSection(
        scores=scores, summary=Summary.of(scores), threshold=threshold,
        above_0_5=sum(1 for x in scores if x > 0.5),
        above_threshold=sum(1 for x in scores if threshold is not None and x > threshold),
        closest=[RougeMatch(items[i][0], items[i][1], scored[i][1], seed_text.get(scored[i][1] or "", ""),
                            scored[i][0]) for i in closest])


def compute_report(run_dir: Path, *, seeds: Path | None = None) -> Report:
    """Everything the report shows; `seeds` overrides the seed file named in run.json."""
    run = open_run(run_dir)
    cfg = run.config
    stages: list[StageSection] = []
    prev_out = None
    for stage in run.stages:
        stages.append(stage_section(stage, prev_out))
        prev_out = stages[-1].rows_out
    notes: list[str] = []

    # the generated instructions: the generator stage's kept rows (else the first stage whose rows have
    # instructions: a documents run's chunks have none yet)
    with_rows = [s for s in run.stages if s.parts]
    gen = next((s for s in run.stages if s.generator), None) or next(
        (s for s in with_rows if next((r.get("instruction") for r in s.rows()), None)), None) or next(
        iter(with_rows), None)
    gen_rows = list(gen.rows()) if gen else []
    gen_items = [(str(r.get("id", "")), r["instruction"]) for r in gen_rows if isinstance(r.get("instruction"), str)]
    instructions = [t for _, t in gen_items]
    final = with_rows[-1] if with_rows else None
    final_rows = list(final.rows()) if final and final is not gen else gen_rows

    # a run that starts from another run, documents or a labelled dataset has no seed tasks to compare with:
    # its first stage read an input of its own (a position in it is in its manifest), a generator reads none
    first_read = bool(run.stages) and "inputs_done" in (run.stages[0].manifest.get("state") or {})
    from_seeds = seeds is not None or not first_read
    path = seed_path(run, seeds) if from_seeds else None
    seed_tasks = []
    if path is not None:
        seed_tasks = load_seed_tasks(path)
    elif from_seeds:
        notes.append("seed file not found (run.json names none, or it moved): use --seeds PATH "
                     "for the ROUGE-L to nearest seed section")
    seed_instructions = [s.instruction for s in seed_tasks]

    report = Report(
        run_dir=str(run.path), config={k: cfg.get(k) for k in ("name", "model", "backend", "seed") if k in cfg},
        stages=stages, notes=notes, seeds=SeedInfo(str(path) if path else None, len(seed_tasks)),
        generated=StageRows(gen.name if gen else None, len(instructions)),
        final=StageRows(final.name if final else None, len(final_rows)),
        length=length_section(instructions, seed_instructions, final_rows),
        kept_examples=[example(r) for r in spread(final_rows, KEPT_EXAMPLES)],
        reject_examples=reject_examples(run))

    labels = [r["is_classification"] for r in final_rows if isinstance(r.get("is_classification"), bool)]
    if labels:
        report.final_classification = Share(sum(labels), len(labels))
    if seed_tasks and instructions:
        threshold = ((cfg.get(gen.name) or {}).get("filters") or {}).get("rouge_threshold")
        report.rouge = rouge_section(gen_items, [(s.id, s.instruction) for s in seed_tasks], threshold)
    report.judge = judge_section(run)
    report.constraints = constraint_section(run)
    if instructions:
        report.diversity = diversity(instructions)
        if seed_tasks:
            report.seed_diversity = diversity(seed_instructions)
    # last: a shard the report read that is unreadable was named above with its line; this finds the rest
    check_parts(run)
    return report
