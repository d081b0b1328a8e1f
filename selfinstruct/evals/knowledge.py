"""Closed-book knowledge questions with reference answer spans (the `knowledge` suite): a question is
answered without its source, and scored by code, as SQuAD and TriviaQA score short factual answers:
`contains` (1 when a normalised reference span occurs in the normalised answer: a model that says more
than the span is not penalised for it) and `f1` (token F1 against the best reference: rewards partial
answers, penalises padding). Where a judge is configured, the `knowledge_judge` suite also asks it
whether each answer is correct by the reference (Yes/No: a correct answer in other words counts). Normalised: lower case, punctuation and articles removed, whitespace
collapsed.

Questions file: JSONL, one `{"id", "question", "answers": [spans], "module"?}` per line; a bad line is
one error naming file:line and field."""
from __future__ import annotations

import re
import string
from collections import Counter
from pathlib import Path
from typing import Any

from ..io.errors import UserError
from ..io.jsonl import iter_jsonl

ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalize(text: str) -> str:
    return " ".join(ARTICLES.sub(" ", text.lower().translate(PUNCT)).split())


def _tokens(text: str, raw: bool) -> list[str]:
    return text.lower().split() if raw else normalize(text).split()


def contains(answer: str, references: list[str]) -> float:
    """A reference made of punctuation only ('/', '+') is looked for as written (lower case)."""
    a, raw = f" {normalize(answer)} ", answer.lower()
    return float(any((f" {normalize(r)} " in a) if normalize(r) else (r.strip().lower() in raw)
                     for r in references))


def token_f1(answer: str, references: list[str]) -> float:
    best = 0.0
    for r in references:
        raw = not normalize(r)
        got, ref = _tokens(answer, raw), _tokens(r, raw)
        common = sum((Counter(got) & Counter(ref)).values())
        if common:
            p, rc = common / len(got), common / len(ref)
            best = max(best, 2 * p * rc / (p + rc))
    return best


def load_questions(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    out, seen = [], set()
    for line, row in iter_jsonl(path):
        def bad(field: str, msg: str) -> None:
            raise UserError(msg, path=path, line=line, field=field)
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            bad("question", "expected a non-empty string")
        answers = row.get("answers")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            bad("answers", "expected a non-empty list of non-empty reference spans")
        rid = str(row.get("id", line))
        if rid in seen:
            bad("id", f"duplicate id {rid!r}")
        seen.add(rid)
        out.append({"id": rid, "question": row["question"].strip(), "answers": answers,
                    "module": row.get("module")})
    if not out:
        raise UserError("no questions (the file is empty)", path=path)
    return out


JUDGE_PROMPT = """You check answers to questions against a reference answer.

[Question]
{question}

[Reference answer]
{reference}

[Answer to check]
{answer}

Is the answer to check correct, by the reference answer? It may use other words or say more; it is wrong if it contradicts the reference or does not give it. Reply with Yes or No on the first line, then one sentence of reason."""


def judge_messages(question: str, references: list[str], answer: str, key: str) -> list[dict[str, str]]:
    """The judge's prompt for one answer (the `knowledge_judge` suite); the texts are fenced as data, the
    fence's tag blanked out of them (an answer under judgment is not refused: it is scored)."""
    from ..fence import defuse, fence_tag, fenced, note
    tag = fence_tag("knowledge", key)
    texts = {"question": question, "reference": " / ".join(references), "answer": answer.strip() or "(no answer)"}
    body = JUDGE_PROMPT.format(**{k: fenced(defuse(v, tag), tag) for k, v in texts.items()})
    return [{"role": "user", "content": f"{note(tag)}\n\n{body}"}]


def parse_yes_no(text: str) -> bool | None:
    """The judge's verdict from its first non-empty line; None when it is neither Yes nor No."""
    first = next((ln.strip().lower() for ln in text.splitlines() if ln.strip()), "").strip("*#:. ")
    if re.match(r"yes\b", first):
        return True
    if re.match(r"no\b", first):
        return False
    return None
