"""The generated part of a dataset card, in markdown: how to load the data, what each config holds, and
how the run made it (models and their licenses, seed file, hashes, stages and drops, judge and selection,
constraint types and their pass rates, decontamination). Built from `hub.facts.RunFacts` and
`hub.configs.DataLayout`; the stage, drop, judge and constraint tables and sentences are the ones
`selfinstruct stats` prints (report.sections, report.text, report.constraints)."""
from __future__ import annotations

import json
from typing import Any

from ..report.constraints import constraint_sentences, rates_table
from ..report.judge import score_table
from ..report.sections import Table, cell_text, drops_table, stages_table
from ..report.text import judge_sentences
from .configs import PARQUET, DataLayout
from .facts import RunFacts

FORMAT_TEXT = {
    "messages": "chat `messages` (`id`, `messages`: the user turn, then the assistant's answer)",
    "prompt_completion": "TRL's conversational prompt-completion (`id`, `prompt`, `completion`): the prompt "
                         "is masked out of the loss",
    "alpaca": "Alpaca's `instruction`, `input`, `output`",
    "preference": "preference pairs (a chosen and a rejected answer per prompt)",
}
LICENSE_DOCS = "https://huggingface.co/docs/hub/repositories-licenses"


def markdown_table(table: Table) -> str:
    """A report table as a markdown table (the full column titles, as the HTML report has them)."""
    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(c.title for c in table.columns) + " |",
             "|" + "|".join("---:" if c.numeric else "---" for c in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(cell_text(c, v, brief=False)) for c, v in zip(table.columns, row)) + " |"
              for row in table.rows]
    return "\n".join(lines)


def _code(x: Any) -> str:
    return f"`{x}`"


def loading(layout: DataLayout) -> list[str]:
    if not layout.configs:
        return ["## Loading", "", "This export holds no examples yet: no config to load."]
    first = next(c for c in layout.configs if c.default).name
    out = ["## Loading", "", "```python", "from datasets import load_dataset", "",
           f'ds = load_dataset("USER/NAME", "{first}")  # on the Hub; or the export folder\'s path',
           'print(ds["train"][0])', "```", "",
           "One config per format, each with the splits it has rows for (`train`, and `eval`: held out by "
           "instruction, so no instruction is in both):", "",
           "| config | format | train | eval | files |", "|---|---|---:|---:|---|"]
    for c in layout.configs:
        name = f"`{c.name}`" + (" (default)" if c.default else "")
        splits = [f"{c.split(s).rows:,}" if c.split(s) else "-" for s in ("train", "eval")]
        files = ", ".join(_code(f.path) for f in c.files)
        out.append(f"| {name} | {FORMAT_TEXT.get(c.name, c.name)} | {splits[0]} | {splits[1]} | {files} |")
    if layout.file_type == PARQUET:
        out += ["", "The configs point at the Parquet copies; the JSONL/JSON files next to them hold the same rows."]
    if layout.left_out:
        out += ["", "Not in the configs: " + "; ".join(f"{_code(f)} ({why})" for f, why in layout.left_out.items())
                + "."]
    return out


def provenance(facts: RunFacts) -> list[str]:
    out = ["## How it was made", "",
           f"- made with selfinstruct {facts.version} (Self-Instruct, Wang et al. 2022: a model writes "
           "instructions from seed tasks, answers them, and the pipeline filters what it wrote)"]
    if facts.seed_file:
        out.append(f"- seed tasks: {_code(facts.seed_file)}" + (f", sha256 {_code(facts.seed_sha256)}"
                                                              if facts.seed_sha256 else ""))
    if facts.seed is not None:
        out.append(f"- global seed: {facts.seed} (every request's seed derives from it and the record id)")
    if facts.config_sha256:
        out.append(f"- pipeline config sha256: {_code(facts.config_sha256)} (the config as the run's `run.json` "
                   "records it)")
    out.append(f"- stage hash of `{facts.stage}`: {_code(facts.stage_hash)} (its settings and, through "
               "its input, every stage before it)")
    s = facts.settings
    if "eval_fraction" in s:
        out.append(f"- eval split: {float(s['eval_fraction']):.0%} of the instructions, by a seeded hash of the id")
    if s.get("system_prompt"):
        out.append(f"- every example starts with the system prompt {_code(s['system_prompt'])}")
    return out


def models(facts: RunFacts) -> list[str]:
    if not facts.models:
        return []
    used: dict[tuple[str, str | None], list[str]] = {}  # (model, backend) -> its stages, in run order
    for m in facts.models:
        used.setdefault((m.model, m.backend), []).append(m.stage)
    licenses = {m.model: m.license for m in facts.models}
    out = ["### Models", "", "| model | stages | backend | model license | read from |", "|---|---|---|---|---|"]
    for (model, backend), names in used.items():
        lic = licenses[model]
        out.append(f"| {_code(model)} | {', '.join(names)} | {backend or '-'} | {lic.text()} | {lic.source} |")
    return out + ["", "Text a model generates may be bound by that model's license or terms of use: check them "
                      "before publishing the data or training on it."]


def stages(facts: RunFacts) -> list[str]:
    out = ["### Stages", "", "Records in and out of each stage (for a generator, 'in' counts the candidate "
           "instructions and unreadable answers), as `selfinstruct stats` reports them:", "",
           markdown_table(stages_table(facts.stages))]
    drops = drops_table(facts.stages)
    if drops.rows:
        out += ["", "Drops by reason (`instance`: one example of a record; `note`: the record was kept with a "
                    "default):", "", markdown_table(drops)]
    return out


def judge(facts: RunFacts) -> list[str]:
    if facts.judge is None:
        return []
    said = judge_sentences(facts.judge)
    out = ["### Judge and selection", "", said.pop("head") + ".", "", markdown_table(score_table(facts.judge))]
    if facts.judge_settings:
        out += ["", "Judge settings: " + ", ".join(f"{k} {_code(v if isinstance(v, str) else json.dumps(v))}"
                                        for k, v in facts.judge_settings.items())
                + "."]
    out += [""] + [f"- {text}" for text in said.values()]
    return out


def constraints(facts: RunFacts) -> list[str]:
    """The constraint types the verified answers follow, and their pass rates (a run with `verify`)."""
    cs = facts.constraints
    if cs is None:
        return []
    said = constraint_sentences(cs)
    return (["### Constraints and verified answers", "", said.pop("head") + ". Every kept answer to a constrained "
             "prompt passes all of its constraints (checked in code, strict); pass@1 is the share of the answers "
             "that pass a type, pass@K the share of prompts with at least one, the base rate the share of answers "
             "to the prompt without its constraints that already satisfy it:", "", markdown_table(rates_table(cs)),
             ""] + [f"- {text}" for text in said.values()])


def decontamination(facts: RunFacts) -> list[str]:
    d = facts.decontamination
    if d is None:
        return ["### Decontamination", "", "Not checked against benchmark prompts (the run has no `decontaminate` "
                "stage)."]
    against = ", ".join(f"{_code(b.name)} ({b.prompts:,} prompts, sha256 {_code(b.sha256)})"
                        for b in d.benchmarks)
    # a run made before the stage existed: its export left them out and listed them in a file of its own
    where = ("listed in `decontaminated.jsonl`" if d.stage == "export" else
             f"the rejects of the `{d.stage}` stage, reasons `decontaminated_rouge` and `decontaminated_ngram`")
    return ["### Decontamination", "",
            f"Checked against {against}: {d.left_out.get('rouge', 0):,} records left out for a ROUGE-L F1 > 0.7 "
            f"with a benchmark prompt, {d.left_out.get('ngram', 0):,} for a shared 13-gram ({where})."]


def license_section(license: Any) -> list[str]:
    if license:
        return ["## License", "", f"The data is published under {_code(license)} (the `license` of the metadata "
                "above). The models' licenses above may add terms of their own."]
    return ["## License", "", "No license is stated. Set `export.license` in the pipeline config (a Hub "
            f"license id such as `cc-by-4.0`, see {LICENSE_DOCS}) or add `license:` to the metadata above "
            "(kept on re-export). The models' licenses above may restrict how the data can be used."]


def private_warning(facts: RunFacts) -> list[str]:
    d = facts.documents
    if d is None or not d.private:
        return []
    return ["> **Made from private documents.** This data was generated from the files listed under *Source "
            "documents* (`documents.private: true`): its instructions and answers repeat what they say. Publish it "
            "only if you may publish those documents."]


def documents(facts: RunFacts) -> list[str]:
    d = facts.documents
    if d is None:
        return []
    read = [f for f in d.files if f.rejected is None]
    out = ["### Source documents", "",
           f"{len(read)} file(s) read" + (f", {len(d.files) - len(read)} left out" if len(read) < len(d.files) else "")
           + f" ({'private' if d.private else 'not marked private'}):", "",
           "| file | sha256 | chunks |", "|---|---|---:|"]
    out += [f"| {_code(f.path)} | {_code(f.sha256[:16]) if f.sha256 else ''} | "
            f"{f.chunks if f.rejected is None else 'left out: ' + f.rejected} |" for f in d.files]
    return out


def datasets(facts: RunFacts) -> list[str]:
    if not facts.datasets:
        return []
    return ["### Source datasets", "", "| dataset | used as | licence |", "|---|---|---|",
            *[f"| {_code(d.file)} | {d.role} | {d.license} |" for d in facts.datasets], "",
            "The licence of the data above binds what is made from it: check it before publishing."]


def render_body(facts: RunFacts, layout: DataLayout, license: Any) -> str:
    """The generated section; `license`: the card's license once merged (None: none stated)."""
    parts = [private_warning(facts), loading(layout), provenance(facts), documents(facts), datasets(facts), models(facts),
             stages(facts), judge(facts), constraints(facts), decontamination(facts), license_section(license)]
    return "\n\n".join("\n".join(p) for p in parts if p)
