"""FLAN-style instruction templates (Wei et al. 2021; Longpre et al. 2023): several per task type and
kind, rendered with Jinja2 in a sandbox (a user's template in the YAML cannot reach Python objects).

Kinds: `zero_shot` (the instruction and the row), `options` (the label names listed: classification and
NLI), `few_shot` (exemplars from the training rows before the row), `inverted` (the task turned around,
as FLAN did: "write a question whose answer is ...": the label becomes the input, the row's text the
answer). A template is (instruction, input, output); the variables are the row's input fields by name,
`label` (the label's name), `options`, `exemplars` (each with the fields and `label`), `task` (the
task's name) and, for translation, `source_language` and `target_language`. Edit one: bump the
templates stage's template_version."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

TASK_TYPES = ("classification", "nli", "qa", "extraction", "summarization", "translation")
KINDS = ("zero_shot", "options", "few_shot", "inverted")
LABELLED = ("classification", "nli")  # tasks whose answers are label names: `options` applies
FIELDS = {"classification": ("text",), "nli": ("premise", "hypothesis"), "qa": ("question", "context"),
          "extraction": ("text",), "summarization": ("text",), "translation": ("text",)}

LIBRARY: dict[str, dict[str, list[tuple[str, str, str]]]] = {
    "classification": {
        "zero_shot": [("Classify the following text by {{ task }}.", "{{ text }}", "{{ label }}"),
                      ("What is the {{ task }} of this text?", "{{ text }}", "{{ label }}"),
                      ("Read the text and give its {{ task }}.", "{{ text }}", "{{ label }}")],
        "options": [("Which {{ task }} does the text belong to? Options:\n{% for o in options %}- {{ o }}\n{% endfor %}",
                     "{{ text }}", "{{ label }}"),
                    ("{{ text }}\n\nPick the {{ task }} of the text above from: {{ options | join(', ') }}.", "",
                     "{{ label }}")],
        "few_shot": [("Classify each text by {{ task }}.\n\n{% for e in exemplars %}Text: {{ e.text }}\n"
                      "Answer: {{ e.label }}\n\n{% endfor %}Now classify this text.", "{{ text }}", "{{ label }}")],
        "inverted": [("Write a short text whose {{ task }} is \"{{ label }}\".", "", "{{ text }}"),
                     ("Give an example of a text with the {{ task }} \"{{ label }}\".", "", "{{ text }}")],
    },
    "nli": {
        "zero_shot": [("Does the premise entail the hypothesis? Answer with the relation.",
                       "Premise: {{ premise }}\nHypothesis: {{ hypothesis }}", "{{ label }}")],
        "options": [("Premise: {{ premise }}\nHypothesis: {{ hypothesis }}\n\nWhat is the relation of the hypothesis "
                     "to the premise? Options: {{ options | join(', ') }}.", "", "{{ label }}")],
        "few_shot": [("Say how each hypothesis relates to its premise.\n\n{% for e in exemplars %}Premise: "
                      "{{ e.premise }}\nHypothesis: {{ e.hypothesis }}\nAnswer: {{ e.label }}\n\n{% endfor %}Now this one.",
                      "Premise: {{ premise }}\nHypothesis: {{ hypothesis }}", "{{ label }}")],
        "inverted": [("Write a hypothesis whose relation to this premise is \"{{ label }}\".", "{{ premise }}",
                      "{{ hypothesis }}")],
    },
    "qa": {
        "zero_shot": [("{{ question }}", "{{ context }}", "{{ label }}"),
                      ("Answer the question{% if context %} using the passage{% endif %}.\n\nQuestion: {{ question }}",
                       "{{ context }}", "{{ label }}")],
        "few_shot": [("Answer each question.\n\n{% for e in exemplars %}Question: {{ e.question }}\nAnswer: "
                      "{{ e.label }}\n\n{% endfor %}Question: {{ question }}", "{{ context }}", "{{ label }}")],
        "inverted": [("Write a question whose answer is \"{{ label }}\".", "{{ context }}", "{{ question }}")],
    },
    "extraction": {
        "zero_shot": [("Extract the {{ task }} from the text.", "{{ text }}", "{{ label }}"),
                      ("What is the {{ task }} mentioned in this text?", "{{ text }}", "{{ label }}")],
        "few_shot": [("Extract the {{ task }} from each text.\n\n{% for e in exemplars %}Text: {{ e.text }}\n"
                      "Answer: {{ e.label }}\n\n{% endfor %}Now this text.", "{{ text }}", "{{ label }}")],
        "inverted": [("Write a sentence that mentions \"{{ label }}\" as its {{ task }}.", "", "{{ text }}")],
    },
    "summarization": {
        "zero_shot": [("Summarize the text in a sentence or two.", "{{ text }}", "{{ label }}"),
                      ("Write a {{ task }} of this text.", "{{ text }}", "{{ label }}")],
        "few_shot": [("Summarize each text.\n\n{% for e in exemplars %}Text: {{ e.text }}\nSummary: {{ e.label }}\n\n"
                      "{% endfor %}Now summarize this text.", "{{ text }}", "{{ label }}")],
        "inverted": [("Write a text that this summary describes: {{ label }}", "", "{{ text }}")],
    },
    "translation": {
        "zero_shot": [("Translate this text from {{ source_language }} to {{ target_language }}.", "{{ text }}",
                       "{{ label }}"),
                      ("How do you say this in {{ target_language }}?", "{{ text }}", "{{ label }}")],
        "few_shot": [("Translate from {{ source_language }} to {{ target_language }}.\n\n{% for e in exemplars %}"
                      "{{ source_language }}: {{ e.text }}\n{{ target_language }}: {{ e.label }}\n\n{% endfor %}"
                      "Now this text.", "{{ text }}", "{{ label }}")],
        "inverted": [("Translate this text from {{ target_language }} to {{ source_language }}.", "{{ label }}",
                      "{{ text }}")],
    },
}


def kinds_of(task_type: str) -> tuple[str, ...]:
    return tuple(k for k in KINDS if k in LIBRARY[task_type])


@lru_cache(maxsize=1)
def environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment
    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


@lru_cache(maxsize=1024)
def compiled(source: str):
    return environment().from_string(source)


def render(template: tuple[str, str, str], values: dict[str, Any]) -> tuple[str, str, str]:
    """(instruction, input, output); raises jinja2's TemplateError (an undefined variable, a syntax error,
    an unsafe attribute)."""
    return tuple(compiled(t).render(**values).strip() for t in template)  # type: ignore[return-value]
