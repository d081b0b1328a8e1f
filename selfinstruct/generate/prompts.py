"""Prompt templates. A stage that uses one declares its `template_version`, which is part of its hash:
edit a template, bump that version, and shards written with the old one are refused, not mixed in."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..fence import fenced, note
from ..judgment import FIRST_LINE, LAST_LINE, SCALES
from ..io.seeds import SeedTask

BOOTSTRAP_HEADER = "Come up with a series of tasks:\n\n"
BOOTSTRAP_CHAT_HEADER = ("Come up with a series of new, diverse tasks. Continue the numbered list below; "
                         "write one task per line, in the same format.\n\n")


def bootstrap_prompt(demos: list[str], fmt: str = "completion"):
    """Self-Instruct instruction generation: numbered demonstrations, then the next number open."""
    body = "".join(f"Task {i}: {d}\n" for i, d in enumerate(demos, 1))
    nxt = f"Task {len(demos) + 1}:"
    if fmt == "chat":
        return [{"role": "user", "content": BOOTSTRAP_CHAT_HEADER + body}]
    return BOOTSTRAP_HEADER + body + nxt


CLASSIFY_HEADER = "Can the following task be regarded as a classification task with finite output labels?\n\n"


def classify_prompt(demos: list[SeedTask], instruction: str) -> str:
    body = "".join(f"Task: {t.instruction}\nIs it classification? {'Yes' if t.is_classification else 'No'}\n\n"
                   for t in demos)
    return CLASSIFY_HEADER + body + f"Task: {instruction}\nIs it classification?"


INPUT_FIRST_HEADER = ("Come up with examples for the following tasks. Try to generate multiple examples when "
                      "possible. If the task doesn't require additional input, you can generate the output "
                      "directly.\n\n")
OUTPUT_FIRST_HEADER = ("Given the classification task definition and the class labels, generate an input that "
                       "corresponds to each of the class labels. If the task doesn't require input, just "
                       "generate the correct class label.\n\n")


def _fmt_instances_input_first(t: SeedTask) -> str:
    out = f"Task: {t.instruction}\n"
    for i, inst in enumerate(t.instances, 1):
        if len(t.instances) > 1:
            out += f"Example {i}\n"
        out += f"Input: {inst.input.strip() or '<noinput>'}\nOutput: {inst.output.strip()}\n"
    return out + "\n"


def _fmt_instances_output_first(t: SeedTask) -> str:
    out = f"Task: {t.instruction}\n"
    for inst in t.instances:
        out += f"Class label: {inst.output.strip()}\nInput: {inst.input.strip() or '<noinput>'}\n"
    return out + "\n"


def instances_prompt(demos: list[SeedTask], instruction: str, output_first: bool) -> str:
    if output_first:
        return (OUTPUT_FIRST_HEADER + "".join(_fmt_instances_output_first(t) for t in demos)
                + f"Task: {instruction}\nClass label:")
    return (INPUT_FIRST_HEADER + "".join(_fmt_instances_input_first(t) for t in demos)
            + f"Task: {instruction}\n")


ALPACA_HEADER = """You are asked to come up with a set of {n} diverse task instructions. These task instructions will be given to a language model and we will evaluate the model for completing the instructions.

Here are the requirements:
1. Try not to repeat the verb for each instruction to maximize diversity.
2. The language used for the instruction also should be diverse. For example, you should combine questions with imperative instructions.
3. The type of instructions should be diverse: open-ended generation, classification, editing, rewriting, question answering, brainstorming, and so on.
4. A language model should be able to complete the instruction. Do not ask for images, files, or audio.
5. The instructions should be in English.
6. The instructions should be 1 to 2 sentences long.
7. Generate an appropriate input for the instruction when one is needed; otherwise write "<noinput>".
8. The output should be an appropriate response to the instruction and the input.

List of {n} tasks:
"""


def alpaca_prompt(demos: list[SeedTask], n: int, fmt: str = "completion"):
    body = ALPACA_HEADER.format(n=n)
    for i, t in enumerate(demos, 1):
        inst = t.instances[0] if t.instances else None
        body += "###\n"
        body += f"{i}. Instruction: {t.instruction}\n"
        body += f"{i}. Input:\n{(inst.input.strip() if inst and inst.input.strip() else '<noinput>')}\n"
        body += f"{i}. Output:\n{(inst.output.strip() if inst else '')}\n"
    body += "###\n"
    if fmt == "chat":
        return [{"role": "user", "content": body}]
    return body + f"{len(demos) + 1}. Instruction:"


# ------------------------------------------------------------------------------------ judge rubrics
# A rubric is a chat message with the placeholders {instruction}, {input} and {output}, the score scale
# its answer is read on, and the one place in the answer the score is read from (judgment.py). Edit one:
# bump the judge stage's template_version.

@dataclass(frozen=True)
class Rubric:
    low: int
    high: int
    template: str
    place: str  # judgment.FIRST_LINE or LAST_LINE: where the rubric tells the judge to write the score

    @property
    def choices(self) -> list[str]:
        """The answers structured outputs allow: the scale's integers."""
        return [str(k) for k in range(self.low, self.high + 1)]


# AlpaGasus (Chen et al. 2023, "AlpaGasus: Training a Better Alpaca with Fewer Data"), on a 1-5 scale.
ALPAGASUS = """We would like to request your feedback on the performance of an AI assistant in response to the instruction and the given input displayed below.

[Instruction]
{instruction}

[Input]
{input}

[Response]
{output}

[End of response]

Please rate according to the accuracy and helpfulness of the response to the instruction and the input. The assistant receives a score on a scale of 1 to 5, where a higher score indicates a more accurate and helpful response. Please first output a single line containing only the score. In the subsequent line, please provide a brief explanation of your evaluation."""

# The additive 5-point rubric of Self-Rewarding Language Models (Yuan et al. 2024, Fig. 2): 0-5 points.
ADDITIVE = """Review the user's question and the corresponding response using the additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each criterion:
- Add 1 point if the response is relevant and provides some information related to the user's inquiry, even if it is incomplete or contains some irrelevant content.
- Add another point if the response addresses a substantial portion of the user's question, but does not completely resolve the query or provide a direct answer.
- Award a third point if the response answers the basic elements of the user's question in a useful way, regardless of whether it seems to have been written by an AI Assistant or if it has elements typically found in blogs or search results.
- Grant a fourth point if the response is clearly written from an AI Assistant's perspective, addressing the user's question directly and comprehensively, and is well-organized and helpful, even if there is slight room for improvement in clarity, conciseness or focus.
- Bestow a fifth point for a response that is impeccably tailored to the user's question by an AI Assistant, without extraneous information, reflecting expert knowledge, and demonstrating a high-quality, engaging, and insightful answer.

User:
{instruction}
Input:
{input}

<response>
{output}
</response>

After examining the user's instruction and the response:
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Score: <total points>"

Remember to assess from the AI Assistant perspective. To evaluate the response in alignment with this additive scoring model, we'll systematically attribute points based on the outlined criteria."""

# Groundedness (for answers written from a user's documents: the `grounded` stages): is every claim of
# the response in its source text? {input} is the source text (the record's chunk).
GROUNDEDNESS = """We would like to request your feedback on whether a response is supported by its source text.

[Source text]
{input}

[Instruction]
{instruction}

[Response]
{output}

[End of response]

Please rate how well the source text supports the response, on a scale of 1 to 5: 5 means every statement of the response is stated in the source text or follows directly from it; 3 means some statements are supported and others are not in the source text; 1 means the response is mostly not supported by the source text or contradicts it. Helpfulness and style do not count. Please first output a single line containing only the score. In the subsequent line, please provide a brief explanation of your evaluation."""

RUBRICS = {"alpagasus": Rubric(*SCALES["alpagasus"], ALPAGASUS, FIRST_LINE),
           "additive": Rubric(*SCALES["additive"], ADDITIVE, LAST_LINE),
           "groundedness": Rubric(*SCALES["groundedness"], GROUNDEDNESS, FIRST_LINE)}
NO_INPUT = "(none)"
PLACEHOLDER = re.compile(r"\{(instruction|input|output)\}")


def judge_prompt(template: str, instruction: str, input: str, output: str, tag: str) -> list[dict[str, str]]:
    """The rubric filled in, as one user message: a note that fenced text is data, then the template with
    each text fenced by `tag` (fence.py; raises ForgedFence when a text holds the tag). One pass over the
    placeholders, not str.format: a custom template may hold other braces, and a text that contains
    "{output}" must stay as written."""
    values = {"instruction": instruction.strip(), "input": input.strip() or NO_INPUT, "output": output.strip()}
    values = {k: fenced(v, tag) for k, v in values.items()}
    body = PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    return [{"role": "user", "content": f"{note(tag)}\n\n{body}"}]


# ------------------------------------------------------------------------------ grounded generation
# The task types a chunk of a user's document is turned into (grounded stage), each as what the
# instruction asks for. Edit one: bump the grounded stage's template_version.
GROUNDED_TASKS = {
    "qa": "a question that the passage answers",
    "summary": "a request to summarise what the passage says about its subject, for a reader who has not seen it",
    "extraction": "a request to list specific facts, names, numbers, options or terms that the passage gives",
    "rewrite": "a request to explain what the passage says to a given audience (a beginner, a manager, a child)",
    "reasoning": "a question whose answer needs two or more facts of the passage put together",
    "comparison": "a request to compare two things the passage describes",
}
SOURCE_OPEN, SOURCE_CLOSE = "[Source text]", "[End of source text]"
BOOK_NOTE = {
    "closed": "The user will not see the passage: the instruction must make sense on its own, so name the "
              "subject instead of writing \"the passage\" or \"the text\".",
    "open": "The user will give the passage together with the instruction, so the instruction may refer to "
            "\"the text\".",
}


def grounded_instruction_prompt(chunk: str, headings: list[str], task: str, book: str) -> list[dict[str, str]]:
    where = f"(from a document, section: {' > '.join(headings)})" if headings else "(from a document)"
    return [{"role": "user", "content":
             f"Here is a passage {where}.\n\n{SOURCE_OPEN}\n{chunk.strip()}\n{SOURCE_CLOSE}\n\n"
             f"Write one instruction that a user could give an AI assistant about this passage: "
             f"{GROUNDED_TASKS[task]}. {BOOK_NOTE[book]} Do not answer it. Reply with the instruction "
             f"only, on one line."}]


def grounded_answer_prompt(chunk: str, instruction: str) -> list[dict[str, str]]:
    return [{"role": "user", "content":
             f"{SOURCE_OPEN}\n{chunk.strip()}\n{SOURCE_CLOSE}\n\n"
             f"Using only the source text above, follow this instruction. Do not add facts the source text "
             f"does not state.\n\n[Instruction]\n{instruction.strip()}"}]
