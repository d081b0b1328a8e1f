"""`ConstraintType`: what one kind of training constraint is. A type samples its parameters, says what it
asks in several phrasings, checks an answer strictly and loosely, names the evaluation types it is nearest
to (and why it is not one of them), and names the types it cannot share a prompt with.

A type holds no state: the registry keeps one instance of each class (`registry.register_constraint`)."""
from __future__ import annotations

import random
from typing import Any, ClassVar, Mapping

from .text import loose_variants


class ConstraintType:
    id: ClassVar[str] = ""                # namespaced ("train:hyphen_sentences"): never an IFEval/IFBench id
    family: ClassVar[str] = ""            # a group for listings: sentences, positions, punctuation, words, ...
    params: ClassVar[dict[str, str]] = {}  # parameter -> what it is and the range it is sampled from
    phrasings: ClassVar[tuple[str, ...]] = ()  # str.format templates over `render(kwargs)`; at least three
    nearest_eval: ClassVar[dict[str, str]] = {}  # evaluation id -> why this type is not that one
    conflicts: ClassVar[frozenset[str]] = frozenset()  # type ids that never share a prompt with this one
    # whether the loose check also reads the answer with markdown stripped: a loose reading of prose; in a
    # document a parser checks, "#" starts a comment and "*" an alias, and stripping them changes what it says
    loose_markdown: ClassVar[bool] = True

    def sample(self, rng: random.Random) -> dict[str, Any]:
        """Parameters for one prompt, drawn from `rng` only (the same seed gives the same ones). Values are
        JSON types (lists, not tuples), so a record stores them as they are."""
        return {}

    def holds(self, text: str, **kwargs: Any) -> bool:
        """The strict check: `text`, exactly as the model wrote it, follows the constraint. Must return a
        bool for any str (empty, lone surrogates, megabytes) in about linear time, and never raise."""
        raise NotImplementedError

    def check(self, text: str, **kwargs: Any) -> bool:
        """Strict: a blank answer follows nothing (as IFEval scores it), else `holds`."""
        return _answered(text) and bool(self.holds(text, **kwargs))

    def check_loose(self, text: str, **kwargs: Any) -> bool:
        """IFEval's loose check: any of `text.loose_variants` (all non-blank) passes `holds`."""
        return any(self.holds(t, **kwargs) for t in loose_variants(text, markdown=self.loose_markdown))

    def render(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The values a phrasing template is filled with (lists joined into words here)."""
        return dict(kwargs)

    def describe(self, kwargs: Mapping[str, Any], phrasing: int | random.Random = 0) -> str:
        """The constraint in words: phrasing number `phrasing` (modulo their count), or one drawn from an rng."""
        n = phrasing.randrange(len(self.phrasings)) if isinstance(phrasing, random.Random) else phrasing
        return self.phrasings[n % len(self.phrasings)].format(**self.render(kwargs))


def _answered(text: str) -> bool:
    return bool(text) and not text.isspace()


def quoted_list(items: list[str], conjunction: str = "and") -> str:
    """["a", "b", "c"] -> '`a`, `b` and `c`' (for phrasings that name keys or tables)."""
    names = [f"`{i}`" for i in items]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"
