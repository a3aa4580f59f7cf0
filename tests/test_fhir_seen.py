"""WrittenSet: the on-disk "already written?" map behaves like a dict fed one batch at a time."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.fhir.seen import WrittenSet

REFS = st.sampled_from([f"Patient/{n}" for n in range(12)] + ["Practitioner/a", "Organization/b"])
DIGESTS = st.integers(-(2**63), 2**63 - 1)


@given(st.lists(st.dictionaries(REFS, DIGESTS, max_size=8), max_size=12))
def test_settle_returns_what_earlier_batches_wrote(batches: list[dict[str, int]]) -> None:
    written = WrittenSet()
    model: dict[str, int] = {}
    try:
        for batch in batches:
            assert written.settle(batch) == {ref: model[ref] for ref in batch if ref in model}
            for ref, digest in batch.items():
                model.setdefault(ref, digest)
        assert len(written) == len(model)
    finally:
        written.close()


def test_the_temporary_file_is_removed_on_close(tmp_path: Path) -> None:
    written = WrittenSet(tmp_path)
    written.settle({"Patient/1": 1})
    assert any(tmp_path.iterdir())
    written.close()
    assert not any(tmp_path.iterdir())
