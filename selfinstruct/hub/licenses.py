"""The license of a model that wrote a dataset, as its own model card states it (the `license` of its
README.md's YAML block): read from the model's folder, or from the local Hugging Face cache for a Hub id
(never from the network: export runs offline), or known for the embedded model. Anything else is
"unknown" with where to look: generated data may be bound by its models' terms, so the card names them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.repocard import metadata_load

from ..models import EMBEDDED_LICENSE, EMBEDDED_MODEL

MODEL_CARD = "README.md"
EMBEDDED_UPSTREAM = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class ModelLicense:
    license: str | None  # the Hub's id (apache-2.0, llama3.1, other, ...); None: not known here
    source: str  # where it was read, or why it is not known
    name: str | None = None  # license_name / license_link, which a card with `license: other` adds
    link: str | None = None

    def text(self) -> str:
        """For the dataset card: 'apache-2.0', 'other (name, link)', or 'unknown'."""
        if self.license is None:
            return "unknown"
        extra = ", ".join(x for x in (self.name, self.link) if x)
        return f"{self.license} ({extra})" if extra else self.license


def _from_card(card: Path, where: str) -> ModelLicense:
    if not card.is_file():
        return ModelLicense(None, f"no {MODEL_CARD} in {where}")
    try:
        meta = metadata_load(card) or {}
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return ModelLicense(None, f"the {MODEL_CARD} in {where} has no readable metadata")
    lic = meta.get("license")
    if isinstance(lic, list):  # the Hub accepts a list; the card shows them all
        lic = ", ".join(map(str, lic))
    if not lic:
        return ModelLicense(None, f"the {MODEL_CARD} in {where} states no license")
    name, link = meta.get("license_name"), meta.get("license_link")
    return ModelLicense(str(lic), f"the model card in {where}", str(name) if name else None,
                        str(link) if link else None)


def model_license(model: str) -> ModelLicense:
    """`model` as the pipeline config names it: the embedded alias, a local folder or a Hub id."""
    if model == EMBEDDED_MODEL:
        return ModelLicense(EMBEDDED_LICENSE, f"the model card of {EMBEDDED_UPSTREAM} (the embedded model)")
    folder = Path(model).expanduser()
    if folder.is_dir():
        return _from_card(folder / MODEL_CARD, "the model's folder")
    try:
        cached = try_to_load_from_cache(model, MODEL_CARD)
    except ValueError:  # not a Hub id (a server's model alias, say): HFValidationError is a ValueError
        cached = None
    if isinstance(cached, str):
        return _from_card(Path(cached), "the local Hugging Face cache")
    return ModelLicense(None, "no model card found locally (see the model's page)")
