import pytest

from selfinstruct.generate.config import load_config
from selfinstruct.io.errors import UserError

from .conftest import ROOT


@pytest.mark.parametrize("name", ["default", "alpaca", "verified"])
def test_shipped_configs_load(name):
    cfg = load_config(ROOT / "pipelines" / f"{name}.yaml")
    assert cfg.name == name and cfg.backend == "vllm"


def test_overrides():
    cfg = load_config(ROOT / "pipelines" / "default.yaml",
                      {"bootstrap.num_instructions": 7, "model": "/some/model", "seed": None})
    assert cfg.bootstrap.num_instructions == 7 and cfg.model == "/some/model" and cfg.seed == 42


@pytest.mark.parametrize("text, expect", [
    ("name: x\nbootstrap:\n  num_instructions: many\n", ":3: field 'bootstrap.num_instructions': expected an integer"),
    ("name: x\nbootstrap:\n  sampling:\n    temprature: 0.5\n", ":4: field 'bootstrap.sampling.temprature': unknown key"),
    ("name: x\nbackend: tgi\n", ":2: field 'backend': must be one of"),
    ("name: x\nstages: [classify]\n", ":2: field 'stages'"),
    ("name: [unclosed\n", ":2: invalid YAML"),
    ("- a list\n", ":1: expected a mapping"),
    ("export:\n  eval_fraction: 1.5\n", ":2: field 'export.eval_fraction'"),
    ("bootstrap:\n  filters:\n    rouge_threshold: 2\n", ":3: field 'bootstrap.filters.rouge_threshold'"),
    ("vllm: {max_model_len: true}\n", ":1: field 'vllm.max_model_len': expected an integer"),
])
def test_bad_config_one_line_with_location(tmp_path, text, expect):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(UserError) as e:
        load_config(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and expect in msg and "\n" not in msg


def test_missing_and_binary_config(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    p = tmp_path / "b.yaml"
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(UserError, match="UTF-8"):
        load_config(p)


def test_empty_config_is_all_defaults(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("")
    cfg = load_config(p)
    assert cfg.stages == ["bootstrap", "classify", "instances", "filter", "export"]
