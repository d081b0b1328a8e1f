"""The judge stage: reading judgments as models write them, the scripted judge end to end (scores, rejects,
the sanity figure in `stats`), several samples averaged, structured outputs as each backend sends them,
and a run killed in the middle of the judge that resumes to the identical result."""
import json
import re
import statistics
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from selfinstruct.backends.base import Completion, Request
from selfinstruct.backends.fake import FakeBackend, answer, judge_rule
from selfinstruct.cli import main
from selfinstruct.generate.config import Sampling
from selfinstruct.generate.parsing import parse_judgment
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.generate.prompts import RUBRICS, judge_prompt
from selfinstruct.generate.stages.judge import Judge, JudgeConfig
from selfinstruct.io.errors import UserError
from selfinstruct.io.records import Instance, Record
from selfinstruct.report.compute import compute_report

from .conftest import JUDGED, judged_config, stage_rows as rows

pytestmark = pytest.mark.timeout(180)
UP_TO_FILTER = "[bootstrap, classify, instances, filter]"


def config(tmp_path, stages=JUDGED, judge=""):
    return judged_config(tmp_path, stages=stages, judge=f"batch_size: 4, sanity_share: 0.5, {judge}")


# ------------------------------------------------------------------------------------ parsing judgments

@pytest.mark.parametrize("text, score", [
    # well-formed, as instruct models answer the AlpaGasus prompt ("first a line with the score")
    ("4", 4), ("5\nThe response is accurate and complete.", 5), (" 3", 3), ("4.5", 4.5),
    # the additive rubric: the justification first, "Score: N" last
    ("The response is relevant (1 point) and addresses most of the question (2 points).\nScore: 3", 3),
    # malformed but readable
    ("Score: 4/5", 4), ("**4**", 4), ("I'd give it a four", 4), ("5. The answer is correct and concise.", 5),
    ("**Score:** 5\n\nExplanation: it has 2 small errors", 5), ("Rating: 4\nExplanation: 3 of the 5 steps.", 4),
    ("Score: 4. A score of 5 would need an example.", 4), ("I would rate this response a 4.", 4),
    ("4 out of 5", 4), ("Overall score: 3.5 out of 5", 3.5), ("[[2]]", 2), ("Four.", 4),
    ("The response gets 4 points.", 4), ("My rating: 3 (out of 5)", 3),
])
def test_judgments_are_read_as_models_write_them(text, score):
    assert parse_judgment(text, 1, 5) == (score, "")


@pytest.mark.parametrize("text, why", [
    ("Rating: N/A", "no score found"),
    ("", "empty judgment"),
    ("Score: <total points>", "no score found"),  # the template echoed
    ("I cannot rate this response.", "no score found"),
    ("1. Accuracy: 4\n2. Helpfulness: 5", "several criteria scored (accuracy, helpfulness)"),
    ("Accuracy: 4, Helpfulness: 3", "several criteria scored"),
    ("Between 3 and 4.", "several different numbers and no score: 3, 4"),
    ("It has one error, so four", "several different numbers"),
    ("Score: 8/10", "a score on another scale (8/10"),
    ("Score: 7", "score 7 is off the rubric's scale 1-5"),
    ("0", "score 0 is off the rubric's scale 1-5"),
])
def test_unreadable_judgments_say_why_and_never_default(text, why):
    score, reason = parse_judgment(text, 1, 5)
    assert score is None and why in reason


def test_the_additive_rubric_scale_starts_at_zero():
    assert parse_judgment("Score: 0", 0, 5) == (0, "")
    assert RUBRICS["additive"].choices == ["0", "1", "2", "3", "4", "5"]
    assert RUBRICS["alpagasus"].choices == ["1", "2", "3", "4", "5"]


def test_the_rubric_is_filled_in_one_pass():
    (msg,) = judge_prompt("I={instruction} X={input} O={output} {other}", "say {output}", "", "a {input} b")
    assert msg == {"role": "user", "content": "I=say {output} X=(none) O=a {input} b {other}"}


# ------------------------------------------------------------------------------- the judge stage itself

def judge_stage(**cfg):
    ctx = SimpleNamespace(cfg=SimpleNamespace(seed=1))
    return Judge(ctx, JudgeConfig(sanity_share=0.0, **cfg))


def test_samples_are_averaged_per_instance_and_a_record_is_as_good_as_its_worst_instance():
    st = judge_stage(samples=3, sampling=Sampling(temperature=0.7))
    r = Record("r1", "Name a color.", instances=[Instance("", "red"), Instance("", "blue")])
    reqs = st.requests([r])
    assert len(reqs) == 6 and len({q.seed for q in reqs}) == 6  # one seed per (instance, sample)
    out = st.process([r], [Completion(t) for t in ["4", "Score: 5/5", "**3**", "2", "3", "I'd give it a four"]])
    (kept,) = out.rows
    assert kept.extra["judge_scores"] == [[4, 5, 3], [2, 3, 4]]
    assert kept.extra["judge_score"] == 3.0  # min of the means 4 and 3
    assert list(kept.extra)[:3] == ["judge_score", "judge_scores", "judge_raw"]
    st_mean = judge_stage(samples=3, aggregate="mean", sampling=Sampling(temperature=0.7))
    out = st_mean.process([r], [Completion(t) for t in ["4", "5", "3", "2", "3", "4"]])
    assert out.rows[0].extra["judge_score"] == 3.5


def test_one_unreadable_sample_rejects_the_record_with_its_reason():
    st = judge_stage(samples=2, sampling=Sampling(temperature=0.7))
    r = Record("r1", "Name a color.", instances=[Instance("", "red")])
    out = st.process([r], [Completion("4"), Completion("Rating: N/A")])
    assert not out.rows
    (rej,) = out.rejects
    row = rej.to_json()
    assert row["reason"] == "unparseable_judgment" and row["raw"] == "Rating: N/A"
    assert row["detail"] == "instance 0, sample 1: no score found"
    assert row["judge_scores"] == [[4, None]] and "judge_score" not in row  # no default score anywhere
    assert out.counts.reasons() == {"unparseable_judgment": 1}


def test_requests_ask_for_structured_choices_unless_switched_off():
    r = Record("r1", "Name a color.", instances=[Instance("", "red")])
    assert judge_stage().requests([r])[0].choices == ["1", "2", "3", "4", "5"]
    assert judge_stage(rubric="additive").requests([r])[0].choices == ["0", "1", "2", "3", "4", "5"]
    assert judge_stage(structured=False).requests([r])[0].choices is None
    custom = judge_stage(template="Rate {instruction} / {output} from 1 to 5.").requests([r])[0]
    assert custom.prompt[0]["content"] == "Rate Name a color. / red from 1 to 5."


def test_the_openai_backend_sends_the_servers_structured_outputs_field():
    from selfinstruct.backends.openai_server import OpenAIBackend, OpenAIOptions

    from .fault_server import FaultServer, Reply

    reply = {"choices": [{"index": 0, "message": {"content": "4"}, "finish_reason": "stop"}]}
    with FaultServer(lambda req: Reply(body=reply)) as srv:
        be = OpenAIBackend("m", OpenAIOptions(base_urls=[srv.url], max_retries=0), served_model="m")
        msgs = [{"role": "user", "content": "rate"}]
        outs = be.generate([Request(msgs, choices=["1", "2"]), Request(msgs)])
        be.close()
        bodies = [s.body for s in srv.requests if s.path.endswith("/chat/completions")]
    assert [o.text for o in outs] == ["4", "4"]
    # (the two requests may reach the server in either order)
    assert sorted(json.dumps(b.get("structured_outputs")) for b in bodies) == ['null', '{"choice": ["1", "2"]}']


def test_the_vllm_backend_maps_choices_to_the_installed_versions_parameter():
    pytest.importorskip("vllm")
    from selfinstruct.backends.vllm_engine import structured_choice

    assert structured_choice(None) == {}
    (name, params), = structured_choice(["1", "2"]).items()
    assert name in ("structured_outputs", "guided_decoding") and params.choice == ["1", "2"]


@pytest.mark.parametrize("text, where", [
    ("samples: 3", "several samples of a greedy judge"),
    ("template: 'Rate {instruction}'", "must contain {instruction} and {output}"),
    ("rubric: stars", "must be one of alpagasus, additive"),
    ("samples: 17", "judge.samples"),
])
def test_judge_settings_are_checked(tmp_path, text, where):
    with pytest.raises(UserError, match=where):
        config(tmp_path, judge=text)


# -------------------------------------------------------------------------------- the scripted judge

def expected_scores(run):
    """What the scripted judge (FakeBackend: fake.judge_rule) must give each record, by the rule alone."""
    out = {}
    for r in rows(run, "filter"):
        s = [judge_rule(i["output"]) for i in r["instances"]]
        out[r["id"]] = None if None in s else min(s)
    return out


def test_a_scripted_judge_keeps_exactly_the_expected_records_and_the_sanity_figure_is_right(tmp_path):
    run = tmp_path / "run"
    run_pipeline(config(tmp_path), run, quiet=True, backend=FakeBackend(order_seed=3, cap=6))
    want = expected_scores(run)
    judged, rejected = rows(run, "judge"), rows(run, "judge", rejects=True)
    assert {r["id"]: r["judge_score"] for r in judged} == {i: s for i, s in want.items() if s is not None}
    assert {r["id"] for r in rejected} == {i for i, s in want.items() if s is None} != set()
    assert {(r["reason"], r["raw"], r["detail"].split(": ", 1)[1]) for r in rejected} == {
        ("unparseable_judgment", "Rating: N/A", "no score found")}
    forms = {re.sub(r"\d|one|two|three|four|five", "N", t) for r in judged for inst in r["judge_raw"] for t in inst}
    assert len(forms) >= 4  # the answers vary in form ...
    for r in judged:  # ... and every form was read as the score the rule gave
        assert r["judge_scores"] == [[judge_rule(i["output"])] for i in r["instances"]]
    kept = [r["id"] for r in rows(run, "select")]
    assert kept == [i for i, s in want.items() if s is not None and s >= 4] != []  # in input order
    assert {r["reason"] for r in rows(run, "select", rejects=True)} == {"below_min_score"}

    # the sanity figure: own answer vs another record's, recomputed from the rule
    outputs = {r["id"]: r["instances"][0]["output"] for r in rows(run, "filter")}
    pairs = [r["judge_sanity"] for r in judged if "judge_sanity" in r]
    assert len(pairs) > 5
    read = []
    for p in pairs:
        assert p["own"] == judge_rule(outputs[[r for r in judged if r.get("judge_sanity") is p][0]["id"]])
        assert p["score"] == judge_rule(outputs[p["other"]])
        if p["score"] is not None:
            read.append((p["own"], p["score"]))
    sanity = compute_report(run).judge.sanity
    assert (sanity.pairs, sanity.higher, sanity.ties) == (len(read), sum(a > b for a, b in read),
                                                          sum(a == b for a, b in read))
    assert sanity.unparseable == len(pairs) - len(read)
    assert sanity.share == pytest.approx(sum(a > b for a, b in read) / len(read)) and not sanity.verdict

    r = CliRunner().invoke(main, ["stats", str(run), "--no-plots"])
    assert r.exit_code == 0, r.output
    section = r.output[r.output.index("Judge ("):].split("\n\n")[0].splitlines()
    assert all(len(line) <= 100 for line in section), max(section, key=len)
    assert "Judge (alpagasus rubric, 1-5)" in r.output and f"kept {len(kept)} of {len(judged)}" in r.output
    assert f"higher in {sanity.higher} = {100 * sanity.share:.1f}%" in r.output.replace("\n          ", " ")
    html = (run / "report.html").read_text()
    assert "Judge scores and selection" in html and "selection (judge_score &gt;= 4)" in html
    first = rows(run, "select")[0]
    r = CliRunner().invoke(main, ["show", str(run / "select"), "-n", "1"])
    assert f"judge={first['judge_score']:g}  rank={first['selection']['rank']}" in r.output


class SameScore(FakeBackend):
    """A judge that gives every answer 3."""

    @staticmethod
    def answer(r):
        judged = not isinstance(r.prompt, str) and "[End of response]" in r.prompt[-1]["content"]
        return "Score: 3" if judged else answer(r)


def test_a_judge_that_gives_every_answer_the_same_score_shows_0_percent_and_says_so(tmp_path):
    run = tmp_path / "run"
    run_pipeline(config(tmp_path), run, quiet=True, backend=SameScore())
    rep = compute_report(run)
    assert set(rep.judge.scores) == {3.0} and rep.judge.sanity.pairs > 0
    assert rep.judge.sanity.share == 0.0 and rep.judge.sanity.ties == rep.judge.sanity.pairs
    assert "does not tell answers apart" in rep.judge.sanity.verdict
    r = CliRunner().invoke(main, ["stats", str(run), "--no-plots"])
    assert "! sanity 0.0%: the judge gave the real and the mismatched answer the same score" in r.output
    assert rep.to_dict()["judge"]["sanity"]["share"] == 0.0


# ------------------------------------------------------------------------------------------ resume

class Dies(FakeBackend):
    def __init__(self, polls, **kw):
        super().__init__(**kw)
        self.left = polls

    def poll(self):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt("simulated crash")
        return super().poll()


def test_killed_in_the_middle_of_the_judge_a_rerun_gives_the_identical_result(tmp_path):
    whole = tmp_path / "whole"
    run_pipeline(config(tmp_path), whole, quiet=True, backend=FakeBackend(order_seed=1, cap=5))

    crash = tmp_path / "crash"
    run_pipeline(config(tmp_path, UP_TO_FILTER), crash, quiet=True, backend=FakeBackend(order_seed=2, cap=7))
    with pytest.raises(KeyboardInterrupt):  # only the judge calls the model now: it dies half-way
        run_pipeline(config(tmp_path), crash, quiet=True, backend=Dies(12, order_seed=3, cap=3))
    manifest = json.loads((crash / "judge" / "manifest.json").read_text())
    assert not manifest["complete"] and 0 < manifest["state"]["inputs_done"] < len(rows(whole, "filter"))
    run_pipeline(config(tmp_path), crash, quiet=True, backend=FakeBackend(order_seed=4, cap=50))
    for stage in ("judge", "select"):
        assert rows(crash, stage) == rows(whole, stage)
        assert rows(crash, stage, rejects=True) == rows(whole, stage, rejects=True)
    assert (crash / "judge" / "part-00000.jsonl").read_bytes() == (whole / "judge" / "part-00000.jsonl").read_bytes()


def test_judge_score_statistics_per_task_type(tmp_path):
    run = tmp_path / "run"
    run_pipeline(config(tmp_path), run, quiet=True, backend=FakeBackend())
    js = compute_report(run).judge
    judged = rows(run, "judge")
    for kind, flag in (("classification", True), ("generation", False)):
        scores = [r["judge_score"] for r in judged if r["is_classification"] is flag]
        assert sum(js.by_type[kind]) == len(scores)
        assert js.type_means[kind] == pytest.approx(statistics.fmean(scores))
        assert js.by_type[kind] == [sum(1 for s in scores if int(s) == k) for k in range(1, 6)]
    assert js.unparseable == len(rows(run, "judge", rejects=True))
