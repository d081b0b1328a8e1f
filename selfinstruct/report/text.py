"""The `stats` report as plain-text tables within 100 columns (the terminal)."""
from __future__ import annotations

import textwrap
from pathlib import Path

from .constraints import constraint_sentences, rates_table
from .judge import score_table
from .sections import (Column, Report, Summary, Table, cell_text, clip, drop_table, length_edges, pct, stage_table,
                       verb_table)

WIDTH = 100  # the terminal report's lines fit this
VERB_ROWS = 10  # the terminal shows the top verbs only; the HTML report has them all
REJECT_TEXT_CHARS = 200


def render_table(table: Table, limit: int | None = None) -> str:
    """Columns padded to their widest cell, numbers right-aligned; the first `limit` rows."""
    cols = table.columns
    cells = [[c.brief or c.title for c in cols]]
    for row in table.rows[:limit]:
        texts = [cell_text(c, v, brief=True) for c, v in zip(cols, row)]
        cells.append([clip(t, c.max_chars) if c.max_chars else t for c, t in zip(cols, texts)])
    widths = [max(len(r[j]) for r in cells) for j in range(len(cols))]
    out = []
    for i, r in enumerate(cells):
        out.append("  ".join(c.rjust(widths[j]) if cols[j].numeric else c.ljust(widths[j])
                             for j, c in enumerate(r)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def bars(labels: list[str], values: list[int], width: int = 50) -> str:
    top = max(values) if values else 0
    lw = max((len(x) for x in labels), default=0)
    return "\n".join(f"  {lab.rjust(lw)} | {'#' * (round(width * v / top) if top else 0)}{' ' if v else ''}{v}"
                     for lab, v in zip(labels, values))


def hist_counts(values: list[float], edges: list[float]) -> list[int]:
    """Values per bin [edges[j], edges[j+1]); the last bin includes its upper edge."""
    counts = [0] * (len(edges) - 1)
    for v in values:
        for j in range(len(edges) - 1):
            last = j == len(edges) - 2
            if edges[j] <= v < edges[j + 1] or (last and v == edges[j + 1]):
                counts[j] += 1
                break
    return counts


def _stages(rep: Report) -> list[str]:
    lines = ["Stages  (in = out + dropped records; for bootstrap/alpaca 'in' counts candidate instructions\n"
         "        and unparseable answers)", render_table(stage_table(rep))]
    for st in rep.stages:
        if st.warning:
            lines.append(f"  ! {st.name}: {st.warning}")
        if st.generator and st.reached is False:
            lines.append(f"  ! {st.name}: stopped at max_rounds before reaching num_instructions")
    inst = [(st.name, st.instances) for st in rep.stages if st.instances is not None]
    if inst:
        lines.append("  instances kept: " + "; ".join(
            f"{s} {i.rows_out:,}" + (f" of {i.rows_in:,} ({i.dropped:,} dropped)" if i.dropped else "")
            for s, i in inst))
    for st in rep.stages:
        if st.export is not None:
            e = st.export
            for unit in ("examples", "pairs"):  # SFT examples, preference pairs, or both
                if f"train_{unit}" in e or (unit == "examples" and "train_pairs" not in e):
                    # next to SFT examples, the pairs' instructions are counted apart
                    of = "pair_" if unit == "pairs" and "train_pair_instructions" in e else ""
                    lines.append(f"  export: train {e.get(f'train_{unit}', 0):,} {unit} / "
                                 f"{e.get(f'train_{of}instructions', 0):,} instructions, eval "
                                 f"{e.get(f'eval_{unit}', 0):,} / {e.get(f'eval_{of}instructions', 0):,}")
            if "decontaminated_rouge" in e:  # a run made before the decontaminate stage
                rouge, ngram = e.get("decontaminated_rouge", 0), e.get("decontaminated_ngram", 0)
                lines.append(f"  export: left out {rouge + ngram:,} records matching benchmark prompts (ROUGE-L F1 "
                             f"> 0.7: {rouge:,}, shared 13-gram: {ngram:,}; export/decontaminated.jsonl)")
    lines.append("")
    drops = drop_table(rep)
    if drops.rows:
        lines.append("Drops per reason  (share of the stage's records in; instance level: of its instances in)")
        lines.append(render_table(drops))
    else:
        lines.append("Drops per reason: none")
    lines.append("")
    if rep.classifier is not None:
        cls = rep.classifier.classification
        lines.append(f"Classification tasks (classify stage): {cls.yes:,} of {cls.total:,} = {pct(cls.share)}")
        fc = rep.final_classification
        if fc and rep.final.stage != rep.classifier.name:
            lines.append(f"  among the final records ({rep.final.stage}): {fc.yes:,} of {fc.total:,} = {pct(fc.share)}")
        lines.append("")
    return lines


def _summary_line(s: Summary) -> str:
    return f"min {s.min}  median {s.median:g}  mean {s.mean:.1f}  max {s.max}"


def _lengths(rep: Report) -> list[str]:
    g, ln = rep.generated, rep.length
    lines = [f"Instruction length in words ({g.count:,} generated by {g.stage})",
         f"  generated: {_summary_line(ln.summary)}"]
    if ln.seed_summary.n:
        lines.append(f"  seeds:     {_summary_line(ln.seed_summary)}")
    edges = length_edges(ln.generated)
    counts = hist_counts(ln.generated, edges)
    while counts and counts[-1] == 0:
        counts.pop()
    labels = [f"{edges[j]}-{edges[j + 1] - 1}" if edges[j + 1] - edges[j] > 1 else str(edges[j])
              for j in range(len(counts))]
    lines.append(bars(labels, counts))
    for s, label in ((ln.input_summary, "instance input"), (ln.output_summary, "instance output")):
        if s.n:
            lines.append(f"  {label} words ({s.n:,} instances, {rep.final.stage}): median "
                     f"{s.median:g}  mean {s.mean:.1f}  max {s.max}")
    lines.append("")
    return lines


def _rouge(rep: Report) -> list[str]:
    rg = rep.rouge
    if rg is None:
        return ["ROUGE-L to nearest seed: skipped (" + "; ".join(rep.notes or ["no seeds"]) + ")", ""]
    s = rg.summary
    extra = f"  mean {s.mean:.3f}  median {s.median:.3f}  max {s.max:.3f}   > 0.5: {rg.above_0_5:,}"
    if rg.threshold is not None:
        extra += f"   > filter threshold {rg.threshold}: {rg.above_threshold:,}"
    edges = [j / 10 for j in range(11)]
    return [f"ROUGE-L F1 to the nearest seed instruction ({s.n:,} generated vs {rep.seeds.count:,} seeds)", extra,
            bars([f"{edges[j]:.1f}-{edges[j + 1]:.1f}" for j in range(10)], hist_counts(rg.scores, edges)), ""]


def _diversity(rep: Report) -> list[str]:
    dv = rep.diversity
    k = dv.kinds
    lines = [f"Diversity (heuristic parse, method in the report): {dv.distinct_verbs:,} distinct root verbs,",
         f"  {dv.distinct_pairs:,} distinct verb-object pairs in {dv.total:,} generated instructions",
         f"  verb+object {k['verb_object']:,} ({pct(k['verb_object'] / (dv.total or 1))}), verb only {k['verb']:,}, "
         f"question {k['question']:,}, other {k['other']:,}"]
    sd = rep.seed_diversity
    if sd:
        lines.append(f"  seeds: {sd.distinct_verbs:,} verbs, {sd.distinct_pairs:,} pairs in {sd.total:,} instructions")
    if dv.top:
        lines.append(render_table(verb_table(dv), limit=VERB_ROWS))
    lines.append("")
    return lines


def judge_sentences(js) -> dict[str, str]:
    """The judge section (a report.judge.JudgeSection) in words, one sentence per part (heading,
    selection, sanity, warning; those that apply): the terminal wraps them, the HTML report shows them."""
    s, sel, sa = js.summary, js.selection, js.sanity
    out = {"head": f"Judge ({js.rubric or '?'} rubric, {js.low}-{js.high}): {s.n:,} records scored"
                   + (f", mean {s.mean:.2f}, median {s.median:g}" if s.n else "")
                   + f"; {js.unparseable:,} unreadable (rejected)"}
    if sel is not None:
        means = ", ".join(f"{label} {m:.2f}" for label, m in (("kept", sel.kept_mean), ("dropped", sel.dropped_mean))
                          if m is not None)
        out["selection"] = (f"selection ({sel.rule}): kept {sel.kept:,} of {sel.rows_in:,}"
                            + (f"; mean judge score {means}" if means else ""))
    if sa.pairs:
        out["sanity"] = (f"sanity: {sa.pairs:,} records also scored with another record's answer: the real answer "
                         f"scored higher in {sa.higher:,} = {pct(sa.share)} (the same in {sa.ties:,}, lower in "
                         f"{sa.lower:,}" + (f"; {sa.unparseable:,} unreadable" if sa.unparseable else "") + ")")
    if sa.verdict:
        out["warning"] = f"sanity {pct(sa.share) if sa.pairs else '-'}: {sa.verdict}"
    return out


def _judge(rep: Report) -> list[str]:
    said = judge_sentences(rep.judge)
    lines = [textwrap.fill(said.pop("head"), WIDTH, subsequent_indent="  "), render_table(score_table(rep.judge))]
    for key, text in said.items():
        lead = "  ! " if key == "warning" else "  "
        lines.append(textwrap.fill(text, WIDTH, initial_indent=lead, subsequent_indent=" " * 10))
    return lines + [""]


def _constraints(rep: Report) -> list[str]:
    said = constraint_sentences(rep.constraints)
    lines = [textwrap.fill(said.pop("head"), WIDTH, subsequent_indent="  "), render_table(rates_table(rep.constraints))]
    lines += [textwrap.fill(text, WIDTH, initial_indent="  ", subsequent_indent="    ") for text in said.values()]
    return lines + [""]


def _rejects(rep: Report) -> list[str]:
    rows = []
    for stage, per in rep.reject_examples.items():
        for reason, exs in per.items():
            ex = exs[0]
            text = ex.instruction or ex.raw or ""
            if ex.level == "instance":  # its output says more than its instruction
                text = "output: " + (clip(ex.instances[0].output, REJECT_TEXT_CHARS) or "(empty)")
            rows.append([f"{stage}/{reason}", ex.id or "", clip(text, REJECT_TEXT_CHARS)])
    table = Table([Column("stage/reason", max_chars=34), Column("id", max_chars=16),
                   Column("text", max_chars=44)], rows)
    return ["Reject examples (one per reason; `selfinstruct show RUNDIR/STAGE --reason R` for more)",
            render_table(table), ""]


def format_terminal(rep: Report, report_path: Path | None = None) -> str:
    cfg = rep.config
    bits = [f"{k} {cfg[k]}" for k in ("model", "seed") if k in cfg]
    if rep.seeds.count:
        bits.append(f"{rep.seeds.count} seed tasks")
    lines = [f"Run {rep.run_dir}" + (f"  ({', '.join(bits)})" if bits else ""), ""]
    lines += _stages(rep)
    if rep.generated.count:  # the sections about generated instructions (ROUGE-L says why it is missing)
        lines += _lengths(rep) + _rouge(rep)
    if rep.diversity is not None:
        lines += _diversity(rep)
    if rep.judge is not None:
        lines += _judge(rep)
    if rep.constraints is not None:
        lines += _constraints(rep)
    if rep.reject_examples:
        lines += _rejects(rep)
    lines += [f"note: {n}" for n in rep.notes]
    if report_path:
        lines.append(f"report: {report_path}")
    return "\n".join(lines).rstrip() + "\n"
