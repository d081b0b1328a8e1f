"""The redesigned pipeline reproduces, byte for byte, the runs recorded with the code before it
(commit 8265e4d, see tests/golden/record.py): every stage's shards and rejects, and the export."""
import pytest

from selfinstruct.backends.fake import FakeBackend
from selfinstruct.generate.pipeline import run_pipeline

from .golden.record import data_files, golden_config
from .conftest import ROOT

GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["default", "alpaca"])
@pytest.mark.parametrize("order_seed, cap", [(1, 5), (7, 64)])
def test_reproduces_the_golden_run(tmp_path, name, order_seed, cap):
    run = tmp_path / name
    run_pipeline(golden_config(name), run, quiet=True, backend=FakeBackend(order_seed=order_seed, cap=cap))
    got, want = data_files(run), data_files(GOLDEN / f"run-{name}")
    assert sorted(got) == sorted(want)
    for path in want:
        assert got[path] == want[path], path
