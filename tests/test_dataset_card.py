"""The export folder is a Hugging Face dataset repository, whose card the user may edit."""
import hashlib
import json

import pytest

from selfinstruct.io.shards import StageStore

pytestmark = pytest.mark.timeout(180)


# ----------------------------------------------------------------------------------- the store's user files

def test_user_files_are_kept_and_not_hashed(tmp_path):
    store = StageStore(tmp_path, "export", "h1", keep=("README.md",))
    (store.dir / "README.md").write_text("mine")
    (store.dir / "train.x.jsonl").write_text("{}\n")
    store = StageStore(tmp_path, "export", "h1", keep=("README.md",))  # not complete: leftovers are removed
    assert sorted(p.name for p in store.dir.iterdir()) == ["README.md", "manifest.json"]
    (store.dir / "train.x.jsonl").write_text("{}\n")
    store.finish_files(["train.x.jsonl", "README.md"], store.totals())
    assert list(store.manifest["file_sha256"]) == ["train.x.jsonl"]
    (store.dir / "README.md").write_text("edited")
    assert StageStore(tmp_path, "export", "h1", keep=("README.md",)).complete  # verified, not refused
    StageStore(tmp_path, "export", "h2", force=True, keep=("README.md",))  # another config, forced
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["README.md", "manifest.json"]
    assert (tmp_path / "export" / "README.md").read_text() == "edited"
    StageStore(tmp_path, "export", "h3", force=True)  # a store that keeps nothing removes it
    assert [p.name for p in (tmp_path / "export").iterdir()] == ["manifest.json"]


def test_run_json_records_the_seed_files_sha256(tmp_path):
    from selfinstruct.backends.fake import FakeBackend
    from selfinstruct.generate.config import load_config
    from selfinstruct.generate.pipeline import run_pipeline

    from .conftest import PROJECT_SEEDS

    p = tmp_path / "p.yaml"
    p.write_text(f"seed_tasks: {PROJECT_SEEDS}\nstages: [bootstrap]\nbootstrap: {{num_instructions: 3}}\n")
    run_pipeline(load_config(p), tmp_path / "run", quiet=True, backend=FakeBackend())
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["seed_sha256"] == hashlib.sha256(PROJECT_SEEDS.read_bytes()).hexdigest()
