"""The request window: order, fullness, gating, abort; and that a pipeline's output does not depend
on the order or timing in which the backend finishes requests (the real-engine version of this is in
test_integration: an uninterrupted run vs crashed-and-resumed runs)."""
import json

import pytest

from selfinstruct.backends.base import Request
from selfinstruct.backends.fake import FakeBackend
from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.generate.scheduler import Window
from selfinstruct.io.shards import read_stage_rows

from .conftest import ROOT, dying

class ScrambledBackend(FakeBackend):
    """The shipped fake backend: answers are a pure function of the request; requests finish in a
    random order, a random number per poll."""

    def __init__(self, seed=0, cap=8):
        super().__init__(order_seed=seed, cap=cap)


def reqs(tag, n):
    return [Request(f"{tag}-{i}") for i in range(n)]


def test_results_come_back_in_the_order_added_whatever_the_finish_order():
    be = ScrambledBackend(seed=3)
    w = Window(be, limit=5)
    for g in range(4):
        w.add(g, reqs(g, g + 2), meta=f"m{g}")
    got = []
    while (item := w.next()) is not None:
        g, i, c = item
        got.append((g.key, i, c.text))
        assert g.meta == f"m{g.key}"
    assert [(k, i) for k, i, _ in got] == [(g, i) for g in range(4) for i in range(g + 2)]
    assert all(t == be.answer(Request(f"{k}-{i}")) for k, i, t in got)
    assert be.max_live == 5 and not be.live and w.outstanding == 0


def test_the_window_is_topped_up_before_each_result_is_handed_back():
    be = ScrambledBackend(seed=1)
    w = Window(be, limit=6)
    w.add("a", reqs("a", 30))
    for left in range(29, -1, -1):
        g, i, c = w.next()
        # everything still to hand back is running, up to the limit
        assert len(be.live) == min(6, left) or len(be.live) + sum(r is not None for r in g.results[i + 1:]) >= min(6, left)
        assert w.in_flight <= 6
    assert w.next() is None


def test_default_limit_is_capacity_plus_half_queued_behind():
    be = ScrambledBackend(cap=10)
    w = Window(be)
    w.add("a", reqs("a", 40))
    assert w.capacity == 10 and w.limit == 16
    w.next()
    assert be.max_live == 16


def test_next_group_returns_whole_groups_in_request_order():
    be = ScrambledBackend(seed=7)
    w = Window(be, limit=3)
    w.add("x", reqs("x", 4))
    w.add("y", reqs("y", 2))
    g, comps = w.next_group()
    assert g.key == "x" and [c.text for c in comps] == [be.answer(r) for r in reqs("x", 4)]
    g, comps = w.next_group()
    assert g.key == "y" and len(comps) == 2
    assert w.next_group() is None


def test_a_batch_without_requests_comes_back_in_its_turn():
    """A batch stage may ask nothing for a batch (verify: no constrained record in it; judge: all of them
    constrained): the executor hands that batch back between its neighbours, with no completions."""
    from selfinstruct.generate.executor import LocalExecutor

    asked = {"a": reqs("a", 2), "b": [], "c": reqs("c", 1), "d": []}
    ex = LocalExecutor(ScrambledBackend(seed=3))
    got = [(b, len(c)) for b, c in ex.map(iter(["a", "b", "c", "d"]), lambda b: asked[b])]
    assert got == [("a", 2), ("b", 0), ("c", 1), ("d", 0)]


def test_a_closed_gate_holds_back_starts_but_never_stalls():
    be = ScrambledBackend(seed=2)
    asked = []

    def gate(win):
        asked.append(win.outstanding)
        return win.outstanding < 2

    w = Window(be, limit=10, gate=gate)
    w.add("a", reqs("a", 12))
    n = 0
    while w.next() is not None:
        n += 1
    assert n == 12 and be.max_live == 2 and asked and min(asked) >= 1

    be2 = ScrambledBackend(seed=2)
    w2 = Window(be2, limit=10, gate=lambda win: False)  # always closed: one at a time, still finishes
    w2.add("a", reqs("a", 5))
    assert sum(1 for _ in iter(w2.next, None)) == 5 and be2.max_live == 1


def test_close_aborts_what_runs_and_forgets_what_was_queued():
    be = ScrambledBackend(seed=4)
    w = Window(be, limit=4)
    w.add("a", reqs("a", 20))
    w.next()
    running = set(be.live)
    assert running
    w.close()
    assert set(be.aborted) == running and not be.live
    assert w.next() is None and w.queued == 0 and w.in_flight == 0


def test_a_backend_that_loses_requests_is_an_error_not_a_hang():
    class Lossy(ScrambledBackend):
        def poll(self):
            self.live.clear()
            return []

    w = Window(Lossy(), limit=2)
    w.add("a", reqs("a", 3))
    with pytest.raises(RuntimeError, match="lost 2 request"):
        w.next()


def test_batch_conveniences_on_top_of_the_primitives():
    be = ScrambledBackend(seed=5)
    rs = reqs("b", 6)
    assert [c.text for c in be.generate(rs)] == [be.answer(r) for r in rs]
    t1, t2 = be.submit(rs[:3]), be.submit(rs[3:])
    assert [c.text for c in be.wait(t2)] == [be.answer(r) for r in rs[3:]]
    be.cancel(t1)
    assert not be.live and not be._finished()


def test_pipeline_output_does_not_depend_on_finish_order_or_window_size(tmp_path):
    cfg = load_config(ROOT / "pipelines" / "default.yaml")
    cfg.stages = ["bootstrap"]
    st = cfg.bootstrap
    st.num_instructions, st.requests_per_round, st.overlap_depth = 60, 5, 3
    runs = []
    for i, (seed, cap) in enumerate([(0, 1), (1, 4), (2, 100)]):
        be = ScrambledBackend(seed=seed, cap=cap)
        run_pipeline(cfg, tmp_path / f"r{i}", quiet=True, backend=be)
        runs.append((list(read_stage_rows(tmp_path / f"r{i}" / "bootstrap")),
                     list(read_stage_rows(tmp_path / f"r{i}" / "bootstrap", rejects=True))))
        if cap == 100:  # the look-ahead rule caps what is in flight: overlap_depth rounds
            assert be.max_live <= st.overlap_depth * st.requests_per_round
            # and near the target few requests start whose answers are not needed
            used = json.loads((tmp_path / f"r{i}" / "bootstrap" / "manifest.json").read_text())["counts"]["requests"]
            assert used <= len(be.started) <= 1.25 * used
    assert len(runs[0][0]) == 60
    assert runs[1] == runs[0] and runs[2] == runs[0]

    with pytest.raises(KeyboardInterrupt):  # killed mid-run, resumed with other timing: same shards
        run_pipeline(cfg, tmp_path / "crash", quiet=True, backend=dying(ScrambledBackend(seed=9, cap=3), 12))
    assert 0 < len(list(read_stage_rows(tmp_path / "crash" / "bootstrap"))) < 60
    run_pipeline(cfg, tmp_path / "crash", quiet=True, backend=ScrambledBackend(seed=10, cap=50))
    assert (list(read_stage_rows(tmp_path / "crash" / "bootstrap")),
            list(read_stage_rows(tmp_path / "crash" / "bootstrap", rejects=True))) == runs[0]
    # machine-generated demonstrations were shown, so the look-ahead rule mattered
    assert any(d["source"] == "machine" for r in runs[0][0] for d in r["prompt_demos"])
