"""The training-constraint library: verifiable constraints added to training prompts (IFTrain-style),
disjoint in id and meaning from what `evals` tests (IFBench and the `constraints` suite).

    from selfinstruct.constraints import sample_constraints, describe_all, check_all
    cs = sample_constraints(random.Random(seed), k=2)
    prompt = f"{instruction} {describe_all(cs, rng)}"
    check_all(answer, cs)              # [True, False]: strict
    check_all(answer, cs, loose=True)  # IFEval's loose variants

New types: a `ConstraintType` subclass with `@register_constraint` (`constraints.registry`), in a module
named in the entry-point group `selfinstruct.constraints`. A bottom-layer package: it imports only
`io`-level code and the standard library, PyYAML included."""
from .base import ConstraintType
from .constraint import Constraint, check_all, compatible, describe_all, sample_constraints
from .listing import constraint_rows, format_rows
from .plugins import conflict_table, constraint_types, get_type
from .registry import register_constraint
from .text import loose_variants

__all__ = ["Constraint", "ConstraintType", "check_all", "compatible", "conflict_table", "constraint_rows",
           "constraint_types", "describe_all", "format_rows", "get_type", "loose_variants",
           "register_constraint", "sample_constraints"]
