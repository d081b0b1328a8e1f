"""The seams of the design: a stage is one class (defined here, outside the package), the config and the
allowed stage orders come from the registries, each stage may use its own model (its hash and the
manifest's provenance name it), in-process engines never overlap, runs record versions and model
fingerprints, old-format runs are refused in one line, and no module grows past 400 lines."""
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.backends import Backend, register_backend
from selfinstruct.backends.fake import FakeBackend, FakeOptions
from selfinstruct.cli import main
from selfinstruct.generate.config import load_config
from selfinstruct.generate.pipeline import run_pipeline
from selfinstruct.generate.plugins import stage_order
from selfinstruct.generate.registry import register_stage
from selfinstruct.generate.stage import BatchStage, StageResult
from selfinstruct.io.errors import UserError
from selfinstruct.io.records import Reject
from selfinstruct.io.settings import setting
from selfinstruct.io.shards import read_stage_rows

from .conftest import PROJECT_SEEDS, ROOT, run_files

pytestmark = pytest.mark.timeout(180)
PACKAGE = ROOT / "selfinstruct"
MAX_LINES = 400


# ------------------------------------------------------------------- a stage defined outside the package

@dataclass
class LengthConfig:
    max_words: int = setting(12, min=1, help="drop instructions longer than this")
    banned: str = setting("river", help="drop instructions that mention this word")


@register_stage
class LengthCheck(BatchStage):
    """Tags each record with its instruction's length in words and drops long ones."""
    name = "length_check"
    Config = LengthConfig
    reads = frozenset({"instruction"})
    writes = frozenset({"words"})
    batch_size = 7

    def process(self, batch, completions):
        out = StageResult()
        for r in batch:
            words = len(r.instruction.split())
            if words > self.cfg.max_words or self.cfg.banned in r.instruction.split():
                out.reject(Reject(r.id, "too_many_words", instruction=r.instruction))
                continue
            r.extra["words"] = words
            out.keep(r)
        return out


def small_config(tmp_path: Path, text: str):
    p = tmp_path / "p.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\n" + text)
    return load_config(p)


def test_a_stage_is_one_class_and_shows_up_in_show_and_stats(tmp_path):
    cfg = small_config(tmp_path, "stages: [bootstrap, length_check]\nlength_check: {max_words: 9}\n"
                                 "bootstrap: {num_instructions: 20, requests_per_round: 4}\n")
    assert cfg.length_check.max_words == 9 and "length_check" in stage_order()
    run = tmp_path / "run"
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend(cap=4))
    kept = list(read_stage_rows(run / "length_check"))
    dropped = list(read_stage_rows(run / "length_check", rejects=True))
    assert len(kept) + len(dropped) == 20 and kept and dropped
    assert all(r["words"] <= 9 and r["words"] == len(r["instruction"].split()) for r in kept)
    assert {r["reason"] for r in dropped} == {"too_many_words"}

    cli = CliRunner()
    stats = cli.invoke(main, ["stats", str(run), "--no-plots"])
    assert stats.exit_code == 0, stats.output
    assert "length_check" in stats.output and "too_many_words" in stats.output
    show = cli.invoke(main, ["show", str(run / "length_check"), "-n", "1"])
    assert show.exit_code == 0 and kept[0]["instruction"][:30] in show.output
    # its config section is range-checked from the field metadata, with the YAML line
    with pytest.raises(UserError, match=r"p.yaml:3: field 'length_check.max_words': must be >= 1"):
        small_config(tmp_path, "stages: [bootstrap, length_check]\nlength_check: {max_words: 0}\n")


# ------------------------------------------------------------------------- the stage contract's traps

@dataclass
class TaggerConfig:
    prefix: str = setting("v", help="the tag's first letters")  # and no batch_size


@register_stage
class Tagger(BatchStage):
    """A stage with no model and no batch_size setting: it tags what filter kept."""
    name = "tagger"
    Config = TaggerConfig
    reads = frozenset({"instruction"})
    writes = frozenset({"tag"})
    after = frozenset({"filter"})  # it tags what filter kept, though it reads nothing filter writes

    def process(self, batch, completions):
        out = StageResult()
        for r in batch:
            r.extra["tag"] = f"{self.cfg.prefix}{type(self).code_version}:{len(r.instruction) % 3}"
            out.keep(r)
        return out


TAGGED = "stages: [bootstrap, classify, instances, filter, tagger]\nbootstrap: {num_instructions: 12}\n"


def test_a_stage_without_batch_size_runs_in_shards_of_the_default_size(tmp_path):
    from selfinstruct.generate.stage import DEFAULT_BATCH_SIZE

    run = tmp_path / "run"
    run_pipeline(small_config(tmp_path, TAGGED), run, quiet=True, backend=FakeBackend())
    rows = list(read_stage_rows(run / "tagger"))
    assert rows and all(r["tag"].startswith("v0:") for r in rows) and len(rows) <= DEFAULT_BATCH_SIZE
    assert len(list((run / "tagger").glob("part-*.jsonl"))) == 1


def test_a_stage_may_require_stages_before_it(tmp_path):
    with pytest.raises(UserError, match="'tagger' must come after 'filter'"):
        small_config(tmp_path, "stages: [bootstrap, tagger]\n")


def test_a_changed_code_version_refuses_old_shards_and_resumes_the_stages_before(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_pipeline(small_config(tmp_path, TAGGED), run, quiet=True, backend=FakeBackend())
    before = {p: p.read_bytes() for p in sorted(run.rglob("part-*.jsonl"))}
    monkeypatch.setattr(Tagger, "code_version", 1)  # its logic changed: the tag is now "v1:..."
    with pytest.raises(UserError, match=r"tagger was written with a different"):
        run_pipeline(small_config(tmp_path, TAGGED), run, quiet=True, backend=FakeBackend())
    run_pipeline(small_config(tmp_path, TAGGED), run, quiet=True, backend=FakeBackend(), force=True)
    after = {p: p.read_bytes() for p in sorted(run.rglob("part-*.jsonl"))}
    assert {p: b for p, b in after.items() if "tagger" not in str(p)} == {
        p: b for p, b in before.items() if "tagger" not in str(p)}  # the earlier stages were resumed
    assert all(r["tag"].startswith("v1:") for r in read_stage_rows(run / "tagger"))


@pytest.mark.parametrize("stages, why", [
    ("[classify]", "must start with a generator"),
    ("[bootstrap, instances]", "'instances' reads is_classification"),
    ("[bootstrap, classify, instances, export, filter]", "nothing can follow 'export'"),
    ("[bootstrap, alpaca]", "'alpaca' generates instructions"),
    ("[bootstrap, judge]", "'judge' reads instances"),
    ("[bootstrap, nonesuch]", "unknown stage 'nonesuch'"),
    ("[bootstrap, classify, instances, filter, select]", "'select' reads judge_score"),
])
def test_stage_orders_are_checked_from_declared_reads_and_writes(tmp_path, stages, why):
    with pytest.raises(UserError, match=why):
        small_config(tmp_path, f"stages: {stages}\n")


def test_every_numeric_option_is_range_checked(tmp_path):
    for text, where in [("openai: {max_concurrency: 0}\n", "openai.max_concurrency"),
                        ("classify: {batch_size: 0}\n", "classify.batch_size"),
                        ("bootstrap: {num_seed_demos: -1}\n", "bootstrap.num_seed_demos"),
                        ("instances: {max_instances: 0}\n", "instances.max_instances"),
                        ("bootstrap: {sampling: {top_p: 0}}\n", "bootstrap.sampling.top_p"),
                        ("bootstrap: {filters: {min_words: 9, max_words: 5}}\n", "bootstrap.filters.min_words"),
                        ("export: {formats: []}\n", "export.formats"),
                        ("max_consecutive_failures: 0\n", "max_consecutive_failures")]:
        with pytest.raises(UserError, match=f"field '{where}'"):
            small_config(tmp_path, text)


def test_config_precedence_yaml_then_set_then_flag(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("seed: 1\nbootstrap: {num_instructions: 5, requests_per_round: 3}\n")
    assert load_config(p).seed == 1
    cfg = load_config(p, sets=["seed=2", "bootstrap.requests_per_round=4", "classify.sampling.stop=[x, y]"])
    assert (cfg.seed, cfg.bootstrap.requests_per_round, cfg.classify.sampling.stop) == (2, 4, ["x", "y"])
    cfg = load_config(p, {"seed": 3}, sets=["seed=2"])
    assert cfg.seed == 3 and cfg.bootstrap.num_instructions == 5
    with pytest.raises(UserError, match=r"field 'bootstrap.requests_per_round': must be >= 1 and <= 65536 \(given"):
        load_config(p, sets=["bootstrap.requests_per_round=0"])
    # through the CLI: --set and a flag, the flag wins; the run is made with the fake backend
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["generate", "-c", str(p), "-o", str(out), "--set", "stages=[bootstrap]",
                                  "--set", f"seed_tasks={PROJECT_SEEDS}", "--set", "seed=7", "--seed", "8",
                                  "--backend", "fake", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["config"]["seed"] == 8


# ------------------------------------------------------------------------------- models and engines

class Tracked(FakeBackend):
    """An in-process engine stand-in that records how many are open at once."""
    open_now: list = []
    most_open = 0
    made: list = []

    def __init__(self, model, options, seed=0):
        super().__init__(model, options, seed)
        Tracked.open_now.append(self)
        Tracked.made.append(model)
        Tracked.most_open = max(Tracked.most_open, len(Tracked.open_now))

    def close(self):
        Tracked.open_now.remove(self)


register_backend("tracked", FakeOptions, in_process=True)(Tracked)


def test_each_stage_may_use_its_own_model_and_engines_never_overlap(tmp_path):
    text = ("backend: tracked\nmodel: generator-model\n"
            "bootstrap: {num_instructions: 12, requests_per_round: 4}\n"
            "classify: {model: judge-model}\ninstances: {model: teacher-model}\n")
    Tracked.made.clear()
    run = tmp_path / "run"
    run_pipeline(small_config(tmp_path, text), run, quiet=True)
    assert Tracked.made == ["generator-model", "judge-model", "teacher-model"]
    assert Tracked.most_open == 1 and not Tracked.open_now  # one at a time, all closed at the end

    def provenance(stage):
        return json.loads((run / stage / "manifest.json").read_text())["provenance"]

    assert provenance("classify")["model"]["name"] == "judge-model"
    assert provenance("instances")["model"]["name"] == "teacher-model"
    assert provenance("filter")["model"] is None
    assert "instances" in provenance("instances")["writes"]
    boot = list(read_stage_rows(run / "bootstrap"))
    assert boot and {r["model"] for r in boot} == {"generator-model"}

    # another teacher: only the stages from instances on are invalid; the earlier ones are kept
    with pytest.raises(UserError, match="instances was written with a different configuration"):
        run_pipeline(small_config(tmp_path, text.replace("teacher-model", "other-teacher")), run, quiet=True)
    Tracked.made.clear()
    run_pipeline(small_config(tmp_path, text.replace("teacher-model", "other-teacher")), run, quiet=True, force=True)
    assert Tracked.made == ["other-teacher"]


def test_run_records_versions_and_model_fingerprints(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"\0" * 64)
    run = tmp_path / "run"
    run_pipeline(small_config(tmp_path, f"backend: fake\nmodel: {model}\nstages: [bootstrap]\n"
                                        "bootstrap: {num_instructions: 3}\n"), run, quiet=True)
    info = json.loads((run / "run.json").read_text())
    assert info["schema"] == 2 and info["versions"]["selfinstruct"]
    assert {"torch", "transformers", "trl"} <= set(info["versions"])
    fp = info["models"]["bootstrap"]
    assert fp["name"] == str(model) and len(fp["config_sha256"]) == 64 and len(fp["weights_sha256"]) == 64
    manifest = json.loads((run / "bootstrap" / "manifest.json").read_text())
    assert manifest["schema"] == 2 and manifest["provenance"]["model"] == fp


def test_a_run_of_the_old_format_is_refused_in_one_line(tmp_path):
    cfg = small_config(tmp_path, "stages: [bootstrap]\nbootstrap: {num_instructions: 3}\n")
    run = tmp_path / "run"
    (run / "bootstrap").mkdir(parents=True)
    (run / "bootstrap" / "manifest.json").write_text(json.dumps(
        {"stage": "bootstrap", "config_hash": "x", "complete": True, "parts": [], "counts": {}}))
    with pytest.raises(UserError, match="written in run format 1, this is format 2") as e:
        run_pipeline(cfg, run, quiet=True, backend=FakeBackend())
    assert "\n" not in str(e.value)
    run_pipeline(cfg, run, quiet=True, backend=FakeBackend(), force=True)
    assert len(list(read_stage_rows(run / "bootstrap"))) == 3


def test_no_module_over_400_lines_and_no_private_imports_across_modules():
    too_long, private = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("from ") and " import " in s:
                names = s.split(" import ", 1)[1].strip("() ")
                if any(n.strip().split(" as ")[0].startswith("_") and not n.strip().startswith("__")
                       for n in names.split(",")):
                    private.append(f"{path.relative_to(ROOT)}: {s}")
    assert not too_long, too_long
    assert not private, private


def test_backends_register_themselves_and_the_cli_lists_them():
    from selfinstruct.backends import backends
    assert {"vllm", "openai"} <= set(backends())
    assert backends()["vllm"].local_model and not backends()["openai"].local_model
    assert issubclass(backends()["openai"].cls, Backend)


# ------------------------------------------------------------------- an executor defined outside the package

@dataclass
class RelayOptions:
    tag: str = setting("r", help="a setting of the executor's own section")


class RelaySession:
    """Answers every model stage with its own fake backend, remembering what the pipeline asked it."""
    log: list = []

    def __init__(self, options: RelayOptions):
        RelaySession.log.append(("open", options.tag))

    def batch_executor(self, stage, backend, model_path, options, seed):
        from selfinstruct.backends import create_backend
        from selfinstruct.generate.executor import LocalExecutor

        RelaySession.log.append(("batch", stage))
        return LocalExecutor(create_backend(backend, model_path, options, seed=seed))

    def replicas(self, backend, model_path, options, seed):
        from selfinstruct.backends import create_backend

        RelaySession.log.append(("replicas", backend))
        return create_backend(backend, model_path, options, seed=seed)

    def close(self):
        RelaySession.log.append(("close",))


def test_an_executor_is_one_registered_class_with_its_own_section(tmp_path):
    """`@register_executor` is all an executor needs: `executor: relay` and its `relay:` section load, the
    pipeline asks it for the generator's replicas and each batch stage's executor, closes it once, and
    an answer depends only on its request, so the data is the local executor's."""
    from selfinstruct.generate.executors import register_executor

    register_executor("relay", RelayOptions)(RelaySession)
    text = "backend: fake\nbootstrap: {num_instructions: 8, requests_per_round: 4}\n"
    run_pipeline(small_config(tmp_path, text), tmp_path / "local", quiet=True)
    RelaySession.log.clear()
    cfg = small_config(tmp_path, text + "executor: relay\nrelay: {tag: t1}\n")
    assert cfg.relay.tag == "t1"
    run_pipeline(cfg, tmp_path / "relay", quiet=True)
    assert RelaySession.log == [("open", "t1"), ("replicas", "fake"), ("batch", "classify"),
                                ("batch", "instances"), ("close",)]
    relay, local = run_files(tmp_path / "relay"), run_files(tmp_path / "local")
    assert relay.pop("export/README.md") != local.pop("export/README.md")  # the card quotes the config
    assert relay == local
    with pytest.raises(UserError, match=r"p.yaml:\d+: field 'executor': must be one of local, ray, relay, got 'nowhere'"):
        small_config(tmp_path, text + "executor: nowhere\n")
