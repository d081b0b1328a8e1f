"""Decontamination: find generated tasks whose user prompt is (part of) a benchmark prompt.

A text (an instruction, or one user turn: the instruction with an instance's input) is flagged against a
benchmark prompt by the first rule that fires:

* ``rouge``: its ROUGE-L F1 with the prompt is > 0.7 (the project's exact rouge-score F1:
  :class:`selfinstruct.dedup.RougeIndex` built over the benchmark prompts and queried);
* ``ngram``: it shares a 13-gram (13 consecutive tokens, lowercased ``[a-z0-9]+`` words: the same
  :func:`selfinstruct.dedup.tokenize`) with the prompt. ROUGE-L F1 alone misses a short instruction
  copied out of a long benchmark prompt (recall is high, precision is tiny); the 13-gram does not.
  A text shorter than 13 tokens cannot share a 13-gram: it is flagged when its whole token sequence
  appears, contiguous, in a benchmark prompt. Symmetrically, a benchmark prompt shorter than 13 tokens
  is found when its whole token sequence appears in the text. A text without any token is never flagged.

A record is flagged when its instruction or any of its user turns is; ``rouge`` wins over ``ngram`` when
both fire, so the counts of the two reasons add up to the records flagged.

Used by the ``decontaminate`` stage (generate/stages/decontaminate.py: the matches are its rejects) and by
``selfinstruct decontaminate`` (a scan of a run's records that changes nothing).
"""
from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..dedup import RougeIndex, rouge_l_f, tokenize
from ..io.formats import user_prompt
from ..io.errors import UserError
from ..io.records import Record
from ..run.reader import open_run
from .benchmarks import IFBENCH, benchmark_prompts, ifbench_file

ROUGE_THRESHOLD = 0.7
NGRAM = 13
REASONS = ("rouge", "ngram")
# the reject reasons of the decontaminate stage (and, in runs made before it, the export's tallies)
COUNT_KEYS = {"rouge": "decontaminated_rouge", "ngram": "decontaminated_ngram"}
STAGE = "decontaminate"  # the pipeline stage that drops what this finds; the card and the scan look for it
SOURCES = "benchmarks"  # its manifest's key: what it checked against (`Decontaminator.sources`)


@dataclass(frozen=True)
class Hit:
    """Why a text was flagged, and by which benchmark prompt."""
    reason: str  # "rouge" or "ngram"
    benchmark: str  # as named: "ifbench" or the file
    index: int  # the prompt's position in benchmark_prompts(benchmark)
    prompt: str  # the benchmark prompt
    text: str  # the generated text that matched (the instruction, or a user turn)
    score: float  # ROUGE-L F1 of text against prompt (also for an n-gram hit: shows why ROUGE missed it)
    shared: str = ""  # ngram: the shared words (a 13-gram, or the whole shorter sequence)

    def fields(self) -> dict[str, Any]:
        """The fields of the decontaminate stage's reject: which benchmark prompt matched, and how."""
        out = {"benchmark": self.benchmark, "benchmark_index": self.index, "benchmark_prompt": self.prompt,
               "score": round(self.score, 4), "text": self.text}
        if self.shared:
            out["shared"] = self.shared
        return out

    def detail(self) -> str:
        """Why, in words (`selfinstruct show` prints it)."""
        where = f"{self.benchmark} prompt {self.index}"
        if self.reason == "rouge":
            return f"ROUGE-L F1 {self.score:.2f} with {where}"
        return f"shares {self.shared!r} with {where} (ROUGE-L F1 {self.score:.2f})"


def benchmark_name(spec: str) -> str:
    """How a benchmark is named in hits and counts: a known name in lower case, a file as given."""
    return IFBENCH if str(spec).lower() == IFBENCH else str(spec)


def _joined(tokens: list[str]) -> str:
    # spaces on both sides: a substring match is then a match of whole, consecutive tokens
    return " " + " ".join(tokens) + " "


class Decontaminator:
    """The benchmark prompts, indexed for both rules. ``benchmarks``: name -> its prompts."""

    def __init__(self, benchmarks: dict[str, list[str]], *, threshold: float = ROUGE_THRESHOLD, n: int = NGRAM):
        self.n = n
        self.names = list(benchmarks)
        self.sizes = {name: len(prompts) for name, prompts in benchmarks.items()}
        self._prompts: list[tuple[str, int, str]] = []  # (benchmark, index, prompt) by global number
        self._tokens: list[list[str]] = []
        self._index = RougeIndex(threshold)
        self._ngrams: dict[tuple[str, ...], int] = {}  # 13-gram -> first prompt having it
        self._short: list[tuple[int, str]] = []  # prompts shorter than n tokens: (number, joined tokens)
        pieces, self._starts = [], []
        offset = 0
        for name, prompts in benchmarks.items():
            for i, prompt in enumerate(prompts):
                g = len(self._prompts)
                tokens = tokenize(prompt)
                self._prompts.append((name, i, prompt))
                self._tokens.append(tokens)
                self._index.add(prompt, str(g))
                for k in range(len(tokens) - n + 1):
                    self._ngrams.setdefault(tuple(tokens[k:k + n]), g)
                if 0 < len(tokens) < n:
                    self._short.append((g, _joined(tokens)))
                # one string for all prompts, "\n"-separated (never inside a query): a short text is
                # looked up with one C-level find instead of one per prompt
                piece = _joined(tokens)
                self._starts.append(offset)
                pieces.append(piece)
                offset += len(piece) + 1
        self._haystack = "\n".join(pieces)

    @classmethod
    def load(cls, specs: Iterable[str], **kw) -> "Decontaminator":
        """From benchmark names or JSONL files (:func:`selfinstruct.evals.benchmarks.benchmark_prompts`)."""
        return cls({name: benchmark_prompts(name) for name in dict.fromkeys(map(benchmark_name, specs))}, **kw)

    def __len__(self) -> int:
        return len(self._prompts)

    def _hit(self, reason: str, g: int, text: str, tokens: list[str], shared: str = "") -> Hit:
        name, i, prompt = self._prompts[g]
        return Hit(reason, name, i, prompt, text, rouge_l_f(tokens, self._tokens[g]), shared)

    def rouge_hit(self, text: str) -> Hit | None:
        match = self._index.query(text)
        if not match.duplicate:
            return None
        name, i, prompt = self._prompts[int(match.nearest)]
        return Hit("rouge", name, i, prompt, text, match.score)

    def ngram_hit(self, text: str) -> Hit | None:
        tokens = tokenize(text)
        n = self.n
        if not tokens:
            return None
        joined = _joined(tokens)
        if len(tokens) >= n:
            for k in range(len(tokens) - n + 1):
                g = self._ngrams.get(tuple(tokens[k:k + n]))
                if g is not None:
                    return self._hit("ngram", g, text, tokens, " ".join(tokens[k:k + n]))
        else:
            pos = self._haystack.find(joined)
            if pos >= 0:
                g = bisect.bisect_right(self._starts, pos) - 1
                return self._hit("ngram", g, text, tokens, " ".join(tokens))
        for g, short in self._short:
            if short in joined:
                return self._hit("ngram", g, text, tokens, short.strip())
        return None

    def check_text(self, text: str) -> Hit | None:
        return self.rouge_hit(text) or self.ngram_hit(text)

    def check_record(self, record: Record) -> Hit | None:
        """The instruction alone and each user turn (instruction + input), as the export writes them."""
        texts = [record.instruction.strip()]
        texts += [user_prompt(record.instruction, inst.input) for inst in record.instances or []]
        texts = list(dict.fromkeys(texts))
        for check in (self.rouge_hit, self.ngram_hit):
            for t in texts:
                hit = check(t)
                if hit is not None:
                    return hit
        return None

    def sources(self) -> list[dict[str, Any]]:
        """What was checked against (for a manifest): name, file, its sha256, number of prompts."""
        out = []
        for name in self.names:
            path = ifbench_file() if name == IFBENCH else Path(name).expanduser()
            out.append({"benchmark": name, "file": str(path), "prompts": self.sizes[name],
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
        return out


# ------------------------------------------------------------------------------------ a run's records

@dataclass
class Scan:
    """`selfinstruct decontaminate`: what was found in a run's final records."""
    run_dir: Path
    stage: str  # the stage whose records were checked
    records: int
    benchmarks: dict[str, int]  # name -> prompts
    hits: list[tuple[str, str, Hit]] = field(default_factory=list)  # (id, instruction, hit)
    # a run made before the decontaminate stage: its export's own `decontaminate` setting, which left out
    # what it matched after the stage scanned here
    export_drops: list[str] = field(default_factory=list)
    config_file: str | None = None
    stages: list[str] = field(default_factory=list)  # the run's stage list (for the --drop advice)
    dropping: list[str] = field(default_factory=list)  # the benchmarks of its decontaminate stage, if any

    @property
    def counts(self) -> Counter:
        return Counter(h.reason for _, _, h in self.hits)

    @property
    def exported_clean(self) -> bool:
        """True when no flagged record reaches export/: none flagged, or (a run made before the decontaminate
        stage) the export's own setting names the benchmark of every hit (it ran this check on them)."""
        return all(h.benchmark in self.export_drops for _, _, h in self.hits)


def scan_run(run_dir: Path, specs: list[str]) -> Scan:
    """Check the final records of a run (its last stage with record shards: decontaminate or filter, else the
    generator)."""
    run = open_run(run_dir)
    with_rows = [s for s in run.stages if s.parts]
    if not with_rows:
        raise UserError("no stage with records yet (run `selfinstruct generate` first)", path=run_dir)
    final = with_rows[-1]
    deco = Decontaminator.load(specs)
    scan = Scan(Path(run_dir), final.name, 0, dict(deco.sizes), config_file=run.info.get("config_file"),
                stages=list(run.config.get("stages") or [s.name for s in run.stages]))
    if STAGE in scan.stages:
        scan.dropping = [benchmark_name(x) for x in (run.config.get(STAGE) or {}).get("benchmarks") or []]
    old_export = (run.config.get("export") or {}).get("decontaminate")  # (the setting before the stage)
    exported = next((s for s in run.stages if s.name == "export" and s.complete), None)
    if exported is not None and old_export:
        scan.export_drops = [benchmark_name(x) for x in old_export]
    for row in final.rows():
        if not isinstance(row.get("instruction"), str) or "id" not in row:
            continue  # not a task record (a stage of a plugin): nothing to compare
        rec = Record.from_json(row)
        scan.records += 1
        hit = deco.check_record(rec)
        if hit is not None:
            scan.hits.append((rec.id, rec.instruction, hit))
    return scan


def drop_command(scan: Scan) -> str:
    """The `generate` command that leaves the flagged records out: the decontaminate stage (before export)
    with the benchmarks scanned (and those it had). The stages before it keep their shards; it and the
    ones after it are run again (--force: their input changed)."""
    benchmarks = ", ".join(dict.fromkeys([*scan.dropping, *scan.benchmarks]))
    sets = []
    if STAGE not in scan.stages:
        stages = list(scan.stages)
        stages.insert(stages.index("export") if "export" in stages else len(stages), STAGE)
        sets.append(f"--set 'stages=[{', '.join(stages)}]'")
    sets.append(f"--set '{STAGE}.benchmarks=[{benchmarks}]'")
    return f"selfinstruct generate -c {scan.config_file or 'CONFIG'} -o {scan.run_dir} {' '.join(sets)} --force"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_scan(scan: Scan, *, drop: bool = False, examples: int = 5) -> str:
    c = scan.counts
    total = len(scan.hits)
    share = f"{100 * total / scan.records:.1f}%" if scan.records else "-"
    against = ", ".join(f"{name} ({n:,} prompts)" for name, n in scan.benchmarks.items())
    lines = [f"{scan.run_dir}/{scan.stage}: {scan.records:,} records checked against {against}", "",
             f"  {'flagged by':<46}{'records':>8}",
             f"  {'-' * 46}{'-' * 8}",
             f"  {'ROUGE-L F1 > ' + str(ROUGE_THRESHOLD):<46}{c['rouge']:>8,}",
             f"  {'shared 13-gram (or contained, under 13 words)':<46}{c['ngram']:>8,}",
             f"  {'total':<46}{total:>8,}  {share}"]
    if scan.hits:
        lines += ["", "examples:"]
        for rid, _, h in scan.hits[:examples]:
            lines.append(f"  {rid}  {h.reason} (F1 {h.score:.2f})  {h.benchmark}[{h.index}]")
            lines.append(f"    generated: {_clip(h.text, 90)}")
            lines.append(f"    benchmark: {_clip(h.prompt, 90)}")
            if h.shared:
                lines.append(f"    shared:    {_clip(h.shared, 90)}")
    lines.append("")
    if not scan.hits:
        lines.append("clean: no record matches a benchmark prompt")
    elif scan.exported_clean:
        lines.append(f"export/ already leaves them out (export.decontaminate: [{', '.join(scan.export_drops)}]; "
                     "listed in export/decontaminated.jsonl)")
    elif drop:
        lines += [f"to leave them out, run the `{STAGE}` stage before export with these benchmarks (nothing here "
                  "was changed; the stages before it keep their shards):",
                  f"  {drop_command(scan)}",
                  f"or put `{STAGE}` before `export` in the config's `stages`, with a `{STAGE}: {{benchmarks: "
                  f"[...]}}` section, and re-run with --force"]
    else:
        lines.append(f"{total:,} flagged record(s) reach export/; --drop shows how to leave them out")
    return "\n".join(lines) + "\n"
