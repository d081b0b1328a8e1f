from selfinstruct.generate.config import InstructionFilters
from selfinstruct.generate.stages.filter import FilterConfig
from selfinstruct.generate.filters import instance_reject_reason, instruction_reject_reason, is_repetitive

F = InstructionFilters()


def test_instruction_filters():
    r = lambda t: instruction_reject_reason(t, F)
    assert r("Give three tips for sleeping better.") is None
    assert r("") == "empty"
    assert r("Hi there") == "too_short"
    assert r(" ".join(["word"] * 151)) == "too_long"
    assert r("Describe the image below in detail.") == "blocked_keyword"
    assert r("Plot the values on a chart.") == "blocked_keyword"
    assert r("Go to the store and buy milk.") == "blocked_keyword"
    assert r("Explain how graphite conducts electricity.") is None  # 'graph' only as a whole word
    assert r('"Summarize this text for me.') == "starts_with_punctuation"
    assert r("¿Qué hora es ahora mismo?") == "starts_non_ascii"
    assert r("Write a program that sorts numbers.") == "blocked_prefix"


def test_instance_filters():
    c = FilterConfig(max_output_words=10)
    r = lambda i, o, ins="Translate the word to French.": instance_reject_reason(ins, i, o, c)
    assert r("cat", "chat") is None
    assert r("cat", "  ") == "empty_output"
    assert r("", " ".join(["w"] * 11)) == "output_too_long"
    assert r("Hello", "hello ") == "input_equals_output"
    assert r("", "Translate the word to French.") == "output_repeats_instruction"
    assert r("", "Sure. Translate the word to French. ok") == "output_repeats_instruction"


def test_repetition_detector():
    assert is_repetitive("No.\nNo.\nNo.\nNo.\nYes.")
    assert is_repetitive("the cat sat on " * 10)
    assert not is_repetitive("Paris is the capital of France and its largest city by population.")
