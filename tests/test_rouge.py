"""Exactness tests for selfinstruct.dedup (score, index, batch) against the reference rouge-score 0.1.2."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
rs_tokenize = pytest.importorskip("rouge_score.tokenize")
pytest.importorskip("rapidfuzz")
pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from rapidfuzz import process as rf_process  # noqa: E402
from rapidfuzz.distance import LCSseq  # noqa: E402

from selfinstruct.dedup import Match, RougeIndex, dedup, rouge_l_f, tokenize  # noqa: E402
from selfinstruct.dedup import batch, postings, score, search  # noqa: E402

SEED_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "self_instruct_seed_tasks.jsonl"

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def ref_tokenize(text: str) -> list[str]:
    return SCORER._tokenizer.tokenize(text)


def ref_f(new: list[str], old: list[str]) -> float:
    return rouge_scorer._score_lcs(new, old).fmeasure


# ---------------------------------------------------------------------------
# reference greedy dedup
# ---------------------------------------------------------------------------


def ref_greedy_small(texts, threshold, pool=()):
    """Alpaca's loop, pure rouge-score: (dropped flags, best score, best key) per text."""
    kept = [(f"pool:{i}", ref_tokenize(t)) for i, t in enumerate(pool)]
    out = []
    for i, t in enumerate(texts):
        new = ref_tokenize(t)
        best, best_key = 0.0, None
        for key, old in kept:
            f = ref_f(new, old)
            if f > best:
                best, best_key = f, key
        dup = best > threshold
        out.append((dup, best, best_key))
        if not dup:
            kept.append((str(i), new))
    return out


def _ref_f_vec(lcs: np.ndarray, m: int, n: np.ndarray) -> np.ndarray:
    # rouge_scorer._score_lcs + scoring.fmeasure, element-wise, same float operations
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = lcs / n
        recall = lcs / m
        s = precision + recall
        f = 2 * precision * recall / s
    return np.where(s > 0, f, 0.0)


def ref_greedy_fast(texts, threshold, pool=(), check_pairs=True):
    """Brute-force greedy dedup over all kept pairs (no pruning).

    LCS lengths come from rapidfuzz over rouge-score's own tokens; the score formula
    is rouge-score's.  Both are cross-checked with rouge_scorer._score_lcs on a random
    sample of pairs and on every pair whose score is within 1e-6 of the threshold.
    """
    toks = [ref_tokenize(t) for t in list(pool) + list(texts)]
    vocab: dict[str, int] = {}
    encs = ["".join(chr(0x100 + vocab.setdefault(w, len(vocab))) for w in ts) for ts in toks]
    npool = len(pool)
    kept_idx = list(range(npool))
    kept_enc = [encs[i] for i in kept_idx]
    kept_len = [len(toks[i]) for i in kept_idx]
    rng = random.Random(1)
    out = []
    checked = 0
    for x in range(npool, len(toks)):
        m = len(toks[x])
        if kept_enc and m:
            lcs = rf_process.cdist([encs[x]], kept_enc, scorer=LCSseq.similarity, dtype=np.int64)[0]
            f = _ref_f_vec(lcs.astype(np.float64), m, np.asarray(kept_len, dtype=np.float64))
            f[np.asarray(kept_len) == 0] = 0.0
            if check_pairs:
                near = np.flatnonzero(np.abs(f - threshold) < 1e-6).tolist()
                sample = near + [rng.randrange(len(kept_enc)) for _ in range(2)]
                for j in sample:
                    assert f[j] == ref_f(toks[x], toks[kept_idx[j]])
                    checked += 1
            j = int(np.argmax(f))
            best = float(f[j])
        else:
            best, j = 0.0, -1
        key = None
        if best > 0:
            k = kept_idx[j]
            key = f"pool:{k}" if k < npool else str(k - npool)
        dup = best > threshold
        out.append((dup, best, key))
        if not dup:
            kept_idx.append(x)
            kept_enc.append(encs[x])
            kept_len.append(m)
    if check_pairs:
        assert checked > 0
    return out


# ---------------------------------------------------------------------------
# tokenize
# ---------------------------------------------------------------------------

TRICKY = [
    "",
    " ",
    "\n\t ",
    "Hello, World!",
    "İstanbul is big",  # lower() gives 'i' + combining dot
    "\u212a Kelvin sign",  # KELVIN SIGN lowercases to ASCII 'k'
    "ǅungla ß straße ﬃ",
    "ÀÉÎÕÜ café naïve",
    "3.14159 is pi; 1,000,000 > 999",
    "a-b_c.d/e\\f",
    "don't won't can't",
    "e-mail: x@y.com http://ex.ample/path?q=1",
    "tabs\tand\nnewlines\r\n",
    "ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ １２３",
    "日本語のテキスト and english",
    "emoji 😀 in 🚀 text",
    "___",
    "UPPER lower MiXeD 42abc abc42",
    "\u0130\u0131\u0049\u0069",
    "x\u0307y",
    "\x00nul\x00byte",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tokenize_tricky(text):
    assert tokenize(text) == rs_tokenize.tokenize(text, None) == ref_tokenize(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_tokenize_hypothesis(text):
    assert tokenize(text) == rs_tokenize.tokenize(text, None)


# ---------------------------------------------------------------------------
# pair score
# ---------------------------------------------------------------------------

small_seq = st.lists(st.sampled_from(["a", "b", "c", "d", "the", "x1"]), max_size=14)


@settings(max_examples=400, deadline=None)
@given(small_seq, small_seq)
def test_rouge_l_f_exact(a, b):
    assert rouge_l_f(a, b) == ref_f(a, b)
    assert rouge_l_f(b, a) == ref_f(b, a)  # argument order: (new=target, old=prediction)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=3), max_size=30), st.data())
def test_rouge_l_f_exact_larger(a, data):
    b = data.draw(st.lists(st.sampled_from(a) if a else st.just("z"), max_size=30))
    assert rouge_l_f(a, b) == ref_f(a, b)
    assert rouge_l_f(b, a) == ref_f(b, a)


def test_rouge_l_f_tuple_fallback(monkeypatch):
    monkeypatch.setattr(score, "MAX_CHR_IDS", 2)
    a = "the cat sat on the mat".split()
    b = "a cat sat on a hat the".split()
    assert rouge_l_f(a, b) == ref_f(a, b)


def test_score_is_symmetric_but_arguments_are_respected():
    # F = 2pr/(p+r) is symmetric in (p, r) with IEEE arithmetic (x2 is exact), so
    # swapping new/old gives the same value; precision/recall do swap.
    new = "give me three tips for staying healthy".split()
    old = "give three tips for staying healthy and happy every day".split()
    s1 = rouge_scorer._score_lcs(new, old)
    s2 = rouge_scorer._score_lcs(old, new)
    assert (s1.precision, s1.recall) == (s2.recall, s2.precision)
    assert rouge_l_f(new, old) == s1.fmeasure
    assert rouge_l_f(old, new) == s2.fmeasure


def test_boundary_shortcut_disagrees():
    # L=7, m=len(new)=7, n=len(old)=13: 2L/(m+n) == 0.7 exactly, but rouge-score's
    # 2pr/(p+r) evaluates to 0.7000000000000001 > 0.7 -> duplicate.
    new = "alpha bravo charlie delta echo foxtrot golf"
    old = "alpha x1 bravo x2 charlie x3 delta x4 echo x5 foxtrot x6 golf"
    nt, ot = ref_tokenize(new), ref_tokenize(old)
    assert (len(nt), len(ot)) == (7, 13)
    lcs = 7
    assert 2 * lcs / (len(nt) + len(ot)) == 0.7
    assert not (2 * lcs / (len(nt) + len(ot)) > 0.7)
    assert ref_f(nt, ot) > 0.7
    assert rouge_l_f(nt, ot) == ref_f(nt, ot)
    # the filters must flag it like rouge-score does
    assert dedup([new], 0.7, pool=[old])[0].duplicate
    idx = RougeIndex(0.7)
    idx.add(old, "old")
    m = idx.query(new)
    assert m == Match(True, "old", ref_f(nt, ot))
    # and another shape (m=8, n=12): new is not fully contained
    new2 = "alpha bravo charlie delta echo foxtrot golf hotel"
    old2 = "alpha bravo zz charlie delta yy echo foxtrot ww golf vv uu"
    n2, o2 = ref_tokenize(new2), ref_tokenize(old2)
    assert (len(n2), len(o2)) == (8, 12)
    assert 2 * 7 / 20 == 0.7 and ref_f(n2, o2) > 0.7
    assert dedup([new2], 0.7, pool=[old2])[0].duplicate
    # the exact 0.7 case on the other side is not a duplicate
    new3 = "alpha bravo charlie delta echo foxtrot golf"
    old3 = "alpha bravo charlie delta echo foxtrot golf a b c d e f g h i j k l m n o p"
    f3 = ref_f(ref_tokenize(new3), ref_tokenize(old3))
    assert dedup([new3], f3, pool=[old3])[0].duplicate is False
    assert dedup([new3], np.nextafter(f3, 0), pool=[old3])[0].duplicate is True


# ---------------------------------------------------------------------------
# dedup on real seed instructions + synthetic near-duplicates
# ---------------------------------------------------------------------------


def _load_seeds() -> list[str]:
    if not SEED_FILE.exists():
        pytest.skip(f"seed file not found: {SEED_FILE}")
    with open(SEED_FILE, encoding="utf-8") as f:
        return [json.loads(line)["instruction"] for line in f if line.strip()]


def perturb_corpus(seeds: list[str], n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = sorted({w for s in seeds for w in s.split()})
    out: list[str] = []
    for _ in range(n):
        src = rng.choice(seeds) if not out or rng.random() < 0.4 else rng.choice(out)
        w = src.split()
        for _ in range(rng.randint(0, 4)):
            op = rng.randrange(6)
            p = rng.randrange(len(w)) if w else 0
            if op == 0 and len(w) > 1:  # swap
                q = rng.randrange(len(w))
                w[p], w[q] = w[q], w[p]
            elif op == 1 and len(w) > 1:  # delete
                del w[p]
            elif op == 2:  # insert
                w.insert(p, rng.choice(words))
            elif op == 3 and w:  # repeat
                w.insert(p, w[p])
            elif op == 4 and w:  # replace
                w[p] = rng.choice(words)
            elif w:  # recombine with another seed
                o = rng.choice(seeds).split()
                w = w[: rng.randint(1, len(w))] + o[rng.randint(0, len(o) - 1) :]
        if rng.random() < 0.05:
            w = w[: rng.randint(0, 3)]
        out.append(" ".join(w))
    return out


@pytest.fixture(scope="module")
def seed_corpus():
    seeds = _load_seeds()
    return seeds, perturb_corpus(seeds, 2500)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.9])
def test_dedup_seeds_matches_bruteforce(seed_corpus, threshold):
    seeds, texts = seed_corpus
    ref = ref_greedy_fast(texts, threshold, pool=seeds)
    res = dedup(texts, threshold, pool=seeds)
    assert [m.duplicate for m in res] == [r[0] for r in ref]
    n_dup = sum(r[0] for r in ref)
    assert 0 < n_dup < len(texts)
    # nearest/score are exact whenever the best score exceeds the threshold (floor)
    for m, (_dup, best, key) in zip(res, ref):
        if best > threshold:
            assert (m.nearest, m.score) == (key, best)
        else:
            assert m.nearest is None and m.score == 0.0
    # incremental API: identical decisions and matches
    idx = RougeIndex(threshold)
    for i, s in enumerate(seeds):
        idx.add(s, f"pool:{i}")
    inc = [idx.check_add(t, str(i)) for i, t in enumerate(texts)]
    assert inc == res
    assert len(idx) == len(seeds) + sum(not m.duplicate for m in res)


def test_dedup_seeds_only_themselves(seed_corpus):
    seeds, _ = seed_corpus
    ref = ref_greedy_small(seeds, 0.7)
    res = dedup(seeds, 0.7)
    assert [(m.duplicate, m.nearest, m.score) for m in res] == [
        (d, k if b > 0.7 else None, b if b > 0.7 else 0.0) for d, b, k in ref
    ]


def test_dedup_pure_rouge_score_reference(seed_corpus):
    # no rapidfuzz anywhere in the reference: rouge_scorer._score_lcs greedy
    seeds, texts = seed_corpus
    sub = texts[:250]
    ref = ref_greedy_small(sub, 0.7, pool=seeds[:40])
    res = dedup(sub, 0.7, pool=seeds[:40], floor=0.0)
    for m, (dup, best, key) in zip(res, ref):
        assert m.duplicate == dup
        assert (m.nearest, m.score) == (key, best)


def test_floor_zero_gives_exact_nearest(seed_corpus):
    seeds, texts = seed_corpus
    sub = texts[:800]
    ref = ref_greedy_fast(sub, 0.7, pool=seeds)
    res = dedup(sub, 0.7, pool=seeds, floor=0.0)
    assert [(m.duplicate, m.nearest, m.score) for m in res] == [(d, k, b) for d, b, k in ref]
    idx = RougeIndex(0.7, floor=0.0)
    for i, s in enumerate(seeds):
        idx.add(s, f"pool:{i}")
    assert [idx.check_add(t, str(i)) for i, t in enumerate(sub)] == res


def test_intermediate_floor(seed_corpus):
    seeds, texts = seed_corpus
    sub = texts[:1000]
    ref = ref_greedy_fast(sub, 0.7, pool=seeds, check_pairs=False)
    res = dedup(sub, 0.7, pool=seeds, floor=0.4)
    assert [m.duplicate for m in res] == [r[0] for r in ref]
    for m, (_dup, best, key) in zip(res, ref):
        if best > 0.4:
            assert (m.nearest, m.score) == (key, best)
        else:
            assert m.nearest is None


def test_state_roundtrip(seed_corpus):
    seeds, texts = seed_corpus
    texts = texts[:1500]
    a = RougeIndex(0.7)
    for i, s in enumerate(seeds):
        a.add(s, f"seed:{i}")
    first = [a.check_add(t, str(i)) for i, t in enumerate(texts[:700])]
    st_ = json.loads(json.dumps(a.state()))
    b = RougeIndex.from_state(st_)
    assert len(b) == len(a)
    assert b.state() == a.state()
    rest_a = [a.check_add(t, str(i)) for i, t in enumerate(texts[700:], 700)]
    rest_b = [b.check_add(t, str(i)) for i, t in enumerate(texts[700:], 700)]
    assert rest_a == rest_b
    # the same decisions as one batch run with the seeds as pool
    batch = dedup(texts, 0.7, pool=seeds)
    assert [m.duplicate for m in first + rest_a] == [m.duplicate for m in batch]
    # unseen words after restore
    novel = "Completely zyxwvut unseen qwertyuiop words here please"
    assert a.query(novel) == b.query(novel)
    a.add(novel, "n")
    b.add(novel, "n")
    assert a.state() == b.state()


def test_query_does_not_modify(seed_corpus):
    seeds, _ = seed_corpus
    idx = RougeIndex(0.7)
    for i, s in enumerate(seeds[:50]):
        idx.add(s, str(i))
    before = json.dumps(idx.state())
    m = idx.query(seeds[3] + " now")
    assert m.duplicate and m.nearest == "3"
    idx.query("brand new never seen tokens xyzzy")
    assert json.dumps(idx.state()) == before
    assert len(idx) == 50


def test_tuple_mode_fallback(monkeypatch, seed_corpus):
    seeds, texts = seed_corpus
    sub = texts[:600]
    expect = dedup(sub, 0.7, pool=seeds)
    monkeypatch.setattr(score, "MAX_CHR_IDS", 50)
    assert dedup(sub, 0.7, pool=seeds) == expect
    idx = RougeIndex(0.7)
    for i, s in enumerate(seeds):
        idx.add(s, f"pool:{i}")
    assert [idx.check_add(t, str(i)) for i, t in enumerate(sub)] == expect
    assert idx.tuple_encoding


def test_dedup_progress_and_keys():
    calls = []
    texts = ["write a poem about the sea", "write a poem about the sea!", "", "...", "list three colors"]
    res = dedup(texts, 0.7, pool=["Write a poem about the sea."], progress=calls.append)
    assert calls and calls[-1] == len(texts)
    assert res[0] == Match(True, "pool:0", 1.0)
    assert res[1] == Match(True, "pool:0", 1.0)
    assert res[2] == Match(False, None, 0.0)  # no tokens: never a duplicate
    assert res[3] == Match(False, None, 0.0)
    assert res[4].duplicate is False
    res2 = dedup(["a b c d", "a b c d"], 0.7)
    assert res2 == [Match(False, None, 0.0), Match(True, "0", 1.0)]
    assert dedup([], 0.7) == []


# ---------------------------------------------------------------------------
# hypothesis: small vocabularies, many repeated tokens
# ---------------------------------------------------------------------------

word = st.sampled_from(["a", "b", "c", "d", "e", "the", "of"])
text_st = st.lists(word, max_size=12).map(" ".join)
thresholds = st.sampled_from([0.0, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(text_st, max_size=30), st.lists(text_st, max_size=4), thresholds)
def test_dedup_hypothesis(texts, pool, threshold):
    ref = ref_greedy_small(texts, threshold, pool=pool)
    res = dedup(texts, threshold, pool=pool)
    assert [m.duplicate for m in res] == [r[0] for r in ref]
    for m, (_dup, best, key) in zip(res, ref):
        if best > threshold:
            assert (m.nearest, m.score) == (key, best)
    # exact nearest with floor=0
    res0 = dedup(texts, threshold, pool=pool, floor=0.0)
    assert [(m.duplicate, m.nearest, m.score) for m in res0] == [(d, k, b) for d, b, k in ref]
    # incremental
    idx = RougeIndex(threshold, floor=0.0)
    for i, p in enumerate(pool):
        idx.add(p, f"pool:{i}")
    assert [idx.check_add(t, str(i)) for i, t in enumerate(texts)] == res0


@settings(max_examples=100, deadline=None)
@given(st.lists(text_st, min_size=1, max_size=25), thresholds, st.integers(0, 24))
def test_state_roundtrip_hypothesis(texts, threshold, cut):
    cut = min(cut, len(texts))
    a = RougeIndex(threshold)
    for i, t in enumerate(texts[:cut]):
        a.check_add(t, str(i))
    b = RougeIndex.from_state(json.loads(json.dumps(a.state())))
    for i, t in enumerate(texts[cut:], cut):
        assert a.check_add(t, str(i)) == b.check_add(t, str(i))


def test_small_block_size_paths(monkeypatch, seed_corpus):
    # exercise block boundaries and the cdist / pooled / split-posting code paths
    seeds, texts = seed_corpus
    sub = texts[:1500]
    expect = [r[0] for r in ref_greedy_fast(sub, 0.7, pool=seeds, check_pairs=False)]
    for block, big, split in [(7, 1, 1), (100, 10**9, 10**9), (333, 4, 3)]:
        monkeypatch.setattr(batch, "BLOCK_SIZE", block)
        monkeypatch.setattr(search, "BIG_GROUP", big)
        monkeypatch.setattr(postings, "SPLIT_ABOVE", split)
        assert [m.duplicate for m in dedup(sub, 0.7, pool=seeds)] == expect
        idx = RougeIndex(0.7)
        for i, s in enumerate(seeds):
            idx.add(s, f"pool:{i}")
        assert [idx.check_add(t, str(i)).duplicate for i, t in enumerate(sub)] == expect


def test_bad_threshold():
    with pytest.raises(ValueError):
        RougeIndex(-0.1)


@pytest.mark.parametrize("sequential_below", [0.0, 2.0])
@pytest.mark.parametrize("threshold,floor", [(0.7, 0.0), (0.7, None), (0.5, 0.35)])
def test_dedup_block_and_sequential_modes(monkeypatch, seed_corpus, sequential_below, threshold, floor):
    # both batch strategies (blocks + in-block self-join, or text by text), any floor
    seeds, texts = seed_corpus
    sub = texts[:500]
    ref = ref_greedy_fast(sub, threshold, pool=seeds[:60], check_pairs=False)
    monkeypatch.setattr(batch, "SEQUENTIAL_BELOW", sequential_below)
    monkeypatch.setattr(batch, "BLOCK_SIZE", 97)
    res = dedup(sub, threshold, pool=seeds[:60], floor=floor)
    fl = threshold if floor is None else floor
    assert [m.duplicate for m in res] == [r[0] for r in ref]
    for m, (_dup, best, key) in zip(res, ref):
        if best > fl:
            assert (m.nearest, m.score) == (key, best)
        else:
            assert m.nearest is None


def test_external_order_index_refuses_text_methods():
    idx = RougeIndex(0.7, external_order=True)
    assert idx.external_order and not RougeIndex(0.7).external_order
    for call in (lambda: idx.add("a b", "k"), lambda: idx.query("a b"), lambda: idx.check_add("a b", "k"), idx.state):
        with pytest.raises(RuntimeError):
            call()
    with pytest.raises(RuntimeError):
        RougeIndex(0.7).add_encoded("k", "a b", "\x00\x01", 2, [0, 1])
    # the encoded API alone: add, defer postings, post, match
    item = idx.add_encoded("k", "a b c", "\x00\x01\x02", 3, None)
    assert idx.key(item) == "k" and len(idx) == 1 and list(idx.posted_ranks()) == []
    assert idx.match_encoded("\x00\x01\x02", 3, [0, 1]) == Match(False, None, 0.0)
    idx.post_prefix(item, [0, 1])
    assert sorted(idx.posted_ranks()) == [0, 1]
    assert idx.match_encoded("\x00\x01\x02", 3, [0, 1]) == Match(True, "k", 1.0)


def test_dedup_package_layout():
    # small modules; no module imports a private name of another
    import ast

    pkg = Path(score.__file__).parent
    for path in sorted(pkg.glob("*.py")):
        src = path.read_text(encoding="utf-8")
        assert len(src.splitlines()) <= 400, path.name
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom):
                assert not any(a.name.startswith("_") for a in node.names), (path.name, node.module)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in ("score", "postings", "search", "index", "batch"):
                    assert not node.attr.startswith("_"), (path.name, node.value.id, node.attr)
