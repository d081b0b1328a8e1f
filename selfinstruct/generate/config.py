"""Pipeline configuration: YAML -> typed dataclasses, with errors that name file:line and the field."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..io.errors import UserError


@dataclass
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0


@dataclass
class VllmOptions:
    """Extra engine arguments for the in-process vLLM engine (vllm.LLM)."""
    max_model_len: int = 2048
    dtype: str = "auto"
    gpu_memory_utilization: float | None = None  # None: 0.9 on GPU; on CPU sized from the model
    tensor_parallel_size: int = 1
    enforce_eager: bool = False
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class OpenAIOptions:
    """Any OpenAI-compatible server (`vllm serve`). The API key is read from the env var named here."""
    base_urls: list[str] = field(default_factory=lambda: ["http://127.0.0.1:8000/v1"])
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 32
    timeout_s: float = 120.0
    max_retries: int = 6
    backoff_s: float = 0.5


@dataclass
class InstructionFilters:
    rouge_threshold: float = 0.7
    min_words: int = 3
    max_words: int = 150
    blocked_keywords: list[str] = field(default_factory=lambda: [
        "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
        "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram", "photo", "photos"])
    blocked_prefixes: list[str] = field(default_factory=lambda: ["Write a program"])


@dataclass
class BootstrapConfig:
    num_instructions: int = 100
    prompt_format: str = "completion"  # completion | chat
    num_seed_demos: int = 6
    num_machine_demos: int = 2
    requests_per_round: int = 16
    max_rounds: int = 200
    nearest_floor: float = 0.0  # nearest-instruction provenance is exact whenever its score > this
    overlap_depth: int = 16  # look-ahead: round r is built (its machine demos picked) once rounds <= r - depth are done
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=1.0, top_p=1.0, max_tokens=256))
    filters: InstructionFilters = field(default_factory=InstructionFilters)


@dataclass
class ClassifyConfig:
    num_demos: int = 12
    batch_size: int = 256
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.0, max_tokens=4))


@dataclass
class InstancesConfig:
    num_demos: int = 3
    max_instances: int = 5
    batch_size: int = 256
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.0, max_tokens=300))


@dataclass
class AlpacaConfig:
    """Alpaca single-pass generation: each prompt yields up to `tasks_per_prompt` (instruction, input, output)."""
    num_instructions: int = 100
    num_demos: int = 3
    tasks_per_prompt: int = 20
    requests_per_round: int = 16
    max_rounds: int = 200
    nearest_floor: float = 0.0
    overlap_depth: int = 16
    prompt_format: str = "completion"
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=1.0, top_p=1.0, max_tokens=1024))
    filters: InstructionFilters = field(default_factory=InstructionFilters)


@dataclass
class FilterConfig:
    max_output_words: int = 400
    max_input_words: int = 400
    min_output_chars: int = 1
    max_instances: int = 5


@dataclass
class ExportConfig:
    eval_fraction: float = 0.1
    formats: list[str] = field(default_factory=lambda: ["messages", "prompt_completion", "alpaca"])
    system_prompt: str | None = None


STAGE_CONFIGS: dict[str, type] = {
    "bootstrap": BootstrapConfig, "classify": ClassifyConfig, "instances": InstancesConfig,
    "alpaca": AlpacaConfig, "filter": FilterConfig, "export": ExportConfig,
}
PIPELINES = {
    ("bootstrap", "classify", "instances", "filter", "export"),
    ("alpaca", "filter", "export"),
    ("bootstrap",), ("bootstrap", "classify"), ("bootstrap", "classify", "instances"),
    ("bootstrap", "classify", "instances", "filter"), ("alpaca",), ("alpaca", "filter"),
}


@dataclass
class PipelineConfig:
    name: str = "default"
    seed: int = 42
    model: str = "embedded:smollm2-135m-instruct"
    backend: str = "vllm"  # vllm | openai
    seed_tasks: str = "seed_tasks/seed_tasks.jsonl"
    stages: list[str] = field(default_factory=lambda: ["bootstrap", "classify", "instances", "filter", "export"])
    vllm: VllmOptions = field(default_factory=VllmOptions)
    openai: OpenAIOptions = field(default_factory=OpenAIOptions)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    instances: InstancesConfig = field(default_factory=InstancesConfig)
    alpaca: AlpacaConfig = field(default_factory=AlpacaConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    source: str | None = field(default=None, metadata={"internal": True})  # file it was loaded from

    def stage(self, name: str):
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source", None)
        return d


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


# ---------------------------------------------------------------- loading with line numbers

class _Lines:
    """Line numbers of YAML keys and values, by dotted path."""

    def __init__(self, node: yaml.Node | None):
        self.lines: dict[str, int] = {}
        if node is not None:
            self._walk(node, "")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = f"{path}.{k.value}" if path else str(k.value)
                self.lines[p] = k.start_mark.line + 1
                self._walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk(v, f"{path}[{i}]")

    def get(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rpartition(".")[0] if "." in path else ""
        return None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    return {type(None): "null", float: "number"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(value: Any, tp: Any, path: str, err) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], path, err)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            err(path, f"expected a mapping, got {type(value).__name__}")
        return _build(tp, value, path, err)
    if origin is list:
        if not isinstance(value, list):
            err(path, f"expected {_type_name(tp)}, got {type(value).__name__}")
        return [_convert(v, args[0], f"{path}[{i}]", err) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            err(path, f"expected a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            err(path, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            err(path, f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            err(path, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            err(path, f"expected a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: dict[str, Any], path: str, err) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for key, value in data.items():
        p = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = [n for n in fields if n.startswith(str(key)[:3])]
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            err(p, f"unknown key{hint}; allowed: {', '.join(sorted(fields))}")
        kwargs[key] = _convert(value, hints[key], p, err)
    return cls(**kwargs)


def _validate(cfg: PipelineConfig, err) -> None:
    if cfg.backend not in ("vllm", "openai"):
        err("backend", f"must be 'vllm' or 'openai', got {cfg.backend!r}")
    if tuple(cfg.stages) not in PIPELINES:
        err("stages", f"unsupported stage list {cfg.stages}; use [bootstrap, classify, instances, filter, export] "
                      "or [alpaca, filter, export] (or a prefix of either)")
    for name in ("bootstrap", "alpaca"):
        st = getattr(cfg, name)
        if st.num_instructions < 1:
            err(f"{name}.num_instructions", "must be >= 1")
        if st.prompt_format not in ("completion", "chat"):
            err(f"{name}.prompt_format", f"must be 'completion' or 'chat', got {st.prompt_format!r}")
        if not 0.0 <= st.filters.rouge_threshold <= 1.0:
            err(f"{name}.filters.rouge_threshold", "must be between 0 and 1")
        if st.requests_per_round < 1:
            err(f"{name}.requests_per_round", "must be >= 1")
        if st.overlap_depth < 1:
            err(f"{name}.overlap_depth", "must be >= 1 (1: one round at a time)")
    if cfg.bootstrap.num_seed_demos + cfg.bootstrap.num_machine_demos < 1:
        err("bootstrap.num_seed_demos", "at least one demonstration is needed")
    if not 0.0 <= cfg.export.eval_fraction < 1.0:
        err("export.eval_fraction", "must be in [0, 1)")
    for i, f in enumerate(cfg.export.formats):
        if f not in ("messages", "prompt_completion", "alpaca"):
            err(f"export.formats[{i}]", f"unknown format {f!r}; use messages, prompt_completion, alpaca")
    for name in ("bootstrap", "classify", "instances", "alpaca"):
        s = getattr(cfg, name).sampling
        if s.max_tokens < 1:
            err(f"{name}.sampling.max_tokens", "must be >= 1")
        if s.temperature < 0:
            err(f"{name}.sampling.temperature", "must be >= 0")
        if not 0 < s.top_p <= 1:
            err(f"{name}.sampling.top_p", "must be in (0, 1]")


def read_yaml(path: str | Path) -> tuple[dict[str, Any], _Lines]:
    """Read a YAML mapping and the line of every key; any problem is a UserError naming file:line."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError("config file not found", path=path) from None
    except (IsADirectoryError, PermissionError) as e:
        raise UserError(f"cannot read config: {e.strerror}", path=path) from None
    except UnicodeDecodeError as e:
        raise UserError(f"config is not valid UTF-8 (byte {e.start})", path=path) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"invalid YAML: {problem}", path=path,
                        line=mark.line + 1 if mark else None) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping at the top level, got {type(data).__name__}", path=path, line=1)
    return data, _Lines(node)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    path = Path(path)
    data, lines = read_yaml(path)

    def err(p: str, msg: str):
        raise UserError(msg, path=path, line=lines.get(p), field=p)

    cfg = _build(PipelineConfig, data, "", err)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        obj = cfg
        *parents, last = key.split(".")
        for p in parents:
            obj = getattr(obj, p)
        setattr(obj, last, value)
    _validate(cfg, err)
    cfg.source = str(path)
    return cfg
