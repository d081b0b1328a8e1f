"""Workflows that drive generation and training together, one layer under the CLI: `dpo --iterations`
(iterate.py: new pairs from the newest model, then DPO, N times) and `ablate` (ablate/: selections of one
run fine-tuned and evaluated against each other)."""
