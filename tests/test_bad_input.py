"""Bad input never produces a traceback: hypothesis fuzzes the seed and config loaders, and the CLI
answers with one line, exit code 2, and writes nothing."""
import json
import string

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfinstruct.cli import main
from selfinstruct.generate.config import load_config
from selfinstruct.io.errors import UserError
from selfinstruct.io.seeds import load_seed_tasks

from .conftest import PROJECT_SEEDS, ROOT

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4), max_leaves=10)
seed_like = st.fixed_dictionaries(
    {}, optional={"id": json_values, "name": json_values, "instruction": json_values | st.text(min_size=1),
                  "instances": st.lists(st.dictionaries(st.sampled_from(["input", "output", "x"]), json_values,
                                                        max_size=3), max_size=3) | json_values,
                  "is_classification": json_values, "input": json_values, "output": json_values})
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(rows=st.lists(seed_like | json_values, max_size=5), garbage=st.binary(max_size=30),
       mode=st.sampled_from(["jsonl", "jsonl+garbage", "array", "raw"]))
def test_fuzz_seed_loader_only_raises_user_error(tmp_path, rows, garbage, mode):
    p = tmp_path / "seeds.jsonl"
    if mode == "jsonl":
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    elif mode == "jsonl+garbage":
        data = "".join(json.dumps(r) + "\n" for r in rows).encode() + garbage
    elif mode == "array":
        data = json.dumps(rows).encode()
    else:
        data = garbage
    p.write_bytes(data)
    try:
        tasks = load_seed_tasks(p)
    except UserError as e:
        msg = str(e)
        assert msg.startswith(str(p)) and "\n" not in msg
        return
    assert tasks and all(isinstance(t.instruction, str) and t.instruction for t in tasks)


config_keys = st.sampled_from(["name", "seed", "model", "backend", "stages", "bootstrap", "classify", "export",
                               "vllm", "openai", "instances", "filter", "alpaca", "nonsense", "seed_tasks"])
sub_keys = st.sampled_from(["num_instructions", "sampling", "filters", "temperature", "max_tokens",
                            "eval_fraction", "formats", "base_urls", "rouge_threshold", "typo"])
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100) | st.floats(-1, 3, allow_nan=False) | st.text(string.printable, max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(sub_keys, c, max_size=3), max_leaves=8)


@FUZZ
@given(doc=st.dictionaries(config_keys, yaml_values, max_size=5), raw=st.text(max_size=40),
       use_raw=st.booleans())
def test_fuzz_config_loader_only_raises_user_error(tmp_path, doc, raw, use_raw):
    p = tmp_path / "c.yaml"
    p.write_text(raw if use_raw else yaml.safe_dump(doc))
    try:
        load_config(p)
    except UserError as e:
        msg = str(e)
        assert msg.startswith(str(p)) and "\n" not in msg


def test_bad_seed_file_via_cli_writes_nothing(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"instruction": "Name a color.", "instances": []}\n{"instruction": ["x"]}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"seed_tasks: {seeds}\n")
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["generate", "-c", str(cfg), "-o", str(out)])
    assert r.exit_code == 2
    assert r.output.strip() == f"error: {seeds}:2: field 'instruction': expected a string, got list"
    assert not out.exists()


def test_unwritable_output_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = CliRunner().invoke(main, ["generate", "-c", str(ROOT / "pipelines" / "default.yaml"),
                                  "-o", str(blocker / "run")])
    assert r.exit_code == 2 and "output directory is not writable" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_trust_remote_code_is_off_unless_set(tmp_path):
    assert load_config(ROOT / "pipelines" / "default.yaml").vllm.trust_remote_code is False
    p = tmp_path / "c.yaml"
    p.write_text("vllm: {trust_remote_code: true}\n")
    assert load_config(p).vllm.trust_remote_code is True


@pytest.mark.parametrize("name", ["../escaped", "a/b", "{tmp}/absolute", "..", "a\\b"])
def test_a_run_name_that_is_not_one_folder_cannot_decide_the_run_directory(tmp_path, monkeypatch, name):
    """Without -o the run goes to runs/NAME: a name with a path separator or `..` would put it elsewhere."""
    monkeypatch.chdir(tmp_path)
    name = name.format(tmp=tmp_path)
    (tmp_path / "c.yaml").write_text(f"seed_tasks: {PROJECT_SEEDS}\nbackend: fake\nname: '{name}'\n"
                                     "stages: [bootstrap]\nbootstrap: {num_instructions: 4}\n")
    r = CliRunner().invoke(main, ["generate", "-c", "c.yaml", "-q"])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: c.yaml: field 'name': ") and "-o" in r.output and r.output.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # nothing written, anywhere


def test_a_run_name_with_a_separator_is_fine_with_o(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"seed_tasks: {PROJECT_SEEDS}\nbackend: fake\nname: team/run-1\nstages: [bootstrap]\n"
                   "bootstrap: {num_instructions: 4}\n")
    r = CliRunner().invoke(main, ["generate", "-c", str(cfg), "-o", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0 and (tmp_path / "run" / "bootstrap" / "manifest.json").is_file(), r.output


# --------------------------------------------------------------- only finite, bounded numeric settings

def _one_line_error(r) -> str:
    """The CLI's answer to a bad setting: exit 2, one line, no traceback."""
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output, r.output
    assert r.output.count("\n") == 1, r.output
    return r.output.strip()


NON_FINITE = [(".nan", "nan"), (".inf", "inf"), ("-.inf", "-inf")]


@pytest.mark.parametrize("text, line, field", [
    ("name: x\nbootstrap:\n  sampling:\n    temperature: {}\n", 4, "bootstrap.sampling.temperature"),
    ("openai:\n  timeout_s: {}\n", 2, "openai.timeout_s"),
    ("bootstrap:\n  filters:\n    rouge_threshold: {}\n", 3, "bootstrap.filters.rouge_threshold"),
    ("export:\n  eval_fraction: {}\n", 2, "export.eval_fraction"),
])
@pytest.mark.parametrize("value, shown", NON_FINITE)
def test_a_nan_or_infinite_setting_is_a_config_error(tmp_path, text, line, field, value, shown):
    """NaN passes every range check, and a NaN temperature or timeout failed each request (a run that said
    "re-run to resume", which never could); a NaN threshold or eval fraction ended in a traceback."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text.format(value))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["generate", "-c", str(cfg), "-o", str(out), "-q"])
    assert _one_line_error(r) == f"error: {cfg}:{line}: field '{field}': expected a finite number, got {shown}"
    assert not out.exists()


@pytest.mark.parametrize("text, line, field, expect", [
    ("seed: 4294967296\n", 1, "seed", "must be >= 0 and <= 4294967295"),  # numpy's seeds: 0..2**32-1
    ("seed: -1\n", 1, "seed", "must be >= 0 and <= 4294967295"),
    ("bootstrap:\n  sampling: {max_tokens: 100000000000}\n", 2, "bootstrap.sampling.max_tokens",
     "must be >= 1 and <= 16777216"),
    ("openai:\n  timeout_s: 1e12\n", 2, "openai.timeout_s", "must be > 0.0 and <= 86400.0"),
    ("openai:\n  max_concurrency: 1000000000\n", 2, "openai.max_concurrency", "must be >= 1 and <= 65536"),
    ("name: x\nopenai:\n  base_urls: []\n", 3, "openai.base_urls", "must list at least one server URL"),
    ("openai:\n  timeout_s: 1" + "0" * 400 + "\n", 2, "openai.timeout_s", "expected a finite number, got inf"),
])
def test_out_of_bound_settings_are_config_errors(tmp_path, text, line, field, expect):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    r = CliRunner().invoke(main, ["generate", "-c", str(cfg), "-o", str(tmp_path / "run"), "-q"])
    assert _one_line_error(r) == f"error: {cfg}:{line}: field '{field}': {expect}"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, field, expect", [
    (["--set", "bootstrap.sampling.temperature=.nan"], "bootstrap.sampling.temperature",
     "expected a finite number, got nan"),  # YAML's NaN
    (["--set", "bootstrap.sampling.temperature=nan"], "bootstrap.sampling.temperature",
     "expected a number, got 'nan'"),  # a string to YAML
    (["--set", "openai.timeout_s=-.inf"], "openai.timeout_s", "expected a finite number, got -inf"),
    (["--set", "export.eval_fraction=1e999"], "export.eval_fraction", "expected a finite number, got inf"),
    (["--set", "openai.base_urls=[]"], "openai.base_urls", "must list at least one server URL"),
    (["--seed", "4294967296"], "seed", "must be >= 0 and <= 4294967295"),
])
def test_command_line_settings_get_the_same_checks(tmp_path, args, field, expect):
    r = CliRunner().invoke(main, ["generate", "-c", str(ROOT / "pipelines" / "default.yaml"),
                                  "-o", str(tmp_path / "run"), "-q", *args])
    assert _one_line_error(r) == f"error: field '{field}': {expect} (given on the command line)"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command, args, field, expect", [
    ("finetune", ["--lr", "nan"], "learning_rate", "expected a finite number, got nan"),  # click reads "nan"
    ("finetune", ["--set", "max_grad_norm=.inf"], "max_grad_norm", "expected a finite number, got inf"),
    ("finetune", ["--seed", "4294967296"], "seed", "must be >= 0 and <= 4294967295"),
    ("dpo", ["--set", "beta=.nan"], "beta", "expected a finite number, got nan"),
])
def test_train_settings_are_finite_and_bounded_too(tmp_path, command, args, field, expect):
    r = CliRunner().invoke(main, [command, "-d", str(tmp_path), "-o", str(tmp_path / "m"), *args])
    assert _one_line_error(r) == f"error: field '{field}': {expect} (given on the command line)"
    assert not (tmp_path / "m").exists()
