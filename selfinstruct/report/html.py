"""The `stats` report as one self-contained HTML file (plots embedded as base64 PNGs)."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..io.errors import UserError
from .diversity import DIVERSITY_METHOD
from .constraints import constraint_sentences, rates_table
from .judge import score_table
from .sections import (Column, Example, Report, Table, cell_text, clip, drop_table, pct, stage_table,
                       verb_table)
from .text import judge_sentences

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.6em 0 1.2em}th,td{border:1px solid #ddd;padding:3px 8px;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}.muted{color:#666;font-size:90%}
.ex td{font-size:90%;max-width:520px;word-wrap:break-word}img{max-width:100%}code{background:#f5f5f5;padding:0 3px}
.warn{color:#a33}
"""
BROWSE_URL = "http://127.0.0.1:8001/"  # where `selfinstruct browse` serves by default
TEXT_CHARS = 300  # an instance, a seed, a detail
INSTRUCTION_CHARS = 400  # an example's instruction


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def render_table(table: Table, cls: str = "") -> str:
    out = [f'<table class="{cls}"><tr>' + "".join(f"<th>{_e(c.title)}</th>" for c in table.columns) + "</tr>"]
    for row in table.rows:
        out.append("<tr>" + "".join(
            f'<td class="n">{_e(cell_text(c, v, brief=False))}</td>' if c.numeric
            else f"<td>{_e(cell_text(c, v, brief=False))}</td>" for c, v in zip(table.columns, row)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _img(name: str, alt: str, plots: dict[str, str]) -> list[str]:
    return [f"<img alt='{alt}' src='data:image/png;base64,{plots[name]}'>"] if name in plots else []


def _details(ex: Example) -> str:
    parts = [f"input: {clip(i.input, TEXT_CHARS) or '(none)'} | output: {clip(i.output, TEXT_CHARS) or '(empty)'}"
             for i in ex.instances]
    if ex.raw:
        parts.append(f"raw: {clip(ex.raw, TEXT_CHARS)}")
    for k in ("detail", "error", "kept_as"):
        if getattr(ex, k):
            parts.append(f"{k}: {clip(getattr(ex, k), TEXT_CHARS)}")
    return " || ".join(parts)


def _stages(rep: Report) -> list[str]:
    lines = ["<h2>Stages</h2>", render_table(stage_table(rep)),
         "<p class='muted'>in = out + dropped records. For bootstrap/alpaca, 'in' counts the candidate "
         "instructions parsed from the model's answers plus the answers that could not be parsed.</p>"]
    for st in rep.stages:
        if st.warning:
            lines.append(f"<p class='warn'>{_e(st.name)}: {_e(st.warning)}</p>")
        if st.instances is not None:
            i = st.instances
            lines.append(f"<p>{_e(st.name)}: {i.rows_out:,} instances kept" +
                     (f" of {i.rows_in:,} ({i.dropped:,} dropped)" if i.dropped else "") + "</p>")
        if st.export is not None:
            lines.append("<p>export: " + ", ".join(f"{_e(k)} {v:,}" for k, v in st.export.items()) + "</p>")
    drops = drop_table(rep)
    lines += ["<h3>Drops per reason</h3>", render_table(drops) if drops.rows else "<p>none</p>"]
    if rep.classifier is not None:
        cls = rep.classifier.classification
        lines.append("<h2>Classification tasks</h2>")
        lines.append(f"<p>classify stage: {cls.yes:,} of {cls.total:,} instructions are "
                 f"classification tasks ({pct(cls.share)}).")
        fc = rep.final_classification
        if fc and rep.final.stage != rep.classifier.name:
            lines.append(f" Among the final records ({_e(rep.final.stage)}): {fc.yes:,} of {fc.total:,} "
                     f"({pct(fc.share)}).")
        lines.append("</p>")
    return lines


def _lengths(rep: Report, plots: dict[str, str]) -> list[str]:
    ln = rep.length
    rows = []
    for label, s in (("generated instructions", ln.summary), ("seed instructions", ln.seed_summary),
                     ("instance inputs (final)", ln.input_summary), ("instance outputs (final)", ln.output_summary)):
        if s.n:
            rows.append([label, s.n, s.min, f"{s.median:g}", f"{s.mean:.1f}", s.max])
    table = Table([Column("words in")] + [Column(t, kind="number") for t in ("n", "min", "median", "mean", "max")],
                  rows)
    return ["<h2>Instruction length</h2>", render_table(table)] + _img("length", "instruction length histogram", plots)


def _rouge(rep: Report, plots: dict[str, str]) -> list[str]:
    lines = ["<h2>ROUGE-L to the nearest seed instruction</h2>"]
    rg = rep.rouge
    if rg is None:
        return lines + ["<p>skipped: " + _e("; ".join(rep.notes) or "no generated instructions") + "</p>"]
    s = rg.summary
    lines.append(f"<p>For each of the {s.n:,} generated instructions, the maximum ROUGE-L F1 against the "
             f"{rep.seeds.count:,} seed instructions (rouge-score's tokenizer, no stemming; exact). "
             f"Mean {s.mean:.3f}, median {s.median:.3f}, max {s.max:.3f}; {rg.above_0_5:,} above 0.5" +
             (f", {rg.above_threshold:,} above the filter threshold {rg.threshold}"
              if rg.threshold is not None else "") + ".</p>")
    lines += _img("rouge", "ROUGE-L to nearest seed histogram", plots)
    table = Table([Column("score", kind="number"), Column("id"), Column("generated instruction"),
                   Column("nearest seed")],
                  [[f"{c.score:.3f}", c.id, clip(c.instruction, TEXT_CHARS), f"{c.seed_id}: {clip(c.seed, TEXT_CHARS)}"]
                   for c in rg.closest])
    return lines + ["<h3>Most similar to a seed</h3>", render_table(table, cls="ex")]


def _diversity(rep: Report, plots: dict[str, str]) -> list[str]:
    dv = rep.diversity
    k = dv.kinds
    lines = ["<h2>Diversity: root verbs and direct objects</h2>",
         f"<p>{dv.distinct_verbs:,} distinct root verbs and {dv.distinct_pairs:,} distinct "
         f"verb-object pairs in {dv.total:,} generated instructions. "
         f"Verb + direct object: {k['verb_object']:,} ({pct(k['verb_object'] / (dv.total or 1))}); verb without a "
         f"noun object: {k['verb']:,}; questions: {k['question']:,}; other: {k['other']:,}."]
    sd = rep.seed_diversity
    if sd:
        lines.append(f" Seeds for comparison: {sd.distinct_verbs:,} verbs and {sd.distinct_pairs:,} pairs "
                 f"in {sd.total:,} instructions.")
    lines.append("</p>")
    lines += _img("diversity", "verb-object sunburst", plots)
    if dv.top:
        lines.append(render_table(verb_table(dv)))
    lines.append(f"<p class='muted'><b>Method.</b> {_e(DIVERSITY_METHOD)}</p>")
    return lines


def _judge(rep: Report) -> list[str]:
    said = judge_sentences(rep.judge)  # the terminal's words
    lines = ["<h2>Judge scores and selection</h2>", f"<p>{_e(said.pop('head'))}</p>",
             render_table(score_table(rep.judge))]
    lines += [f"<p class='{'warn' if key == 'warning' else ''}'>{_e(text)}</p>" for key, text in said.items()]
    lines.append("<p class='muted'>Sanity: for a sample of records the judge also scored the instruction with "
                 "another record's answer; a judge that reads the answers scores the real one higher. "
                 "Unreadable judgments are rejects of the judge stage, never a default score.</p>")
    return lines


def _constraints(rep: Report) -> list[str]:
    said = constraint_sentences(rep.constraints)  # the terminal's words
    lines = ["<h2>Constraints: verified answers</h2>", f"<p>{_e(said.pop('head'))}</p>",
             render_table(rates_table(rep.constraints))]
    lines += [f"<p>{_e(text)}</p>" for text in said.values()]
    lines.append("<p class='muted'>pass@1: the share of the answers that pass a constraint; pass@K: the share of "
                 "prompts with at least one of K answers that does; base rate: the share of answers to the prompt "
                 "without its constraints that already satisfy it.</p>")
    return lines


def _examples(rep: Report) -> list[str]:
    lines = ["<h2>Examples</h2>"]
    if rep.kept_examples:
        kept = Table([Column(t) for t in ("id", "instruction", "instances", "class.", "nearest")],
                     [[ex.id, clip(ex.instruction, INSTRUCTION_CHARS), _details(ex),
                       {True: "yes", False: "no"}.get(ex.is_classification, ""),
                       f"{ex.nearest.get('id')} {ex.nearest.get('score', 0):.3f}" if ex.nearest is not None else ""]
                      for ex in rep.kept_examples])
        lines += [f"<h3>Kept ({_e(rep.final.stage)})</h3>", render_table(kept, cls="ex")]
    for stage, per in rep.reject_examples.items():
        rejected = Table([Column(t) for t in ("reason", "id", "instruction", "details")],
                         [[reason, ex.id, clip(ex.instruction, INSTRUCTION_CHARS), _details(ex)]
                          for reason, exs in per.items() for ex in exs])
        lines += [f"<h3>Rejected by {_e(stage)}</h3>", render_table(rejected, cls="ex")]
    lines.append("<p class='muted'>More: <code>selfinstruct show RUNDIR/STAGE --reason REASON</code></p>")
    return lines


def render_html(rep: Report, plots: dict[str, str]) -> str:
    title = f"selfinstruct stats: {rep.config.get('name') or rep.run_dir}"
    cfg = rep.config
    lines = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
         f"<style>{_CSS}</style></head><body>", f"<h1>{_e(title)}</h1>",
         "<p class='muted'>run directory <code>" + _e(rep.run_dir) + "</code>" +
         "".join(f"; {k} <code>{_e(cfg[k])}</code>" for k in ("model", "backend", "seed") if k in cfg) +
         (f"; seeds <code>{_e(rep.seeds.path)}</code> ({rep.seeds.count})" if rep.seeds.path else "") + "</p>"]
    lines += [f"<p class='warn'>{_e(n)}</p>" for n in rep.notes]
    lines.append(f"<p>Every record, reject and export example, with facets, search and canned queries: "
                 f"<code>selfinstruct browse {_e(rep.run_dir)}</code>, then open "
                 f"<a href='{BROWSE_URL}'>{BROWSE_URL}</a>.</p>")
    lines += _stages(rep)
    if rep.length.generated:
        lines += _lengths(rep, plots)
    lines += _rouge(rep, plots)
    if rep.diversity is not None:
        lines += _diversity(rep, plots)
    if rep.judge is not None:
        lines += _judge(rep)
    if rep.constraints is not None:
        lines += _constraints(rep)
    lines += _examples(rep)
    lines.append("</body></html>")
    return "\n".join(lines)


def write_report(rep: Report, out: Path, *, plots: bool = True) -> Path:
    """Write the HTML report (atomically); plots need matplotlib."""
    out = Path(out)
    if plots:
        from .plots import make_plots
        images = make_plots(rep)
    else:
        images = {}
    text = render_html(rep, images)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as e:
        raise UserError(f"cannot write the report: {e.strerror}", path=out) from None
    return out
