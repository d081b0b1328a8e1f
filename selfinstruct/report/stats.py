"""`selfinstruct stats`: numbers and plots about a run directory.

* per stage: rows in/out, drops per reason (record level, instance level, and notes that kept the
  record), accept rate, requests and tokens (all from the stage manifests);
* the share of classification tasks (classify stage, and among the final records);
* instruction length in words (whitespace-separated, as the bootstrap length filter counts them);
* ROUGE-L F1 of every generated instruction to its nearest seed instruction (Self-Instruct Fig. 4),
  exact: a :class:`selfinstruct.rouge.RougeIndex` with ``floor=0.0`` over the seeds, which gives
  rouge-score's own max;
* diversity (Self-Instruct Fig. 2): distinct root verbs and verb / direct-object pairs. No
  constituency parser with a model installs from PyPI here, so :func:`verb_object` is a transparent
  heuristic, described in :data:`DIVERSITY_METHOD` (and in the report);
* examples of kept records and of rejects, a few per reason.

:func:`compute_stats` returns a plain dict; :func:`format_terminal` renders it as plain-text
tables within 100 columns; :func:`write_report` writes a self-contained HTML report with the PNG plots
(matplotlib, Agg backend, imported only there) embedded as base64.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from ..io.errors import UserError
from ..io.shards import MANIFEST

KNOWN_ORDER = ["bootstrap", "alpaca", "classify", "instances", "filter", "export"]
GENERATORS = ("bootstrap", "alpaca")
DROP_PREFIXES = {"reject:": "record", "instance:": "instance", "note:": "note"}
EXAMPLES_PER_REASON = 3
KEPT_EXAMPLES = 5
ROUGE_BINS = 20  # bins of 0.05 on [0, 1]


# =====================================================================================
# diversity: verb / direct object, a transparent heuristic
# =====================================================================================

DIVERSITY_METHOD = (
    "Root verb and direct object come from a rule-based heuristic (no parser with a model installs from "
    "PyPI here; the paper used the Berkeley Neural Parser). The instruction is split into sentences and "
    "each is examined in order. A leading introductory phrase that starts with a preposition or participle "
    "('Given ...', 'Using ...', 'In ...', 'For ...', 'If ...') is dropped up to its first comma outside "
    "parentheses, then adverbs such as 'please', 'now', 'briefly' are skipped. A sentence ending in '?' "
    "that starts with a wh-word or an auxiliary ('What', 'How', 'Is', 'Do', ...) is a question. Otherwise, "
    "if its first word is in a lexicon of about 300 imperative task verbs (write, give, explain, classify, "
    "...), that word is the root verb; a particle after it ('come up with', 'pull out') is skipped. The "
    "direct object is the head of the noun phrase after the verb: indirect-object pronouns ('me', 'them', "
    "also 'to me'), determiners, quantifiers, numbers and 'only' are skipped; the phrase ends at "
    "punctuation, a preposition, conjunction, relative or wh-word, pronoun or determiner, a participle "
    "(-ing/-ed) or a closing adverb (-ly), except that coordinated common adjectives are crossed ('a "
    "short, funny dialogue'); its last word is the head ('Write a short poem about the sea' -> write / "
    "poem; 'Give me three tips for ...' -> give / tips; 'Generate a list of ...' -> generate / list). "
    "No object is recorded for a pronoun ('Make it shorter'), a clause ('Describe how ...'), a bare "
    "gerund ('Keep going'), 'yes'/'true' or a bare 'following'. The first sentence with a verb decides; "
    "an instruction without one is a 'question' if one of its sentences is, else 'other' (a statement). "
    "Words are lower-cased and not lemmatized ('tip' and 'tips' are different objects)."
)

_VERBS = set("""
accept act add address adjust advise allocate alphabetize analyse analyze annotate answer apologize
apply approve argue arrange ask assemble assess assign assist balance book brainstorm break build
calculate calibrate capitalize caption categorise categorize change characterize check choose cite
boil clarify classify clean code collect combine come comment compare compile complete compose compute
condense confirm congratulate connect consider construct contrast continue convert convince copy
correct count craft create critique cut debate debug decide decipher decode decrypt deduce defend
define delete demonstrate depict derive describe design detail detect determine develop devise
diagnose dictate discuss distinguish divide do double-check draft edit elaborate eliminate
emphasize encode encrypt enumerate estimate evaluate examine expand explain explore express extend
extract figure fill filter find finish fix flag follow forecast form format formulate frame
generate get give grade greet group guess help highlight hypothesize identify illustrate imagine
implement improve include indicate infer inform insert instruct interpret introduce invent invite
itemize judge justify keep label let list locate look make mark match measure mention merge modify
multiply name narrate negate normalize note number offer optimize order organise organize outline
paraphrase parse perform persuade pick pitch place plan play point polish predict prepare present
pretend prioritize produce pronounce proofread propose prove provide pull punctuate put quote rank
rate read reason recall recite recognize recommend recount redact reduce refactor refine reformat
reframe reformulate rename render reorder reorganize repeat rephrase replace reply report
represent request resolve respond restate restructure retell retrieve return reverse review revise
rewrite round route rule say schedule score search select sell separate sequence set share
shorten show simplify simulate solve sort specify spell split start state structure substitute
subtract suggest sum summarise summarize supply swap tabulate tag take talk teach tell test thank
think tokenize total trace track transcribe transform translate transliterate trim turn type
underline unscramble update use validate verify vote walk warn weigh welcome wish word write
""".split())

_QUESTION_WORDS = set("""
what which who whom whose why how when where whether is are was were am do does did can could would
should will shall may might must have has had isn't aren't doesn't don't didn't can't won't
""".split())

_INTRO = set("""
given using in on for from according based if when whenever before after with without as while once
considering assuming starting ignoring to by under during suppose supposing
""".split())

_ADVERBS = set("""
please kindly now also then just briefly quickly simply carefully politely first next finally
again additionally lastly concisely clearly roughly further instead
""".split())

_PARTICLES = {"up", "out", "down", "off", "over", "back", "away", "through", "together"}

_DETERMINERS = set("""
a an the this that these those some any each every all both either neither no my your his her its
our their another other such several many few more most much various certain
""".split())

_NUMBER_WORDS = set("""
one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty fifty hundred
single couple pair dozen
""".split())

_INDIRECT = {"me", "us", "him", "her", "them", "you"}

_LIMITERS = {"only", "just", "exactly", "roughly", "approximately"}

_ADJECTIVES = set("""
short long brief simple new old good bad big small funny quick clear formal informal casual friendly
polite firm warm kind creative catchy original detailed concise persuasive professional fun simple
easy hard healthy cheap fast slow serious silly happy sad unique interesting
""".split())

_STOPS = set("""
about above across after against along among around as at before behind below beneath beside
between beyond by during for from in inside into like near of off on onto out outside over per
since than through throughout to toward towards under until up upon via with within without and
or but nor so yet that which who whom whose where when why how what whether if because while
using based given is are was were be been being will would should can could may might must
except including excluding besides regarding concerning despite amongst beside unlike versus vs till
plus minus unless although though whereas whenever wherever whichever whatever even only also just
not very too please then now here there i you we they he she it down away back together apart aside
""".split()) | _DETERMINERS

_NO_OBJECT = {"it", "them", "this", "that", "these", "those", "something", "anything", "everything",
              "nothing", "one", "ones", "yes", "true", "false", "following", "given", "above", "below", "previous", "next",
              "me", "us", "him", "her", "you", "yourself", "itself", "themselves", "myself"}

_PRONOUNS = {"it", "something", "anything", "everything", "nothing", "someone", "anyone", "everyone",
             "yourself", "itself", "themselves", "myself", "ourselves", "i", "we", "they", "she", "he"}

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+(?:[.,:/]\d+)*|[^\sA-Za-z\d]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


class VerbObject(NamedTuple):
    kind: str  # "verb_object" | "verb" | "question" | "other"
    verb: str | None = None
    obj: str | None = None


def _words(sentence: str) -> list[str]:
    toks = []
    for t in _TOKEN.findall(sentence):
        t = t.lower()
        if t.endswith("'s"):
            t = t[:-2]
        toks.append(t)
    return toks


def _strip_intro(toks: list[str]) -> list[str]:
    """Drop a leading introductory phrase ("Given X, ...", "In Python, ...") and adverbs."""
    for _ in range(3):
        if toks and (toks[0] in _INTRO or toks[0].endswith("ly") and len(toks) > 1 and toks[1] == "speaking"):
            depth, cut = 0, None
            for j, t in enumerate(toks):  # the first comma outside parentheses
                depth += (t in "([{") - (t in ")]}")
                if t == "," and depth <= 0:
                    cut = j
                    break
            if cut is not None:
                toks = toks[cut + 1:]
                continue
        break
    while toks and (toks[0] in _ADVERBS or toks[0] in {",", "-", ":", "*", "\"", "'"}):
        toks = toks[1:]
    return toks


def _object(toks: list[str]) -> str | None:
    i = 0
    while i < len(toks) and toks[i] in _INDIRECT:
        i += 1
    while i < len(toks) and (toks[i] in _DETERMINERS or toks[i] in _NUMBER_WORDS or toks[i][0].isdigit()
                             or toks[i] in _LIMITERS
                             or (toks[i] in {"about", "around"} and i + 1 < len(toks)  # "about 50 words"
                                 and (toks[i + 1][0].isdigit() or toks[i + 1] in _NUMBER_WORDS))
                             or (toks[i] == "of" and i > 0 and toks[i - 1] in _DETERMINERS | _NUMBER_WORDS)):
        i += 1
    if i < len(toks) and toks[i] in _PRONOUNS:  # "Make it shorter"
        return None
    bare = i == 0  # no determiner, number or pronoun before the phrase
    span: list[str] = []
    while i < len(toks) and len(span) < 4:
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ","
        if span and span[-1] in _ADJECTIVES and t in {",", "and", "but", "or"} and nxt[0].isalpha() \
                and nxt not in _STOPS:
            i += 1  # "a short, funny dialogue", "a polite but firm complaint"
            continue
        if not t[0].isalpha() or t in _STOPS:
            break
        if span and len(t) > 4 and (t.endswith("ing") or t.endswith("ed")):
            break  # a participle after the noun: "a poem describing ..."
        if span and len(t) > 4 and t.endswith("ly") and "-" not in t and (not nxt[0].isalpha() or nxt in _STOPS):
            break  # an adverb closing the phrase: "... the instructions carefully, so ..."
        span.append(t)
        i += 1
    if not span:
        return None
    head = span[-1]
    if head in _NO_OBJECT or head in _PRONOUNS or len(head) < 2:
        return None
    if bare and len(span) == 1 and head.endswith("ing"):  # a gerund complement: "Keep going"
        return None
    return head


def _is_question(sentence: str, toks: list[str]) -> bool:
    return (sentence.rstrip().endswith("?") or bool(toks) and toks[0] in _QUESTION_WORDS
            or len(toks) > 1 and toks[0] in _INTRO and toks[1] in _QUESTION_WORDS)  # "In which ..."


def verb_object(instruction: str) -> VerbObject:
    """Root verb and direct object of an instruction, by the heuristic of :data:`DIVERSITY_METHOD`."""
    sentences = [s for s in _SENTENCE_END.split(instruction.strip()) if s.strip()]
    question = False
    for s in sentences:
        toks = _strip_intro(_words(s))
        if not toks:
            continue
        if s.rstrip().endswith("?") and toks[0] in _QUESTION_WORDS:  # "Do you need ...?"
            question = True
            continue
        if toks[0] in _VERBS and not (len(toks) > 1 and toks[1] in {"is", "are", "was", "were", "'s"}):
            verb, rest = toks[0], toks[1:]
            if len(rest) > 1 and rest[0] in {"to", "for"} and rest[1] in _INDIRECT:  # "Explain to me X"
                rest = rest[2:]
            if rest and rest[0] in _PARTICLES:
                rest = rest[1:]
                if rest and rest[0] == "with":  # "come up with"
                    rest = rest[1:]
            obj = _object(rest)
            return VerbObject("verb_object", verb, obj) if obj else VerbObject("verb", verb, None)
        if _is_question(s, toks):
            question = True
    return VerbObject("question" if question else "other")


def diversity(instructions: Iterable[str], top_verbs: int = 20, top_objects: int = 4) -> dict[str, Any]:
    kinds: Counter = Counter()
    verbs: Counter = Counter()
    pairs: Counter = Counter()
    for text in instructions:
        vo = verb_object(text)
        kinds[vo.kind] += 1
        if vo.verb:
            verbs[vo.verb] += 1
        if vo.kind == "verb_object":
            pairs[(vo.verb, vo.obj)] += 1
    # Fig. 2: the top verbs among verb-object instructions and their top objects
    pair_verbs: Counter = Counter()
    objs: dict[str, Counter] = defaultdict(Counter)
    for (v, o), n in pairs.items():
        pair_verbs[v] += n
        objs[v][o] += n
    top = [{"verb": v, "count": n, "objects": objs[v].most_common(top_objects)}
           for v, n in sorted(pair_verbs.items(), key=lambda kv: (-kv[1], kv[0]))[:top_verbs]]
    total = sum(kinds.values())
    return {"total": total, "kinds": {k: kinds.get(k, 0) for k in ("verb_object", "verb", "question", "other")},
            "distinct_verbs": len(verbs), "distinct_pairs": len(pairs),
            "verbs": sorted(verbs.items(), key=lambda kv: (-kv[1], kv[0])),
            "top": top}


# =====================================================================================
# reading the run
# =====================================================================================

def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from None
    except OSError as e:
        raise UserError(f"cannot read: {e.strerror}", path=path) from None


def find_stages(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """(run.json contents or {}, stage names in pipeline order). UserError when not a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError("no such run directory", path=run_dir)
    if not run_dir.is_dir():
        raise UserError("not a directory (expected a run directory)", path=run_dir)
    if (run_dir / MANIFEST).exists():
        raise UserError(f"is a stage directory; give the run directory instead ({run_dir.parent})", path=run_dir)
    run = _load_json(run_dir / "run.json") if (run_dir / "run.json").exists() else {}
    present = {p.name for p in run_dir.iterdir() if (p / MANIFEST).is_file()}
    if not present:
        raise UserError("not a run directory: no stage folder with a manifest.json", path=run_dir)
    configured = [s for s in (run.get("config") or {}).get("stages", []) if s in present]
    rest = sorted(present - set(configured), key=lambda s: (KNOWN_ORDER.index(s) if s in KNOWN_ORDER else 99, s))
    return run, configured + rest


def resolve_seeds(run_dir: Path, run: dict[str, Any], override: Path | None) -> Path | None:
    """The seed file the run used: --seeds, else run.json's path (absolute, or relative to the
    current directory, the config file's folder or its parent, or the repository root)."""
    if override is not None:
        if not Path(override).is_file():
            raise UserError("seed file not found", path=override)
        return Path(override)
    raw = run.get("seed_tasks") or (run.get("config") or {}).get("seed_tasks")
    if not raw:
        return None
    p = Path(raw).expanduser()
    cands = [p]
    if not p.is_absolute():
        src = run.get("config_file")
        if src:
            cands += [Path(src).parent / p, Path(src).parent.parent / p]
        cands += [Path(run_dir) / p, Path(__file__).resolve().parents[1] / p]
    return next((c for c in cands if c.is_file()), None)


def _rows(stage_dir: Path, manifest: dict[str, Any], rejects: bool = False) -> Iterable[dict[str, Any]]:
    """Rows (or rejects) of a stage in commit order; bad JSON is a UserError naming file and line."""
    from ..io.jsonl import iter_jsonl

    for p in manifest.get("parts", []):
        f = p.get("rejects_file") if rejects else p.get("file")
        if f:
            for _, obj in iter_jsonl(stage_dir / f):
                yield obj


def _word_count(text: str) -> int:
    return len(text.split())


def _spread(items: list, k: int) -> list:
    """k items evenly spread over the list (deterministic)."""
    if len(items) <= k:
        return list(items)
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)] if k > 1 else items[:1]


def _stage_stats(name: str, manifest: dict[str, Any], prev_out: int | None) -> dict[str, Any]:
    counts = manifest.get("counts", {})
    drops: dict[str, dict[str, int]] = {"record": {}, "instance": {}, "note": {}}
    for k, v in counts.items():
        for prefix, level in DROP_PREFIXES.items():
            if k.startswith(prefix):
                drops[level][k[len(prefix):]] = v
    if name == "export":
        out = counts.get("train_instructions", 0) + counts.get("eval_instructions", 0)
    else:
        out = sum(p.get("rows", 0) for p in manifest.get("parts", []))
    dropped = sum(drops["record"].values())
    rows_in = out + dropped
    if name == "export" and prev_out is not None:
        rows_in = prev_out
        dropped = rows_in - out
    st: dict[str, Any] = {
        "stage": name, "complete": bool(manifest.get("complete")), "in": rows_in, "out": out,
        "dropped": dropped, "accept": (out / rows_in) if rows_in else None, "drops": drops,
        "requests": counts.get("requests", 0), "prompt_tokens": counts.get("prompt_tokens", 0),
        "completion_tokens": counts.get("completion_tokens", 0),
        "rejects_rows": sum(p.get("rejects_rows", 0) for p in manifest.get("parts", [])),
    }
    if prev_out is not None and name != "export" and name not in GENERATORS and prev_out != rows_in:
        st["warning"] = f"{rows_in} in, but the stage before it has {prev_out} rows (stage not complete?)"
    if "instances" in counts and name != "instances":
        inst_out = counts["instances"]
        inst_drop = sum(drops["instance"].values())
        st["instances"] = {"in": inst_out + inst_drop, "out": inst_out, "dropped": inst_drop}
    elif "instances" in counts:
        st["instances"] = {"in": counts["instances"], "out": counts["instances"], "dropped": 0}
    if name == "classify":
        pos, neg = counts.get("classification", 0), counts.get("not_classification", 0)
        st["classification"] = {"yes": pos, "no": neg, "share": pos / (pos + neg) if pos + neg else None}
    if name == "export":
        st["export"] = {k: counts[k] for k in ("train_examples", "eval_examples", "train_instructions",
                                               "eval_instructions") if k in counts}
    if name in GENERATORS and "reached" in manifest:
        st["reached"] = manifest["reached"]
    return st


def _rouge_to_seeds(texts: list[str], seed_texts: list[tuple[str, str]]) -> list[tuple[float, str | None]]:
    from ..dedup import RougeIndex

    index = RougeIndex(threshold=1.0, floor=0.0)  # floor 0: the exact nearest seed, always
    for key, text in seed_texts:
        index.add(text, key)
    out = []
    for t in texts:
        m = index.query(t)
        out.append((m.score, m.nearest))
    return out


def _summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "min": min(values), "median": statistics.median(values),
            "mean": statistics.fmean(values), "max": max(values)}


def _trim(s: Any, n: int) -> str:
    s = "" if s is None else str(s)
    s = " ".join(s.replace("\r", "").replace("\n", " \\n ").split())
    return s if len(s) <= n else s[: n - 3].rstrip() + "..."


def compute_stats(run_dir: Path, *, seeds: Path | None = None) -> dict[str, Any]:
    """Everything the report shows, as a plain (JSON-serialisable) dict."""
    run_dir = Path(run_dir)
    run, stages = find_stages(run_dir)
    cfg = run.get("config") or {}
    report: dict[str, Any] = {"run_dir": str(run_dir), "config": {
        k: cfg.get(k) for k in ("name", "model", "backend", "seed") if k in cfg}, "stages": [], "notes": []}
    manifests = {s: _load_json(run_dir / s / MANIFEST) for s in stages}

    prev_out = None
    for s in stages:
        st = _stage_stats(s, manifests[s], prev_out)
        report["stages"].append(st)
        prev_out = st["out"]

    # ---- generated instructions (the generator stage's kept rows)
    gen = next((s for s in stages if s in GENERATORS), None)
    if gen is None:
        gen = next((s for s in stages if manifests[s].get("parts")), None)
    gen_rows = list(_rows(run_dir / gen, manifests[gen])) if gen else []
    gen_items = [(str(r.get("id", "")), r["instruction"]) for r in gen_rows if isinstance(r.get("instruction"), str)]
    instructions = [t for _, t in gen_items]
    report["generated"] = {"stage": gen, "count": len(instructions)}
    final = next((s for s in reversed(stages) if manifests[s].get("parts")), None)
    final_rows = list(_rows(run_dir / final, manifests[final])) if final and final != gen else gen_rows
    report["final"] = {"stage": final, "count": len(final_rows)}

    # ---- classification share among the final records
    cls_vals = [r["is_classification"] for r in final_rows if isinstance(r.get("is_classification"), bool)]
    if cls_vals:
        report["final_classification"] = {"yes": sum(cls_vals), "n": len(cls_vals),
                                          "share": sum(cls_vals) / len(cls_vals)}

    # ---- seeds
    seed_path = resolve_seeds(run_dir, run, seeds)
    seed_tasks = []
    if seed_path is None:
        report["notes"].append("seed file not found (run.json names none, or it moved): use --seeds PATH "
                               "for the ROUGE-L to nearest seed section")
    else:
        from ..generate.seeds import load_seed_tasks
        seed_tasks = load_seed_tasks(seed_path)
    report["seeds"] = {"path": str(seed_path) if seed_path else None, "count": len(seed_tasks)}

    # ---- instruction lengths
    gen_len = [_word_count(t) for t in instructions]
    seed_len = [_word_count(s.instruction) for s in seed_tasks]
    report["length"] = {"generated": gen_len, "seeds": seed_len, "summary": _summary(gen_len),
                        "seed_summary": _summary(seed_len)}
    inst_in, inst_out = [], []
    for r in final_rows:
        for inst in r.get("instances") or []:
            if isinstance(inst, dict):
                inst_in.append(_word_count(str(inst.get("input", ""))))
                inst_out.append(_word_count(str(inst.get("output", ""))))
    report["length"]["input_summary"] = _summary(inst_in)
    report["length"]["output_summary"] = _summary(inst_out)

    # ---- ROUGE-L to the nearest seed
    if seed_tasks and instructions:
        scored = _rouge_to_seeds(instructions, [(s.id, s.instruction) for s in seed_tasks])
        seed_by_id = {s.id: s.instruction for s in seed_tasks}
        scores = [sc for sc, _ in scored]
        order = sorted(range(len(scored)), key=lambda i: -scored[i][0])[:5]
        threshold = ((cfg.get(gen) or {}).get("filters") or {}).get("rouge_threshold") if gen else None
        report["rouge"] = {
            "scores": scores, "summary": _summary(scores), "threshold": threshold,
            "above_0_5": sum(1 for x in scores if x > 0.5),
            "above_threshold": sum(1 for x in scores if threshold is not None and x > threshold),
            "closest": [{"id": gen_items[i][0], "instruction": instructions[i],
                         "seed_id": scored[i][1], "seed": seed_by_id.get(scored[i][1] or "", ""),
                         "score": scored[i][0]} for i in order],
        }

    # ---- diversity
    if instructions:
        report["diversity"] = diversity(instructions)
        if seed_tasks:
            d = diversity(s.instruction for s in seed_tasks)
            report["seed_diversity"] = {k: d[k] for k in ("total", "kinds", "distinct_verbs", "distinct_pairs")}

    # ---- examples
    report["kept_examples"] = [_example(r) for r in _spread(final_rows, KEPT_EXAMPLES)]
    rej: dict[str, dict[str, list]] = {}
    for s in stages:
        if not manifests[s].get("parts"):
            continue
        per: dict[str, list] = defaultdict(list)
        for r in _rows(run_dir / s, manifests[s], rejects=True):
            lst = per[str(r.get("reason", "?"))]
            if len(lst) < EXAMPLES_PER_REASON:
                lst.append(_example(r))
        if per:
            rej[s] = dict(per)
    report["reject_examples"] = rej
    return report


def _example(r: dict[str, Any]) -> dict[str, Any]:
    ex: dict[str, Any] = {"id": r.get("id")}
    for k in ("instruction", "reason", "detail", "error", "kept_as", "is_classification"):
        if r.get(k) not in (None, ""):
            ex[k] = r[k]
    if isinstance(r.get("nearest"), dict):
        ex["nearest"] = r["nearest"]
    insts = r.get("instances")
    if isinstance(insts, list) and insts:
        ex["instances"] = [{"input": i.get("input", ""), "output": i.get("output", "")}
                           for i in insts[:2] if isinstance(i, dict)]
    elif "output" in r or "input" in r:  # an instance-level reject (filter stage)
        ex["instances"] = [{"input": r.get("input", ""), "output": r.get("output", "")}]
        ex["level"] = "instance"
    if "raw" in r and "instruction" not in r:
        ex["raw"] = r["raw"]
    return ex


# =====================================================================================
# terminal
# =====================================================================================

def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def table(headers: list[str], rows: list[list[Any]], right: set[int] | None = None,
          max_width: dict[int, int] | None = None) -> str:
    """Plain-text table; columns in `right` are right-aligned; cells cut to max_width[col]."""
    right = right or set()
    max_width = max_width or {}
    cells = [[str(c) for c in headers]] + [[_num(c) for c in r] for r in rows]
    for r in cells:
        for j, c in enumerate(r):
            w = max_width.get(j)
            if w and len(c) > w:
                r[j] = c[: w - 3] + "..."
    widths = [max(len(r[j]) for r in cells) for j in range(len(headers))]
    out = []
    for i, r in enumerate(cells):
        out.append("  ".join(c.rjust(widths[j]) if j in right else c.ljust(widths[j])
                             for j, c in enumerate(r)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _bars(labels: list[str], values: list[int], width: int = 50) -> str:
    top = max(values) if values else 0
    lw = max((len(x) for x in labels), default=0)
    return "\n".join(f"  {lab.rjust(lw)} | {'#' * (round(width * v / top) if top else 0)}{' ' if v else ''}{v}"
                     for lab, v in zip(labels, values))


def _hist_counts(values: list[float], edges: list[float]) -> list[int]:
    counts = [0] * (len(edges) - 1)
    for v in values:
        for j in range(len(edges) - 1):
            last = j == len(edges) - 2
            if edges[j] <= v < edges[j + 1] or (last and v == edges[j + 1]):
                counts[j] += 1
                break
    return counts


def length_edges(values: list[int]) -> list[int]:
    hi = max(values, default=1)
    step = max(1, -(-hi // 15))
    for nice in (1, 2, 5, 10, 20, 25, 50, 100):
        if nice >= step:
            step = nice
            break
    return list(range(0, hi + step + 1, step))


def format_terminal(rep: dict[str, Any], report_path: Path | None = None) -> str:
    L: list[str] = []
    cfg = rep["config"]
    head = f"Run {rep['run_dir']}"
    bits = [f"{k} {cfg[k]}" for k in ("model", "seed") if k in cfg]
    if rep["seeds"]["count"]:
        bits.append(f"{rep['seeds']['count']} seed tasks")
    L.append(head + (f"  ({', '.join(bits)})" if bits else ""))
    L.append("")
    L.append("Stages  (in = out + dropped records; for bootstrap/alpaca 'in' counts candidate "
             "instructions\n        and unparseable answers)")
    rows = []
    for st in rep["stages"]:
        rows.append([st["stage"], "complete" if st["complete"] else "partial", st["in"], st["out"], st["dropped"],
                     _pct(st["accept"]), st["requests"] or "", st["prompt_tokens"] or "",
                     st["completion_tokens"] or ""])
    L.append(table(["stage", "status", "in", "out", "dropped", "accept", "requests", "prompt tok",
                    "compl. tok"], rows, right={2, 3, 4, 5, 6, 7, 8}))
    for st in rep["stages"]:
        if "warning" in st:
            L.append(f"  ! {st['stage']}: {st['warning']}")
        if st["stage"] in GENERATORS and st.get("reached") is False:
            L.append(f"  ! {st['stage']}: stopped at max_rounds before reaching num_instructions")
    inst = [(st["stage"], st["instances"]) for st in rep["stages"] if "instances" in st]
    if inst:
        L.append("  instances kept: " + "; ".join(
            f"{s} {i['out']:,}" + (f" of {i['in']:,} ({i['dropped']:,} dropped)" if i["dropped"] else "")
            for s, i in inst))
    for st in rep["stages"]:
        if "export" in st:
            e = st["export"]
            L.append(f"  export: train {e.get('train_examples', 0):,} examples / "
                     f"{e.get('train_instructions', 0):,} instructions, eval {e.get('eval_examples', 0):,} / "
                     f"{e.get('eval_instructions', 0):,}")
    L.append("")

    drows = []
    for st in rep["stages"]:
        for level in ("record", "instance", "note"):
            base = st["instances"]["in"] if level == "instance" and "instances" in st else st["in"]
            for reason, n in sorted(st["drops"][level].items(), key=lambda kv: (-kv[1], kv[0])):
                drows.append([st["stage"], level if level != "note" else "note (kept)", reason, n,
                              _pct(n / base if base else None)])
    if drows:
        L.append("Drops per reason  (share of the stage's records in; instance level: of its instances in)")
        L.append(table(["stage", "level", "reason", "count", "share"], drows, right={3, 4}, max_width={2: 40}))
    else:
        L.append("Drops per reason: none")
    L.append("")

    cls = next((st["classification"] for st in rep["stages"] if "classification" in st), None)
    if cls:
        L.append(f"Classification tasks (classify stage): {cls['yes']:,} of {cls['yes'] + cls['no']:,} = "
                 f"{_pct(cls['share'])}")
        fc = rep.get("final_classification")
        if fc and rep["final"]["stage"] != "classify":
            L.append(f"  among the final records ({rep['final']['stage']}): {fc['yes']:,} of {fc['n']:,} = "
                     f"{_pct(fc['share'])}")
        L.append("")

    g = rep["generated"]
    ln = rep["length"]
    if g["count"]:
        s = ln["summary"]
        L.append(f"Instruction length in words ({g['count']:,} generated by {g['stage']})")
        L.append(f"  generated: min {s['min']}  median {s['median']:g}  mean {s['mean']:.1f}  max {s['max']}")
        ss = ln["seed_summary"]
        if ss["n"]:
            L.append(f"  seeds:     min {ss['min']}  median {ss['median']:g}  mean {ss['mean']:.1f}  "
                     f"max {ss['max']}")
        edges = length_edges(ln["generated"])
        counts = _hist_counts(ln["generated"], edges)
        while counts and counts[-1] == 0:
            counts.pop()
        labels = [f"{edges[j]}-{edges[j + 1] - 1}" if edges[j + 1] - edges[j] > 1 else str(edges[j])
                  for j in range(len(counts))]
        L.append(_bars(labels, counts))
        for key, label in (("input_summary", "instance input"), ("output_summary", "instance output")):
            s2 = ln[key]
            if s2["n"]:
                L.append(f"  {label} words ({s2['n']:,} instances, {rep['final']['stage']}): median "
                         f"{s2['median']:g}  mean {s2['mean']:.1f}  max {s2['max']}")
        L.append("")

    rg = rep.get("rouge")
    if rg:
        s = rg["summary"]
        L.append(f"ROUGE-L F1 to the nearest seed instruction ({s['n']:,} generated vs "
                 f"{rep['seeds']['count']:,} seeds)")
        extra = f"  mean {s['mean']:.3f}  median {s['median']:.3f}  max {s['max']:.3f}   > 0.5: {rg['above_0_5']:,}"
        if rg["threshold"] is not None:
            extra += f"   > filter threshold {rg['threshold']}: {rg['above_threshold']:,}"
        L.append(extra)
        edges = [j / 10 for j in range(11)]
        counts = _hist_counts(rg["scores"], edges)
        L.append(_bars([f"{edges[j]:.1f}-{edges[j + 1]:.1f}" for j in range(10)], counts))
        L.append("")
    elif g["count"]:
        L.append("ROUGE-L to nearest seed: skipped (" + "; ".join(rep["notes"] or ["no seeds"]) + ")")
        L.append("")

    dv = rep.get("diversity")
    if dv:
        k = dv["kinds"]
        t = dv["total"] or 1
        L.append(f"Diversity (heuristic parse, method in the report): {dv['distinct_verbs']:,} distinct root "
                 f"verbs,")
        L.append(f"  {dv['distinct_pairs']:,} distinct verb-object pairs in {dv['total']:,} generated instructions")
        L.append(f"  verb+object {k['verb_object']:,} ({_pct(k['verb_object'] / t)}), verb only {k['verb']:,}, "
                 f"question {k['question']:,}, other {k['other']:,}")
        sd = rep.get("seed_diversity")
        if sd:
            L.append(f"  seeds: {sd['distinct_verbs']:,} verbs, {sd['distinct_pairs']:,} pairs in "
                     f"{sd['total']:,} instructions")
        if dv["top"]:
            L.append(table(["verb", "count", "top objects"],
                           [[x["verb"], x["count"], ", ".join(f"{o} {n}" for o, n in x["objects"])]
                            for x in dv["top"][:10]], right={1}, max_width={2: 80}))
        L.append("")

    if rep["reject_examples"]:
        L.append("Reject examples (one per reason; `selfinstruct show RUNDIR/STAGE --reason R` for more)")
        rows = []
        for stage, per in rep["reject_examples"].items():
            for reason, exs in per.items():
                ex = exs[0]
                text = ex.get("instruction") or ex.get("raw") or ""
                if ex.get("level") == "instance":  # its output says more than its instruction
                    text = "output: " + (_trim(ex["instances"][0]["output"], 200) or "(empty)")
                rows.append([f"{stage}/{reason}", ex.get("id") or "", _trim(text, 200)])
        L.append(table(["stage/reason", "id", "text"], rows, max_width={0: 34, 1: 16, 2: 44}))
        L.append("")
    for n in rep["notes"]:
        L.append(f"note: {n}")
    if report_path:
        L.append(f"report: {report_path}")
    return "\n".join(L).rstrip() + "\n"


# =====================================================================================
# plots + HTML
# =====================================================================================

def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def make_plots(rep: dict[str, Any]) -> dict[str, str]:
    """name -> base64 PNG."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("matplotlib is not installed: pip install 'selfinstruct[report]', or use --no-plots") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    ln = rep["length"]
    if ln["generated"]:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        edges = length_edges(ln["generated"] + ln["seeds"])
        gen_w = [100 / len(ln["generated"])] * len(ln["generated"])
        ax.hist(ln["generated"], bins=edges, weights=gen_w, color="#4C72B0", alpha=0.85,
                label=f"generated ({len(ln['generated'])})")
        if ln["seeds"]:
            ax.hist(ln["seeds"], bins=edges, weights=[100 / len(ln["seeds"])] * len(ln["seeds"]),
                    histtype="step", color="#DD8452", linewidth=1.8, label=f"seeds ({len(ln['seeds'])})")
        ax.set_xlabel("instruction length (words)")
        ax.set_ylabel("% of instructions")
        ax.legend()
        ax.set_title("Instruction length")
        plots["length"] = _png(fig)
    rg = rep.get("rouge")
    if rg and rg["scores"]:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        ax.hist(rg["scores"], bins=[j / ROUGE_BINS for j in range(ROUGE_BINS + 1)], color="#55A868",
                edgecolor="white")
        if rg["threshold"] is not None:
            ax.axvline(rg["threshold"], color="#C44E52", linestyle="--", label=f"filter threshold {rg['threshold']}")
            ax.legend()
        ax.set_xlim(0, 1)
        ax.set_xlabel("ROUGE-L F1 to the most similar seed instruction")
        ax.set_ylabel("# instructions")
        ax.set_title("Similarity to the seed instructions")
        plots["rouge"] = _png(fig)
    dv = rep.get("diversity")
    if dv and dv["top"]:
        plots["diversity"] = _png(_sunburst(dv["top"], plt))
    return plots


def _sunburst(top: list[dict[str, Any]], plt):
    """Self-Instruct Fig. 2: inner ring the top root verbs, outer ring their top direct objects."""
    import matplotlib

    fig, ax = plt.subplots(figsize=(7.5, 7.5))
    palette = matplotlib.colormaps["tab20"]
    cmap = lambda i: palette(i % 20)  # noqa: E731
    inner_vals = [x["count"] for x in top]
    inner_cols = [cmap(i) for i in range(len(top))]
    outer_vals, outer_cols, outer_labels = [], [], []
    for i, x in enumerate(top):
        shown = 0
        for o, n in x["objects"]:
            outer_vals.append(n)
            outer_cols.append(cmap(i))
            outer_labels.append(o)
            shown += n
        if x["count"] > shown:
            outer_vals.append(x["count"] - shown)
            outer_cols.append((0.93, 0.93, 0.93, 1.0))
            outer_labels.append("")
    total = sum(inner_vals)
    small = 8 if len(outer_vals) < 40 else 6
    ax.pie(outer_vals, radius=1.0, colors=outer_cols, labels=[lab if v / total > 0.006 else ""
                                                             for lab, v in zip(outer_labels, outer_vals)],
           labeldistance=0.83, rotatelabels=True, textprops={"fontsize": small},
           wedgeprops={"width": 0.32, "edgecolor": "white", "alpha": 0.75}, startangle=90, counterclock=False)
    ax.pie(inner_vals, radius=0.68, colors=inner_cols, labels=[x["verb"] for x in top], labeldistance=0.72,
           rotatelabels=True, textprops={"fontsize": small + 1, "weight": "bold"},
           wedgeprops={"width": 0.36, "edgecolor": "white"}, startangle=90, counterclock=False)
    ax.set_title(f"Top {len(top)} root verbs (inner) and their top direct objects (outer)")
    ax.set(aspect="equal")
    return fig


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.6em 0 1.2em}th,td{border:1px solid #ddd;padding:3px 8px;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}.muted{color:#666;font-size:90%}
.ex td{font-size:90%;max-width:520px;word-wrap:break-word}img{max-width:100%}code{background:#f5f5f5;padding:0 3px}
.warn{color:#a33}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _html_table(headers: list[str], rows: list[list[Any]], numeric: set[int] = frozenset(), cls: str = "") -> str:
    out = [f'<table class="{cls}"><tr>' + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(
            f'<td class="n">{_e(_num(c))}</td>' if j in numeric else f"<td>{_e(c)}</td>"
            for j, c in enumerate(r)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _ex_text(ex: dict[str, Any], n: int = 300) -> str:
    parts = []
    for i, inst in enumerate(ex.get("instances", [])):
        parts.append(f"input: {_trim(inst.get('input', ''), n) or '(none)'} | "
                     f"output: {_trim(inst.get('output', ''), n) or '(empty)'}")
    if ex.get("raw"):
        parts.append(f"raw: {_trim(ex['raw'], n)}")
    for k in ("detail", "error", "kept_as"):
        if ex.get(k):
            parts.append(f"{k}: {_trim(ex[k], n)}")
    return " || ".join(parts)


def render_html(rep: dict[str, Any], plots: dict[str, str]) -> str:
    H: list[str] = []
    title = f"selfinstruct stats: {rep['config'].get('name') or rep['run_dir']}"
    H.append(f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body>")
    H.append(f"<h1>{_e(title)}</h1>")
    cfg = rep["config"]
    H.append("<p class='muted'>run directory <code>" + _e(rep["run_dir"]) + "</code>" +
             "".join(f"; {k} <code>{_e(cfg[k])}</code>" for k in ("model", "backend", "seed") if k in cfg) +
             (f"; seeds <code>{_e(rep['seeds']['path'])}</code> ({rep['seeds']['count']})" if rep["seeds"]["path"]
              else "") + "</p>")
    for n in rep["notes"]:
        H.append(f"<p class='warn'>{_e(n)}</p>")

    H.append("<h2>Stages</h2>")
    rows = [[st["stage"], "complete" if st["complete"] else "partial", st["in"], st["out"], st["dropped"],
             _pct(st["accept"]), st["requests"], st["prompt_tokens"], st["completion_tokens"]]
            for st in rep["stages"]]
    H.append(_html_table(["stage", "status", "in", "out", "dropped", "accept rate", "requests", "prompt tokens",
                          "completion tokens"], rows, numeric={2, 3, 4, 5, 6, 7, 8}))
    H.append("<p class='muted'>in = out + dropped records. For bootstrap/alpaca, 'in' counts the candidate "
             "instructions parsed from the model's answers plus the answers that could not be parsed.</p>")
    for st in rep["stages"]:
        if "warning" in st:
            H.append(f"<p class='warn'>{_e(st['stage'])}: {_e(st['warning'])}</p>")
        if "instances" in st:
            i = st["instances"]
            H.append(f"<p>{_e(st['stage'])}: {i['out']:,} instances kept" +
                     (f" of {i['in']:,} ({i['dropped']:,} dropped)" if i["dropped"] else "") + "</p>")
        if "export" in st:
            H.append("<p>export: " + ", ".join(f"{_e(k)} {v:,}" for k, v in st["export"].items()) + "</p>")
    drows = []
    for st in rep["stages"]:
        for level in ("record", "instance", "note"):
            base = st["instances"]["in"] if level == "instance" and "instances" in st else st["in"]
            for reason, n in sorted(st["drops"][level].items(), key=lambda kv: (-kv[1], kv[0])):
                drows.append([st["stage"], level if level != "note" else "note (record kept)", reason, n,
                              _pct(n / base if base else None)])
    H.append("<h3>Drops per reason</h3>")
    H.append(_html_table(["stage", "level", "reason", "count", "share of stage input"], drows, numeric={3, 4})
             if drows else "<p>none</p>")

    cls = next((st["classification"] for st in rep["stages"] if "classification" in st), None)
    if cls:
        H.append("<h2>Classification tasks</h2>")
        H.append(f"<p>classify stage: {cls['yes']:,} of {cls['yes'] + cls['no']:,} instructions are "
                 f"classification tasks ({_pct(cls['share'])}).")
        fc = rep.get("final_classification")
        if fc and rep["final"]["stage"] != "classify":
            H.append(f" Among the final records ({_e(rep['final']['stage'])}): {fc['yes']:,} of {fc['n']:,} "
                     f"({_pct(fc['share'])}).")
        H.append("</p>")

    ln = rep["length"]
    if ln["generated"]:
        H.append("<h2>Instruction length</h2>")
        srows = []
        for label, key in (("generated instructions", "summary"), ("seed instructions", "seed_summary"),
                           ("instance inputs (final)", "input_summary"),
                           ("instance outputs (final)", "output_summary")):
            s = ln[key]
            if s["n"]:
                srows.append([label, s["n"], s["min"], f"{s['median']:g}", f"{s['mean']:.1f}", s["max"]])
        H.append(_html_table(["words in", "n", "min", "median", "mean", "max"], srows, numeric={1, 2, 3, 4, 5}))
        if "length" in plots:
            H.append(f"<img alt='instruction length histogram' src='data:image/png;base64,{plots['length']}'>")

    rg = rep.get("rouge")
    H.append("<h2>ROUGE-L to the nearest seed instruction</h2>")
    if rg:
        s = rg["summary"]
        H.append(f"<p>For each of the {s['n']:,} generated instructions, the maximum ROUGE-L F1 against the "
                 f"{rep['seeds']['count']:,} seed instructions (rouge-score's tokenizer, no stemming; exact). "
                 f"Mean {s['mean']:.3f}, median {s['median']:.3f}, max {s['max']:.3f}; "
                 f"{rg['above_0_5']:,} above 0.5" +
                 (f", {rg['above_threshold']:,} above the filter threshold {rg['threshold']}"
                  if rg["threshold"] is not None else "") + ".</p>")
        if "rouge" in plots:
            H.append(f"<img alt='ROUGE-L to nearest seed histogram' src='data:image/png;base64,{plots['rouge']}'>")
        H.append("<h3>Most similar to a seed</h3>")
        H.append(_html_table(["score", "id", "generated instruction", "nearest seed"],
                             [[f"{c['score']:.3f}", c["id"], _trim(c["instruction"], 300),
                               f"{c['seed_id']}: {_trim(c['seed'], 300)}"] for c in rg["closest"]],
                             numeric={0}, cls="ex"))
    else:
        H.append("<p>skipped: " + _e("; ".join(rep["notes"]) or "no generated instructions") + "</p>")

    dv = rep.get("diversity")
    if dv:
        k = dv["kinds"]
        t = dv["total"] or 1
        H.append("<h2>Diversity: root verbs and direct objects</h2>")
        H.append(f"<p>{dv['distinct_verbs']:,} distinct root verbs and {dv['distinct_pairs']:,} distinct "
                 f"verb-object pairs in {dv['total']:,} generated instructions. "
                 f"Verb + direct object: {k['verb_object']:,} ({_pct(k['verb_object'] / t)}); verb without a "
                 f"noun object: {k['verb']:,}; questions: {k['question']:,}; other: {k['other']:,}.")
        sd = rep.get("seed_diversity")
        if sd:
            H.append(f" Seeds for comparison: {sd['distinct_verbs']:,} verbs and {sd['distinct_pairs']:,} pairs "
                     f"in {sd['total']:,} instructions.")
        H.append("</p>")
        if "diversity" in plots:
            H.append(f"<img alt='verb-object sunburst' src='data:image/png;base64,{plots['diversity']}'>")
        if dv["top"]:
            H.append(_html_table(["root verb", "with an object", "top direct objects"],
                                 [[x["verb"], x["count"], ", ".join(f"{o} ({n})" for o, n in x["objects"])]
                                  for x in dv["top"]], numeric={1}))
        H.append(f"<p class='muted'><b>Method.</b> {_e(DIVERSITY_METHOD)}</p>")

    H.append("<h2>Examples</h2>")
    if rep["kept_examples"]:
        H.append(f"<h3>Kept ({_e(rep['final']['stage'])})</h3>")
        H.append(_html_table(["id", "instruction", "instances", "class.", "nearest"],
                             [[ex.get("id"), _trim(ex.get("instruction"), 400), _ex_text(ex),
                               {True: "yes", False: "no"}.get(ex.get("is_classification"), ""),
                               (f"{ex['nearest'].get('id')} {ex['nearest'].get('score', 0):.3f}"
                                if "nearest" in ex else "")] for ex in rep["kept_examples"]], cls="ex"))
    for stage, per in rep["reject_examples"].items():
        H.append(f"<h3>Rejected by {_e(stage)}</h3>")
        rows = []
        for reason, exs in per.items():
            for ex in exs:
                rows.append([reason, ex.get("id"), _trim(ex.get("instruction"), 400), _ex_text(ex)])
        H.append(_html_table(["reason", "id", "instruction", "details"], rows, cls="ex"))
    H.append("<p class='muted'>More: <code>selfinstruct show RUNDIR/STAGE --reason REASON</code></p>")
    H.append("</body></html>")
    return "\n".join(H)


def write_report(rep: dict[str, Any], out: Path, *, plots: bool = True) -> Path:
    out = Path(out)
    text = render_html(rep, make_plots(rep) if plots else {})
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as e:
        raise UserError(f"cannot write the report: {e.strerror}", path=out) from None
    return out
