"""Offline evaluation of instruction following: `selfinstruct evaluate --suite ifbench|constraints`.

`checkers` (if-verifiable's checkers, offline), `ifbench` (scoring and summaries), `constraints`
(IFEval-style prompts built from a run's held-out instructions), `bootstrap` (confidence intervals).
Nothing is imported here: the checkers pull in NLTK and friends, only the commands that score need them.
"""
