"""The typed records that stages pass along, their rejects, and the per-stage counts.

On disk a record is one JSON object per line, and its layout is kept exactly as earlier versions wrote
it: fields a stage adds go after the ones it read (as `dict(row, new=...)` did), so the shards of a run
are byte-identical across this change. `Record.from_json`/`to_json` are the only places that know the
wire names; stages, `show`, `stats` and `export` work with the attributes."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Wire names of the provenance a generator stage records (kept in this order).
PROVENANCE_KEYS = ("round", "model", "sampling", "prompt_demos", "request_seed", "nearest")
# Raw model text and notes kept per stage, by wire name.
RAW_KEYS = {"classify_raw": "classify", "instances_raw": "instances"}
NOTE_KEYS = {"classify_note": "classify"}
CORE_KEYS = ("id", "instruction", "instances", "is_classification")


@dataclass
class Instance:
    input: str
    output: str

    def to_json(self) -> dict[str, str]:
        return {"input": self.input, "output": self.output}


@dataclass
class Record:
    """One task as it moves through the stages."""
    id: str
    instruction: str
    instances: list[Instance] | None = None  # None: not generated yet
    is_classification: bool | None = None  # None: not classified yet
    provenance: dict[str, Any] = field(default_factory=dict)  # round, model, sampling, demos, seed, nearest
    raw: dict[str, str] = field(default_factory=dict)  # stage -> the model's raw text
    notes: dict[str, str] = field(default_factory=dict)  # stage -> why a default was used
    extra: dict[str, Any] = field(default_factory=dict)  # fields of stages this module does not know
    layout: list[str] = field(default_factory=list, repr=False, compare=False)  # wire order as read

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Record":
        r = cls(id=str(d["id"]), instruction=d["instruction"], layout=list(d))
        for k, v in d.items():
            if k in ("id", "instruction"):
                continue
            if k == "instances":
                r.instances = [Instance(i.get("input", ""), i.get("output", "")) for i in v]
            elif k == "is_classification":
                r.is_classification = v
            elif k in PROVENANCE_KEYS:
                r.provenance[k] = v
            elif k in RAW_KEYS:
                r.raw[RAW_KEYS[k]] = v
            elif k in NOTE_KEYS:
                r.notes[NOTE_KEYS[k]] = v
            else:
                r.extra[k] = v
        return r

    def _wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "instruction": self.instruction}
        if self.instances is not None:
            out["instances"] = [i.to_json() for i in self.instances]
        out.update((k, self.provenance[k]) for k in PROVENANCE_KEYS if k in self.provenance)
        out.update((k, v) for k, v in self.provenance.items() if k not in PROVENANCE_KEYS)
        if self.is_classification is not None:
            out["is_classification"] = self.is_classification
        for wire, stage in RAW_KEYS.items():
            if stage in self.raw:
                out[wire] = self.raw[stage]
            if wire == "classify_raw":  # the note has always followed the classify answer
                out.update((w, self.notes[s]) for w, s in NOTE_KEYS.items() if s in self.notes)
        out.update(self.extra)
        return out

    def to_json(self) -> dict[str, Any]:
        """Fields in the order they were read, then the ones added since (in a fixed order)."""
        wire = self._wire()
        out = {k: wire[k] for k in self.layout if k in wire}
        out.update((k, v) for k, v in wire.items() if k not in out)
        return out


_UNSET: Any = object()


@dataclass
class Reject:
    """Something a stage dropped, with why. `level`: record (the whole task), instance (one example),
    or note (kept with a default; the reason is recorded). Fields left unset are not written."""
    id: str
    reason: str
    level: str = "record"
    instruction: str = _UNSET
    input: str = _UNSET
    output: str = _UNSET
    record: Record | None = None  # the full record, for a drop after it was built
    detail: str = _UNSET
    raw: str = _UNSET
    error: str | None = _UNSET
    round: int = _UNSET
    kept_as: str = _UNSET
    # what the stage found, as JSON fields of the reject after the others (decontaminate: the benchmark
    # prompt that matched); a name the record also has is replaced, as `instruction=` replaces the record's
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.record is not None:
            out = self.record.to_json()
        for k in ("instruction", "input", "output"):
            if getattr(self, k) is not _UNSET:
                out[k] = getattr(self, k)
        out["reason"] = self.reason
        for k in ("detail", "raw", "error", "round", "kept_as"):
            if getattr(self, k) is not _UNSET:
                out[k] = getattr(self, k)
        out.update(self.fields)
        return out


# ------------------------------------------------------------------------------------------------ counts

LEVEL_PREFIX = {"record": "reject:", "instance": "instance:", "note": "note:"}


class Counts:
    """What a stage counted: drops by (level, reason), and plain tallies (requests, tokens, kept, ...).
    Stored in the manifest as one flat mapping: drops as 'reject:REASON', 'instance:REASON',
    'note:REASON' (the format every run has used), tallies by name."""

    def __init__(self, flat: dict[str, int] | None = None):
        self.drops: Counter[tuple[str, str]] = Counter()
        self.tallies: Counter[str] = Counter()
        for k, v in (flat or {}).items():
            for level, prefix in LEVEL_PREFIX.items():
                if k.startswith(prefix):
                    self.drops[level, k[len(prefix):]] += v
                    break
            else:
                self.tallies[k] += v

    def drop(self, level: str, reason: str, n: int = 1) -> None:
        if level not in LEVEL_PREFIX:
            raise ValueError(level)
        self.drops[level, reason] += n

    def note(self, reason: str, n: int = 1) -> None:
        self.drop("note", reason, n)

    def add(self, name: str, n: int = 1) -> None:
        self.tallies[name] += n

    def dropped(self, level: str = "record") -> int:
        return sum(v for (lv, _), v in self.drops.items() if lv == level)

    def reasons(self, level: str | None = None) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (lv, reason), v in self.drops.items():
            if level is None or lv == level:
                out[reason] += v
        return dict(out)

    def __getitem__(self, name: str) -> int:
        return self.tallies.get(name, 0)

    def to_flat(self) -> dict[str, int]:
        """The manifest's flat mapping: drops (prefixed by level), then tallies, each in counting order."""
        out = {f"{LEVEL_PREFIX[lv]}{reason}": v for (lv, reason), v in self.drops.items()}
        out.update(self.tallies)
        return out
