"""What runs a Ray job's rows (see executor.RayEngine): vLLM replicas through Ray Data's LLM
processor, or the deterministic fake backend in a Ray actor pool (tests: the same executor path, with
answers known in advance). Each turns the driver's `Request` into row columns and the answer row back
into the `Completion` the local backend makes for the same request, so the stage sees no difference."""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from functools import cached_property
from typing import Any

from ...backends.base import Completion, Request
from ...backends.chat import chat_token_ids
from ...backends.fake import FakeBackend, FakeOptions
from ...backends.vllm_engine import VllmOptions, engine_args
from .cluster import RayOptions, cluster_has_gpus

# CPU share of our small per-row tasks: on a machine with few cores, whole CPUs for them would leave
# none for the engine actors, which then wait forever
LIGHT_CPUS = 0.25


class VllmRayEngine:
    """N vLLM replicas driven by `ray.data.llm.build_processor(vLLMEngineProcessorConfig)`. Prompts
    reach them as token ids rendered here by the project's one chat renderer (Ray's own chat-template
    and tokenize stages are off: its tokenize stage adds special tokens again, the double-BOS bug), and
    its detokenize stage is off too: the text is vLLM's own, as the in-process engine returns it."""

    def __init__(self, model_path: str, opts: VllmOptions, ray_opts: RayOptions, seed: int = 0):
        self.model, self.opts, self.ray_opts, self.seed = model_path, opts, ray_opts, seed

    @cached_property
    def on_gpus(self) -> bool:
        """Whether the replicas run on GPUs: decided by the cluster's resources (once connected), not by
        this process's platform."""
        return cluster_has_gpus()

    @cached_property
    def vllm_args(self) -> dict[str, Any]:
        args = engine_args(self.model, replica_options(self.opts, self.ray_opts), seed=self.seed,
                           cpu=not self.on_gpus)
        del args["model"]  # Ray's config names it apart
        if not self.on_gpus and self.ray_opts.tensor_parallel_size * self.ray_opts.pipeline_parallel_size > 1:
            # vLLM's CPU platform has no Ray executor (Ray's LLM processor picks it for several workers):
            # its own processes, on the replica's node, with the replica's CPU bundles
            args.setdefault("distributed_executor_backend", "mp")
        return args

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(self.model, trust_remote_code=self.opts.trust_remote_code)

    @cached_property
    def eos(self) -> set[int]:
        return stop_token_ids(self.tokenizer, self.model)

    def row(self, request: Request) -> dict[str, Any]:
        r = request
        if isinstance(r.prompt, str):  # as vLLM tokenizes a text prompt: with the tokenizer's special tokens
            ids = self.tokenizer.encode(r.prompt)
        else:
            ids = chat_token_ids(self.tokenizer, r.prompt)
        params: dict[str, Any] = dict(max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p,
                                      stop=list(r.stop), frequency_penalty=r.frequency_penalty,
                                      presence_penalty=r.presence_penalty)
        if r.seed is not None:
            params["seed"] = r.seed
        if r.choices:
            params["structured_outputs"] = {"choice": list(r.choices)}
        return {"prompt": "", "tokenized_prompt": list(ids), "sampling_params": params}

    def config(self):
        from ray.data.llm import vLLMEngineProcessorConfig

        o = self.ray_opts
        workers = o.tensor_parallel_size * o.pipeline_parallel_size
        extra: dict[str, Any] = {}
        if not self.on_gpus:  # no GPUs to place the engine's workers on: one CPU bundle each
            extra["placement_group_config"] = {"bundles": [{"CPU": 1}] * workers}
        # (n, n): a pool of exactly n replicas; a bare n would be an autoscaling pool of 1..n, whose
        # later replicas start (minutes each) only once Ray sees a backlog
        return vLLMEngineProcessorConfig(
            model_source=self.model, engine_kwargs=self.vllm_args, concurrency=(o.replicas, o.replicas),
            batch_size=o.batch_size, chat_template_stage=False, tokenize_stage=False, detokenize_stage=False,
            # its metrics import ray.serve, which ray[data] does not install
            log_engine_metrics=False, **extra)

    def process(self, ds):
        from ray.data.llm import build_processor

        keep = (lambda row: row)  # noqa: E731  (Ray wants a postprocess to keep our index columns)
        return build_processor(self.config(), postprocess=keep,
                               postprocess_map_kwargs={"num_cpus": LIGHT_CPUS})(ds)

    def completion(self, row: dict[str, Any], request: Request) -> Completion:
        tokens = [int(t) for t in row["generated_tokens"]]
        return Completion(text=row["generated_text"], finish_reason=self.finish_reason(row, tokens, request),
                          prompt_tokens=int(row["num_input_tokens"]), completion_tokens=len(tokens))

    def finish_reason(self, row: dict[str, Any], tokens: list[int], request: Request) -> str:
        """vLLM's finish reason, which Ray's output rows do not carry, by vLLM's own rule (its
        v1/core/sched/utils.check_stop): an end-of-sequence token ends it first ("stop"), then the token
        budget or the context length ("length"), unless a stop string matched in that last step."""
        if not tokens or tokens[-1] in self.eos:
            return "stop"
        at_limit = len(tokens) >= request.max_tokens or \
            int(row["num_input_tokens"]) + len(tokens) >= self.opts.max_model_len
        if not at_limit:
            return "stop"
        text = row["generated_text"]
        full = self.tokenizer.decode(tokens, skip_special_tokens=True)
        if any(full.startswith(s, len(text)) for s in request.stop if len(full) > len(text)):
            return "stop"
        return "length"


def replica_options(options: Any, ray_opts: RayOptions) -> Any:
    """A Ray replica's engine options: the replica's shape (`ray.tensor_parallel_size` x
    `ray.pipeline_parallel_size`) over the in-process engine's `vllm.tensor_parallel_size`, so that an
    engine uses exactly the devices Ray reserved for it. Other backends' options are as given."""
    if not isinstance(options, VllmOptions):
        return options
    extra = dict(options.extra)
    if ray_opts.pipeline_parallel_size != 1:
        extra["pipeline_parallel_size"] = ray_opts.pipeline_parallel_size
    return replace(options, tensor_parallel_size=ray_opts.tensor_parallel_size, extra=extra)


def stop_token_ids(tokenizer, model_path: str) -> set[int]:
    """The tokens that end a sequence in vLLM: the tokenizer's EOS and the generation config's."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    try:
        from transformers import GenerationConfig
        g = GenerationConfig.from_pretrained(model_path).eos_token_id
        ids |= set(g if isinstance(g, list) else [g] if g is not None else [])
    except (OSError, ValueError):  # no generation_config.json
        pass
    return ids


class FakeEngineActor:
    """One replica of the fake backend, as a Ray Data actor: answers each row's request."""

    def __init__(self, options: dict[str, Any]):
        self.backend = FakeBackend(options=FakeOptions(**options))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        reqs = [Request(**json.loads(r)) for r in batch["si_request"]]
        comps = self.backend.generate(reqs)
        out = dict(batch)
        out["text"] = [c.text for c in comps]
        out["finish_reason"] = [c.finish_reason or "" for c in comps]
        out["prompt_tokens"] = [c.prompt_tokens for c in comps]
        out["completion_tokens"] = [c.completion_tokens for c in comps]
        out["error"] = [c.error or "" for c in comps]
        return out


class FakeRayEngine:
    """The fake backend on `replicas` Ray actors; its answers are shuffled before they come back (as a
    real cluster returns them out of order), so that the executor's index matching is exercised."""

    def __init__(self, options: FakeOptions, ray_opts: RayOptions):
        self.options, self.ray_opts = options, ray_opts

    def row(self, request: Request) -> dict[str, Any]:
        return {"si_request": json.dumps(asdict(request))}

    def process(self, ds):
        o = self.ray_opts
        out = ds.map_batches(FakeEngineActor, fn_constructor_kwargs={"options": asdict(self.options)},
                             concurrency=o.replicas, batch_size=o.batch_size, num_cpus=LIGHT_CPUS)
        return out.random_shuffle(seed=self.options.order_seed)

    def completion(self, row: dict[str, Any], request: Request) -> Completion:
        return Completion(text=row["text"], finish_reason=row["finish_reason"] or None,
                          prompt_tokens=int(row["prompt_tokens"]), completion_tokens=int(row["completion_tokens"]),
                          error=row["error"] or None)


def ray_engine(backend: str, model_path: str, options: Any, ray_opts: RayOptions, seed: int = 0):
    """The Ray engine of a backend, or None for one that stays on the local executor: OpenAI-compatible
    servers keep the project's own client (Ray's HTTP processor takes one URL, does not retry, ignores
    Retry-After and deadlines, and fails the whole job on one error)."""
    if backend == "vllm":
        return VllmRayEngine(model_path, options, ray_opts, seed=seed)
    if backend == "fake":
        return FakeRayEngine(options, ray_opts)
    return None
