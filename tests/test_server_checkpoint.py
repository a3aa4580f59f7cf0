"""The push checkpoint: what a resumed push may skip, and when it must start afresh."""

from __future__ import annotations

from pathlib import Path

from fhir_dnacpr.server.checkpoint import CHECKPOINT_FILE, Checkpoint


def test_acknowledged_bundles_survive_a_restart(tmp_path: Path) -> None:
    cp = Checkpoint.open(tmp_path, "http://s/fhir", "transaction")
    cp.record(1, "d1", {"sent": 3, "created": 3})
    cp.record(2, "d2", {"sent": 2, "failed": 1, "unchanged": 1})
    cp.close()
    again = Checkpoint.open(tmp_path, "http://s/fhir", "transaction")
    assert again.resumed
    assert again.is_acknowledged("d1") and again.is_acknowledged("d2") and not again.is_acknowledged("d3")
    assert again.acknowledged["d2"] == {"sent": 2, "created": 0, "updated": 0, "unchanged": 1, "failed": 1}
    again.close()


def test_another_server_or_mode_starts_afresh(tmp_path: Path) -> None:
    cp = Checkpoint.open(tmp_path, "http://s/fhir", "transaction")
    cp.record(1, "d1", {"sent": 1})
    cp.close()
    other = Checkpoint.open(tmp_path, "http://other/fhir", "transaction")
    assert not other.resumed and not other.acknowledged
    other.close()
    batch = Checkpoint.open(tmp_path, "http://other/fhir", "batch")
    assert not batch.resumed
    batch.close()


def test_restart_without_resume_forgets(tmp_path: Path) -> None:
    cp = Checkpoint.open(tmp_path, "http://s/fhir", "batch")
    cp.record(1, "d1", {"sent": 1})
    cp.close()
    fresh = Checkpoint.open(tmp_path, "http://s/fhir", "batch", resume=False)
    assert not fresh.acknowledged
    fresh.close()
    assert not Checkpoint.open(tmp_path, "http://s/fhir", "batch").acknowledged


def test_a_line_torn_by_a_crash_is_ignored_and_closed(tmp_path: Path) -> None:
    cp = Checkpoint.open(tmp_path, "http://s/fhir", "transaction")
    cp.record(1, "d1", {"sent": 1})
    cp.close()
    with (tmp_path / CHECKPOINT_FILE).open("ab") as f:
        f.write(b'{"bundle": 2, "digest": "d2", "se')
    resumed = Checkpoint.open(tmp_path, "http://s/fhir", "transaction")
    assert set(resumed.acknowledged) == {"d1"}
    resumed.record(3, "d3", {"sent": 1})
    resumed.close()
    assert set(Checkpoint.open(tmp_path, "http://s/fhir", "transaction").acknowledged) == {"d1", "d3"}
