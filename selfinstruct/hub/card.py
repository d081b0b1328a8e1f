"""The dataset card, `README.md` in an export folder, which makes that folder a Hugging Face dataset
repository as it stands: YAML metadata that `datasets` and the Hub read (the configs, one per format
present, one of them the default; license, language, task and size categories, tags) and a body
rendered from the run's facts (`hub.facts.RunFacts`, passed in: nothing here reads the run; `hub.body`).

The card may be edited by hand and is rewritten on every export without losing those edits: the
generated body sits between two marker comments and only that part is replaced; the metadata keys this
module sets are replaced and every other key is kept (a `license:` written by hand stays unless
`export.license` sets one). The stage that writes it declares it a user file (`Stage.user_files`), so it
is kept when the stage runs again and never checked against a hash.

The metadata is built and parsed with huggingface_hub's `DatasetCard`/`DatasetCardData`, and the configs
are checked with the reader `datasets` itself uses (`MetadataConfigs`) before the file is written."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import DatasetCard, DatasetCardData
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from ..io.errors import UserError
from ..io.jsonl import atomic_write_text
from ..io.shards import StageStore
from . import BEGIN, CARD, END
from .body import render_body
from .configs import DataLayout, dataset_configs, size_category
from .facts import RunFacts

EDIT_NOTE = ("<!-- Written by selfinstruct on every export: edits between these two markers are replaced, "
             "text outside them and metadata keys it does not set are kept. -->")
TAGS = ["synthetic", "self-instruct"]
TASK_CATEGORIES = ["text-generation"]
# `push_to_hub` writes dataset_info (features, split sizes) into the card; after a re-export it would
# describe the files that were replaced, and `datasets` checks split sizes against it: dropped.
STALE = ("dataset_info",)


@dataclass
class CardSettings:
    license: str | None = None  # a Hub license id; None: keep what the card states, if anything
    language: list[str] = field(default_factory=lambda: ["en"])


def metadata(layout: DataLayout, settings: CardSettings, existing: dict[str, Any]) -> dict[str, Any]:
    """The card's metadata: `existing` (what the card had) with the keys this module owns replaced."""
    meta = {k: v for k, v in existing.items() if k not in STALE}
    meta["language"] = list(settings.language)
    if settings.license:
        meta["license"] = settings.license
    meta["task_categories"] = TASK_CATEGORIES
    meta["size_categories"] = [size_category(layout.rows)]
    old_tags = existing.get("tags") if isinstance(existing.get("tags"), list) else []
    meta["tags"] = TAGS + [t for t in old_tags if t not in TAGS]
    if layout.configs:
        meta["configs"] = [c.to_metadata() for c in layout.configs]
    else:
        meta.pop("configs", None)  # no data: a config naming no files would not load
    return meta


def merge_body(text: str | None, generated: str, title: str, path: Path) -> str:
    """The card's markdown with the generated section replaced (first write: a title, then the section).
    Text without the markers keeps all of itself and gets the section at its end."""
    # what the card quotes (settings, a model card's license name) holding a marker would damage the card
    # for the next export; the config refuses such settings, this catches the rest
    for marker in (BEGIN, END):
        if marker in generated or marker in title:
            raise UserError(f"a value the card quotes contains its marker {marker!r} (the run's settings, or a "
                            "model's own card); remove it there", path=path)
    block = f"{BEGIN}\n{EDIT_NOTE}\n\n{generated}\n\n{END}"
    if text is None:
        return f"\n# {title}\n\n{block}\n"
    begins, ends = text.count(BEGIN), text.count(END)
    if begins == ends == 0:
        return text.rstrip("\n") + f"\n\n{block}\n"
    start, stop = text.find(BEGIN), text.find(END)
    if begins != 1 or ends != 1 or stop < start:
        raise UserError(f"the markers of the generated section are damaged (expected one {BEGIN!r} line and "
                        f"then one {END!r}); restore them, or delete both to have the section appended",
                        path=path)
    return text[:start] + block + text[stop + len(END):]


def read_card(path: Path) -> tuple[DatasetCard | None, str | None]:
    """(the card parsed, when it has a metadata block; its markdown) of an existing card, (None, None)
    when there is none."""
    if not path.is_file():
        return None, None
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"not valid UTF-8 (byte {e.start})", path=path) from None
    if not REGEX_YAML_BLOCK.search(text):
        return None, text
    try:
        card = DatasetCard(text)
    except (ValueError, yaml.YAMLError) as e:
        reason = " ".join(str(e).split())
        raise UserError(f"its YAML metadata cannot be read ({reason}); fix it, or delete the file to have it "
                        "written anew", path=path) from None
    return card, card.text


def check_card(content: str, layout: DataLayout, path: Path) -> None:
    """Parse the card back as `datasets` does and check that the configs and the default come out."""
    from datasets.utils.metadata import MetadataConfigs

    try:
        configs = MetadataConfigs.from_dataset_card_data(DatasetCard(content).data)
        default = configs.get_default_config_name()
    except (ValueError, TypeError, yaml.YAMLError) as e:
        raise UserError(f"the card's metadata does not load in datasets: {' '.join(str(e).split())}",
                        path=path) from None
    want = [c.name for c in layout.configs]
    if list(configs) != want or (want and default != want[0]):
        raise UserError(f"the card's configs read back as {list(configs)} (default {default}), "
                        f"not {want}", path=path)


def write_card(store: StageStore, facts: RunFacts, settings: CardSettings) -> str:
    """Write (or rewrite) the dataset card of the stage folder `store.dir` from the data files there and
    the run's `facts` (with the stage's own counts: `RunFacts.finished`); returns its file name, for the
    manifest's file list. Call it after the data files are written: the configs are built from the files
    present."""
    path = store.dir / CARD
    layout = dataset_configs(store.dir)
    card, text = read_card(path)
    meta = metadata(layout, settings, card.data.to_dict() if card is not None else {})
    body = merge_body(text, render_body(facts, layout, meta.get("license")), facts.name, path)
    if card is not None:  # the hand-written card's key order and line endings are kept
        for key in [k for k in card.data.to_dict() if k not in meta]:
            card.data.pop(key)
        for key, value in meta.items():
            card.data[key] = value
        card.text = body
        content = str(card)
    else:
        content = f"---\n{DatasetCardData(**meta).to_yaml()}\n---\n{body}"
    check_card(content, layout, path)
    atomic_write_text(path, content)
    return CARD
