"""Records the golden runs that tests/test_golden.py compares against, byte for byte.

They were recorded with the code of commit 8265e4d (before the architecture redesign, issue 11) and the
deterministic fake backend (selfinstruct/backends/fake.py copied into that tree):

    git worktree add /tmp/old 8265e4d && cp selfinstruct/backends/fake.py /tmp/old/selfinstruct/backends/
    PYTHONPATH=/tmp/old python tests/golden/record.py tests/golden

Only data files are kept (stage parts, rejects, export files): manifests carry hashes and the format
version, which the redesign changed on purpose. The export's dataset card (README.md, added after these
runs were recorded) is not a data file either: it records versions and hashes, like the manifests, and
tests/test_dataset_card.py checks it."""
import shutil
import sys
from pathlib import Path

from selfinstruct.backends.fake import FakeBackend

try:  # the layout before and after the redesign
    from selfinstruct.config import load_config
    from selfinstruct.pipeline import run_pipeline
except ImportError:
    from selfinstruct.generate.config import load_config
    from selfinstruct.generate.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[2]


def golden_config(name: str):
    cfg = load_config(ROOT / "pipelines" / f"{name}.yaml")
    cfg.seed_tasks = str(ROOT / "seed_tasks" / "seed_tasks.jsonl")
    for st in (cfg.bootstrap, cfg.alpaca):
        st.num_instructions, st.requests_per_round, st.overlap_depth = 40, 4, 3
    cfg.classify.batch_size = cfg.instances.batch_size = 8
    return cfg


CARD = "export/README.md"  # the dataset card: versions and hashes, not data (see above)


def data_files(run: Path) -> dict[str, bytes]:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != "manifest.json" and p.name != "run.json" and p.parent != run
            and p.relative_to(run).as_posix() != CARD}


def record(out: Path) -> None:
    for name in ("default", "alpaca"):
        run = out / f"run-{name}"
        if run.exists():
            shutil.rmtree(run)
        run_pipeline(golden_config(name), run, quiet=True, backend=FakeBackend(order_seed=1, cap=5))
        for p in run.rglob("*"):
            if p.is_file() and (p.name in ("manifest.json", "run.json") or p.parent == run):
                p.unlink()
        print(name, len(data_files(run)), "files")


if __name__ == "__main__":
    record(Path(sys.argv[1]))
