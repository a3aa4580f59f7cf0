"""Resource ids: keyed, stable, opaque (the NHS number cannot be recovered without the key)."""

from __future__ import annotations

import hashlib
import hmac
import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import nhs_numbers

from fhir_dnacpr.fhir.ids import DEFAULT_EXAMPLE_KEY, ID_KEY_ENV, IdFactory
from fhir_dnacpr.terminology.identifiers import nhs_number_check_digit

R4_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")
NHS = "9434765919"


def _valid_nhs_numbers_near(nhs: str, count: int) -> list[str]:
    start = int(nhs[:9]) - count // 2
    found = []
    for first in range(start, start + count):
        first_nine = f"{first:09d}"
        check = nhs_number_check_digit(first_nine)
        if check is not None:
            found.append(first_nine + str(check))
    return found


def test_id_is_hmac_sha256_of_the_json_encoded_key_truncated_to_40_hex() -> None:
    for key in (b"k", b"x" * 64, b"long key " * 20):  # shorter than, equal to, longer than a block
        expected = hmac.new(key, orjson.dumps(["Patient", NHS]), hashlib.sha256).hexdigest()[:40]
        assert IdFactory(key).id_for("Patient", NHS) == expected


@given(nhs_numbers())
def test_ids_are_stable_and_fit_the_r4_id_pattern(nhs: str) -> None:
    first = IdFactory(b"deployment-key").id_for("Patient", nhs)
    again = IdFactory(b"deployment-key").id_for("Patient", nhs)
    assert first == again
    assert R4_ID.match(first) and len(first) == 40


@given(nhs_numbers())
def test_different_keys_give_different_ids(nhs: str) -> None:
    assert IdFactory(b"key-a").id_for("Patient", nhs) != IdFactory(b"key-b").id_for("Patient", nhs)


def test_the_nhs_number_cannot_be_recovered_by_enumerating_unkeyed_hashes() -> None:
    patient_id = IdFactory(b"a secret only the deployment knows").id_for("Patient", NHS)
    candidates = _valid_nhs_numbers_near(NHS, 2000)
    assert NHS in candidates

    def unkeyed_hashes(nhs: str) -> set[str]:
        forms = (nhs, f"Patient|{nhs}", f"Patient/{nhs}", orjson.dumps(["Patient", nhs]).decode())
        hashes = set()
        for form in forms:
            for algorithm in (hashlib.sha256, hashlib.sha1, hashlib.md5):
                digest = algorithm(form.encode()).hexdigest()
                hashes.update((digest, digest[:40]))
        return hashes

    # What an attacker without the key can do: hash every candidate. Nothing matches.
    assert not any(patient_id in unkeyed_hashes(nhs) for nhs in candidates)
    assert patient_id != hashlib.sha256(NHS.encode()).hexdigest()[:40]
    # With the key the same enumeration finds it at once: the key is the whole secret.
    keyed = IdFactory(b"a secret only the deployment knows")
    assert [nhs for nhs in candidates if keyed.id_for("Patient", nhs) == patient_id] == [NHS]


def test_key_parts_cannot_run_into_each_other() -> None:
    factory = IdFactory(b"k")
    assert factory.id_for("Practitioner", "a|b", "c") != factory.id_for("Practitioner", "a", "b|c")
    assert factory.id_for("Practitioner", "ab", "c") != factory.id_for("Practitioner", "a", "bc")
    assert factory.id_for("Organization", None) != factory.id_for("Organization", "None")
    assert factory.id_for("Patient", NHS) != factory.id_for("RelatedPerson", NHS)


key_parts = st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["", "None", "a|b", "\u00e9\u2603"]))


@given(
    st.binary(min_size=1, max_size=150),
    st.sampled_from(["Patient", "Consent", "Condition", "RelatedPerson"]),
    st.lists(key_parts, max_size=6),
)
def test_every_id_is_the_plain_hmac_of_its_key_parts(key: bytes, resource_type: str, parts: list) -> None:
    """The prepared-state HMAC equals the library's, for any key length and any parts (twice over:
    the prepared states must not be consumed by a call)."""
    factory = IdFactory(key)
    expected = hmac.new(key, orjson.dumps([resource_type, *parts]), hashlib.sha256).hexdigest()[:40]
    assert factory.id_for(resource_type, *parts) == expected
    assert factory.id_for(resource_type, *parts) == expected


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ID_KEY_ENV, "from-the-environment")
    factory = IdFactory.from_env()
    assert not factory.uses_example_key
    assert factory.id_for("Patient", NHS) == IdFactory(b"from-the-environment").id_for("Patient", NHS)


def test_without_a_key_the_example_key_is_used_and_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ID_KEY_ENV, raising=False)
    factory = IdFactory.from_env()
    assert factory.uses_example_key
    assert b"INSECURE" in DEFAULT_EXAMPLE_KEY
    with pytest.raises(KeyError):
        IdFactory.from_env(allow_example_key=False)


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError):
        IdFactory(b"")
