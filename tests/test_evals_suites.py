"""The evaluation suites' mechanics without a model: pairwise verdicts and their combination in both
orders, the runner's outputs on the transformers engine (tiny), and bad input."""
import pytest

from selfinstruct.evals import pairwise

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("text, verdict", [
    (" A", "A"), ("B.", "B"), ("tie", "tie"), ("Tie: both are fine", "tie"), ("**B**", "B"),
    ("Answer A is better", "A"), ("Verdict: B", "B"), ("I think neither", None), ("", None), ("Both", None),
])
def test_judge_verdicts_are_parsed_or_counted_unparseable(text, verdict):
    assert pairwise.parse_verdict(text) == verdict


def test_both_orders_cancel_position_bias():
    # a judge that always says "A": base wins the first order, tuned the swapped one -> a tie
    assert pairwise.combine("A", "A").score == 0.5
    assert pairwise.combine("B", "A").score == 1.0  # tuned preferred in both orders
    assert pairwise.combine("A", "B").score == 0.0
    assert pairwise.combine(None, "A").score == 0.75
    s = pairwise.summarize([pairwise.combine("B", "A"), pairwise.combine("A", "A"), pairwise.combine(None, None)])
    assert (s["wins"], s["ties"], s["losses"], s["unparseable_verdicts"]) == (1, 2, 0, 2)
    assert s["win_rate"] == pytest.approx((1 + 0.5 + 0.5) / 3)
