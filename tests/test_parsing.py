from selfinstruct.generate.parsing import (parse_alpaca, parse_classification, parse_instances_input_first,
                                  parse_instances_output_first, parse_instructions)

# Continuations as SmolLM2-135M-Instruct wrote them after "...Task 9:" (real outputs, trimmed)
REAL_BOOTSTRAP = [
    (" What type of person loves cherry blossoms?\nTask 10: What kind of dog does the article about?",
     ["What type of person loves cherry blossoms?", "What kind of dog does the article about?"]),
    (" Whether a friend is male or female, if they're male\nTask 10: Are there 10 ways to make a chocolate fountain?"
     "\n\nNow, here's your job as a coding AI:\n\n1m 30s",
     ["Whether a friend is male or female, if they're male", "Are there 10 ways to make a chocolate fountain?"]),
    (" I'm human.\nCombinations: You are my rambunctious teenager.\n\nI've started with questions",
     ["I'm human. Combinations: You are my rambunctious teenager."]),
]


def test_parse_real_bootstrap_continuations():
    for text, expect in REAL_BOOTSTRAP:
        assert parse_instructions(text) == expect


def test_parse_drops_truncated_last_item():
    text = " Name three rivers in Asia.\nTask 10: Explain how vaccines train the immune"
    assert parse_instructions(text, truncated=True) == ["Name three rivers in Asia."]
    assert parse_instructions(text, truncated=False)[-1] == "Explain how vaccines train the immune"


def test_parse_chat_numbered_list_and_garbage():
    text = "Sure! Here are more tasks:\n1. Summarize the plot of a novel.\n2) Give two synonyms for happy.\nTask 3: Sort the list."
    assert parse_instructions(text, completion=False) == [
        "Summarize the plot of a novel.", "Give two synonyms for happy.", "Sort the list."]
    assert parse_instructions("no numbers at all", completion=False) == []
    assert parse_instructions("   ") == []


def test_parse_classification_answers():
    assert parse_classification(" Yes") is True
    assert parse_classification(" no, it is not") is False
    assert parse_classification(' "Yes"') is True
    assert parse_classification(" Maybe") is None
    assert parse_classification("") is None
    assert parse_classification(" Nobody knows") is None


def test_instances_input_first_shapes():
    # a looping model: only the first Output counts
    got, err = parse_instances_input_first("Input: <noinput>\nOutput: No.\nOutput: 1. No.\nOutput: 2. No.")
    assert err is None and [(i.input, i.output) for i in got] == [("", "No.")]
    got, _ = parse_instances_input_first(
        "Example 1\nInput: a cat\nOutput: animal\nExample 2\nInput: a rose\nOutput: plant\n\nTask: next task")
    assert [(i.input, i.output) for i in got] == [("a cat", "animal"), ("a rose", "plant")]
    got, _ = parse_instances_input_first("Input: x\nOutput: y\nInput: z\nOutput: w")
    assert [(i.input, i.output) for i in got] == [("x", "y"), ("z", "w")]
    got, _ = parse_instances_input_first("Output: Paris is the capital of France.")
    assert [(i.input, i.output) for i in got] == [("", "Paris is the capital of France.")]
    # truncated: the cut-off last example is dropped
    got, _ = parse_instances_input_first("Example 1\nInput: 2+2\nOutput: 4\nExample 2\nInput: 3+", truncated=True)
    assert [(i.input, i.output) for i in got] == [("2+2", "4")]


def test_instances_malformed():
    assert parse_instances_input_first("I cannot help with that.") == ([], "no Input/Output pair found")
    assert parse_instances_input_first("")[1] is not None
    assert parse_instances_output_first("   \n")[1] == "no class label found"


def test_instances_output_first():
    text = " Positive\nInput: I loved the film.\nClass label: Negative\nInput: Two hours I will never get back.\n\nTask: x"
    got, err = parse_instances_output_first(text)
    assert err is None
    assert [(i.output, i.input) for i in got] == [("Positive", "I loved the film."),
                                                  ("Negative", "Two hours I will never get back.")]


def test_alpaca_blocks():
    text = (" Name a fruit that is yellow.\n4. Input:\n<noinput>\n4. Output:\nA banana.\n###\n"
            "5. Instruction: Translate to French.\n5. Input:\nGood morning\n5. Output:\nBonjour\n###\n"
            "6. Instruction: broken block without input\n###\n"
            "7. Instruction: Give an antonym.\n7. Input:\nhot\n7. Output:\nco")
    got = parse_alpaca(text, 4, truncated=True)
    assert got[0][0].instruction == "Name a fruit that is yellow." and got[0][0].input == ""
    assert got[1][0].output == "Bonjour" and got[1][0].input == "Good morning"
    assert got[2] == (None, "malformed")
    assert got[3] == (None, "truncated")
