"""The `datasets` configs of an export folder, built from the files present: one config per format
(`{split}.{format}.{jsonl,json,parquet}`: messages, prompt_completion, alpaca, and preference when a
preference export wrote its files there), each with the splits `train` and `eval`, the first one the
default (`load_dataset(folder)` without a config name needs one).

Two rules come from how `datasets` reads a folder. It picks one builder (json or parquet) for all the
configs, from the first config's files, so every config points at files of one type: the Parquet copies
when every format has them, else the JSONL/JSON files. And it cannot load a split without rows, so an
empty file (an eval split with `eval_fraction: 0`) is left out of its config."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.errors import UserError
from ..io.formats import FORMATS, PREFERENCE
from ..io.jsonl import read_regular
from ..io.parquet import PARQUET, parquet_rows

SPLITS = ("train", "eval")
ORDER = (*FORMATS, PREFERENCE)  # configs in this order, the first present is the default; others after, by name
JSON = "json"  # the builder that reads both .jsonl and .json (a JSON array, as Alpaca's file is)
NOT_ALL_PARQUET = "Parquet, and not every format has a Parquet copy: the configs point at the JSON files"
_FILE = re.compile(r"^(train|eval)\.(\w+)\.(parquet|jsonl|json)$")
# The Hub's size_categories, by the number of examples (huggingface_hub.DatasetCardData lists them).
SIZE_CATEGORIES = ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                   (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
                   (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))


@dataclass(frozen=True)
class DataFile:
    split: str
    path: str  # relative to the export folder, as the card's data_files name it
    rows: int


@dataclass
class DataConfig:
    name: str
    files: list[DataFile]  # in SPLITS order, only splits with rows
    default: bool = False

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def split(self, name: str) -> DataFile | None:
        return next((f for f in self.files if f.split == name), None)

    def to_metadata(self) -> dict[str, Any]:
        """Its entry in the card's `configs`."""
        out: dict[str, Any] = {"config_name": self.name}
        if self.default:
            out["default"] = True
        out["data_files"] = [{"split": f.split, "path": f.path} for f in self.files]
        return out


@dataclass
class DataLayout:
    configs: list[DataConfig]
    file_type: str | None  # PARQUET or JSON; None when the folder holds no data files
    left_out: dict[str, str] = field(default_factory=dict)  # data files not in the configs -> why

    @property
    def rows(self) -> int:
        """Examples in the largest config (every format holds the same examples)."""
        return max((c.rows for c in self.configs), default=0)


def count_rows(path: Path) -> int:
    """Rows of a data file: non-blank JSONL lines, JSON array items, or Parquet rows."""
    if path.suffix == f".{PARQUET}":
        return parquet_rows(path)
    data = read_regular(path)
    if path.suffix == ".jsonl":
        return sum(1 for line in data.splitlines() if line.strip())
    try:
        items = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"invalid JSON ({e})", path=path) from None
    if not isinstance(items, list):
        raise UserError(f"expected a JSON array of examples, got {type(items).__name__}", path=path)
    return len(items)


def _order(name: str) -> tuple[int, str]:
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def dataset_configs(export_dir: Path) -> DataLayout:
    """The configs of the data files in `export_dir` (see the module's docstring for the rules)."""
    found: dict[str, dict[str, dict[str, str]]] = {}  # format -> split -> extension -> file name
    for p in sorted(Path(export_dir).iterdir()):
        m = _FILE.match(p.name)
        if m and p.is_file():
            found.setdefault(m[2], {}).setdefault(m[1], {})[m[3]] = p.name
    if not found:
        return DataLayout([], None)
    parquet = all(PARQUET in exts for splits in found.values() for exts in splits.values())
    kinds = (PARQUET,) if parquet else ("jsonl", "json")
    layout = DataLayout([], PARQUET if parquet else JSON)
    for name in sorted(found, key=_order):
        files = []
        for split in SPLITS:
            exts = found[name].get(split, {})
            fname = next((exts[k] for k in kinds if k in exts), None)
            if fname is None:
                if exts:  # a Parquet file alone, while the configs point at JSON files
                    layout.left_out.update((f, NOT_ALL_PARQUET) for f in exts.values())
                continue
            rows = count_rows(Path(export_dir) / fname)
            if rows:
                files.append(DataFile(split, fname, rows))
            else:
                layout.left_out[fname] = "no rows (datasets cannot load an empty split)"
        if files:
            layout.configs.append(DataConfig(name, files))
    if layout.configs:
        layout.configs[0].default = True
    return layout


def size_category(n: int) -> str:
    return next((label for limit, label in SIZE_CATEGORIES if n < limit), "n>1T")
