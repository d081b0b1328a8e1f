import hashlib
import json

import pytest

from selfinstruct.io.errors import UserError
from selfinstruct.io.shards import StageStore


def test_commit_resume_and_manifest(tmp_path):
    s = StageStore(tmp_path, "bootstrap", "h1")
    s.commit([{"id": "a"}, {"id": "b"}], [{"id": "x", "reason": "too_short"}], counts={"kept": 2})
    s.commit([{"id": "c"}], [], state={"k": 1}, counts={"kept": 1})
    m = json.loads((tmp_path / "bootstrap" / "manifest.json").read_text())
    assert [p["rows"] for p in m["parts"]] == [2, 1] and m["counts"]["kept"] == 3
    for p in m["parts"]:
        data = (tmp_path / "bootstrap" / p["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == p["sha256"]
    again = StageStore(tmp_path, "bootstrap", "h1")
    assert [r["id"] for r in again.rows()] == ["a", "b", "c"]
    assert [r["id"] for r in again.rejects()] == ["x"]
    assert again.state == {"k": 1} and not again.complete
    again.finish()
    assert StageStore(tmp_path, "bootstrap", "h1").complete


def test_leftovers_of_an_interrupted_commit_are_removed(tmp_path):
    s = StageStore(tmp_path, "st", "h")
    s.commit([{"id": 1}])
    d = tmp_path / "st"
    (d / "part-00001.jsonl").write_text('{"id": 2}\n{"id": 3')  # written, manifest not updated: torn
    (d / ".part-00002.jsonl.abc.tmp").write_text("partial")
    again = StageStore(tmp_path, "st", "h")
    assert [r["id"] for r in again.rows()] == [1]
    assert sorted(p.name for p in d.iterdir()) == ["manifest.json", "part-00000.jsonl", "rejects"]
    again.commit([{"id": 2}])
    assert [r["id"] for r in again.rows()] == [1, 2]


def test_changed_config_is_refused_unless_forced(tmp_path):
    StageStore(tmp_path, "st", "old").commit([{"id": 1}])
    with pytest.raises(UserError, match="different configuration"):
        StageStore(tmp_path, "st", "new")
    s = StageStore(tmp_path, "st", "new", force=True)
    assert list(s.rows()) == []
