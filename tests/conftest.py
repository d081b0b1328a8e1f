import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SHARED_SEEDS = SHARED / "self_instruct_seed_tasks.jsonl"
PROJECT_SEEDS = ROOT / "seed_tasks" / "seed_tasks.jsonl"


@pytest.fixture
def shared_seeds():
    if not SHARED_SEEDS.exists():
        pytest.skip("../shared/data/self_instruct_seed_tasks.jsonl not available")
    return SHARED_SEEDS


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
