"""Datasette's metadata for a run's database: titles, facets per table, search, and the canned queries a
reviewer asks before training (rejects by reason, near-duplicate pairs, the lowest and highest judged
answers, constraint types that fail most, one record through every stage). Read from the database as
`database.build` left it, so it names only the tables and columns there are."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

FACETS = ("task_type", "classification", "judge_score", "constraint_types", "verified")
REJECT_FACETS = ("stage", "reason", "level")
SEARCH_HELP = "search instruction, input and output"
LIMIT = 100


def q(name: str) -> str:
    """An SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _facet(column: str) -> str | dict[str, str]:
    return {"array": column} if column == "constraint_types" else column


def _stage_description(s: dict[str, Any]) -> str:
    reasons = json.loads(s["reasons"] or "{}")
    drops = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return (f"Stage {s['step']}, {s['name']} ({s['status']}): {s['records']:,} records committed, "
            f"{s['rejects']:,} rejects" + (f" ({drops})" if drops else "") +
            ". One row per record in commit order; `record` holds its JSON line as stored.")


def _first(stages: list[dict[str, Any]], columns: dict[str, set[str]], writes: str, column: str) -> dict | None:
    """The stage that wrote `writes` (its manifest says so), else the first whose table has `column`."""
    with_table = [s for s in stages if s["table"] in columns]
    return (next((s for s in with_table if writes in json.loads(s["writes"] or "[]")), None)
            or next((s for s in with_table if column in columns[s["table"]]), None))


def rejects_by_reason() -> dict[str, str]:
    sql = f"""with g as (select stage, reason, level, count(*) as n, min(seq) as first from rejects
                group by stage, reason, level)
select g.stage, g.reason, g.level, g.n as rejects, e.id as example_id, e.instruction as example_instruction,
       coalesce(nullif(e.detail, ''), nullif(e.output, ''), e.raw) as example_detail
from g join rejects e on e.stage = g.stage and e.seq = g.first left join stages s on s.name = g.stage
order by s.step, g.n desc, g.reason"""
    return {"title": "Rejects by reason, with an example", "sql": sql,
            "description": "Every stage's drops per reason (level: record, instance or note) with its first "
                           "example; the rejects table filtered by stage and reason has them all."}


def near_duplicates(stages: list[dict[str, Any]], seeds: bool) -> dict[str, str] | None:
    gens = [s for s in stages if s["generator"] and s["table"]]
    if not gens:
        return None
    names = ", ".join(lit(s["name"]) for s in gens)
    kept = "".join(f"\n  union all select {lit(s['name'])}, id, instruction, nearest_id, nearest_score, 'kept' "
                   f"from {q(s['table'])} where nearest_id is not null" for s in gens)
    pools = [f"select id, instruction from {q(s['table'])}" for s in gens] + (
        ["select id, instruction from seeds"] if seeds else [])
    sql = f"""with pairs as (
  select stage, id, instruction, nearest_id, nearest_score, 'dropped: ' || reason as outcome from rejects
  where stage in ({names}) and nearest_id is not null{kept}),
pool as ({' union all '.join(pools)})
select p.nearest_score as rouge_l, p.outcome, p.stage, p.id, p.instruction, p.nearest_id,
       (select instruction from pool where pool.id = p.nearest_id limit 1) as nearest_instruction
from pairs p order by p.nearest_score desc, p.id limit {LIMIT}"""
    return {"title": "Closest near-duplicate pairs (ROUGE-L)", "sql": sql,
            "description": "Each generated instruction with the closest one before it (a seed task or an earlier "
                           "kept instruction) and their exact ROUGE-L F1, highest first: those over the "
                           "threshold were dropped as rouge_similar."}


def judged(stage: dict[str, Any], order: str) -> dict[str, str]:
    sql = f"""select r.id, cast(a.key as integer) + 1 as answer,
  (select avg(s.value) from json_each(r.record, '$.judge_scores[' || a.key || ']') s) as score,
  r.judge_score as record_score, r.instruction, json_extract(a.value, '$.input') as input,
  json_extract(a.value, '$.output') as output
from {q(stage['table'])} r, json_each(r.record, '$.instances') a
where score is not null order by score {order}, r.id, answer limit {LIMIT}"""
    word = "lowest" if order == "asc" else "highest"
    return {"title": f"The {word} judged answers ({stage['name']})", "sql": sql,
            "description": f"Each answer (instance) with its judge score (the mean of its samples), {word} first; "
                           "record_score is the record's judge_score."}


def constraint_failures(stage: dict[str, Any]) -> dict[str, str]:
    """Per constraint type, over every answer the verifying stage checked (kept records and rejects): the
    answers that fail it (1 - pass@1, as `stats` counts it) and the prompts left unverified."""
    rows = (f"select id, record from {q(stage['table'])} union all "
            f"select id, record from rejects where stage = {lit(stage['name'])}")
    failed = "json_extract(a.value, '$[' || c.key || ']') = 0"
    sql = f"""select json_extract(c.value, '$.id') as constraint_type, count(distinct x.id) as prompts,
  count(*) as answers, sum({failed}) as answers_failed, round(100.0 * sum({failed}) / count(*), 1) as percent_failed,
  count(distinct case when json_extract(x.record, '$.verify.chosen') is null then x.id end) as prompts_unverified
from ({rows}) x, json_each(x.record, '$.constraints.items') c, json_each(x.record, '$.verify.passed') a
group by constraint_type order by percent_failed desc, answers desc, constraint_type"""
    return {"title": "Constraint types that fail most", "sql": sql,
            "description": f"Per constraint type, every answer {stage['name']} checked: the share that fails it, "
                           "and the prompts none of whose answers passed all their constraints (unverified)."}


def record_path(stages: list[dict[str, Any]], columns: dict[str, set[str]]) -> dict[str, str]:
    parts = [f"select {s['step']} as step, {lit(s['name'])} as stage, 'kept' as outcome, null as reason, "
             f"instruction, input, output, record from {q(s['table'])} where id = :id"
             for s in stages if s["table"] in columns]
    parts.append("select s.step, r.stage, 'dropped (' || r.level || ')', r.reason, r.instruction, r.input, "
                 "r.output, r.record from rejects r left join stages s on s.name = r.stage where r.id = :id")
    for s in stages:
        for name, table in json.loads(s["files"] or "{}").items():
            if "id" in columns.get(table, ()):
                parts.append(f"select {s['step']}, {lit(s['name'])}, {lit('exported: ' + name)}, null, null, null, "
                             f"null, record from {q(table)} where id = :id")
    sql = "\nunion all ".join(parts) + "\norder by step, outcome"
    return {"title": "One record through every stage", "sql": sql,
            "description": "Give a record id (e.g. b00001-000-02): where each stage kept it, dropped it (or one "
                           "of its instances) and why, and the examples export made of it."}


def metadata(path: Path, name: str, run_dir: Path) -> dict[str, Any]:
    """Datasette's metadata for the database at `path` (served as `name`) of the run at `run_dir`."""
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
        columns = {t: {r[1] for r in conn.execute(f"pragma table_info({q(t)})")} for t in tables}
        stages = [dict(r) for r in conn.execute("select * from stages order by step")] if "stages" in columns else []
    finally:
        conn.close()
    meta: dict[str, Any] = {
        "_meta": {"hidden": True},
        "stages": {"description": "The run's stages in order: status, records and rejects committed, drops per "
                                  "reason (from the manifests), and the tables that hold them."},
        "seeds": {"description": "The seed tasks the run started from (what a near-duplicate may match)."},
        "rejects": {"facets": [_facet(c) for c in REJECT_FACETS if c in columns.get("rejects", ())],
                    "description": "Everything a stage dropped, with the stage, the reason and its level (record: "
                                   "the whole task; instance: one example; note: kept with a default)."},
    }
    for s in stages:
        if s["table"] in columns:
            cols = columns[s["table"]]
            meta[s["table"]] = {"description": _stage_description(s), "sort": "seq",
                                "facets": [_facet(c) for c in FACETS if c in cols]}
        for file, table in json.loads(s["files"] or "{}").items():
            meta[table] = {"description": f"{s['name']}/{file}: the examples as written for training.", "sort": "seq"}
    queries = {"rejects_by_reason": rejects_by_reason()}
    near = near_duplicates(stages, "seeds" in columns)
    if near:
        queries["near_duplicates"] = near
    judge = _first(stages, columns, "judge_scores", "judge_score")
    if judge:
        queries["lowest_judged"] = judged(judge, "asc")
        queries["highest_judged"] = judged(judge, "desc")
    verify = _first(stages, columns, "verify", "verified")
    if verify:
        queries["constraint_failures"] = constraint_failures(verify)
    queries["record_path"] = record_path(stages, columns)
    for query in queries.values():
        query["hide_sql"] = True
    title = f"selfinstruct run: {Path(run_dir).name}"
    return {"title": title,
            "description": f"{run_dir}, read-only: what its manifests name (refreshed while it is written). "
                           f"Search any stage or the rejects ({SEARCH_HELP}); facets on the tables; "
                           "canned queries on the database's page.",
            "databases": {name: {"tables": {t: m for t, m in meta.items() if t in columns}, "queries": queries,
                                 "description": f"{len(stages)} stages; the database: {path}"}}}
