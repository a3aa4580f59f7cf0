"""Profiles the HL7 validator applies without being asked.

* Vital-signs Observations (by LOINC / SNOMED CT code) are checked against the matching R4 core
  vital-signs profile, as the HL7 validator's policy advisor does.
* ImplementationGuide ``global`` profiles apply to every resource of their type.
"""

from __future__ import annotations

from typing import Any

CORE = "http://hl7.org/fhir/StructureDefinition/"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

_VITALS: list[tuple[str, str, frozenset[str]]] = [
    (LOINC, "vitalspanel", frozenset({"85353-1"})),
    (
        LOINC,
        "resprate",
        frozenset({"11291-2", "19840-8", "33438-3", "76170-0", "76171-8", "76172-6", "76270-8", "9279-1"}),
    ),
    (
        LOINC,
        "heartrate",
        frozenset(
            {
                "11328-2",
                "40443-4",
                "55425-3",
                "60978-4",
                "68999-2",
                "69000-8",
                "73795-7",
                "73799-9",
                "76476-1",
                "76477-9",
                "8867-4",
                "8886-4",
                "8889-8",
                "8890-6",
                "8891-4",
                "8892-2",
                "8893-0",
            }
        ),
    ),
    (
        LOINC,
        "oxygensat",
        frozenset(
            {
                "19224-5",
                "20564-1",
                "2708-6",
                "2709-4",
                "2710-2",
                "2713-6",
                "51733-4",
                "59408-5",
                "59417-6",
                "89276-0",
                "97549-0",
            }
        ),
    ),
    (
        LOINC,
        "bodytemp",
        frozenset(
            {
                "60834-9",
                "60835-6",
                "60836-4",
                "60838-0",
                "60955-2",
                "61009-7",
                "75539-7",
                "75987-8",
                "76010-8",
                "76011-6",
                "76278-1",
                "8309-7",
                "8310-5",
                "8328-7",
                "8329-5",
                "8330-3",
                "8331-1",
                "8332-9",
                "8333-7",
                "8334-5",
                "91371-5",
                "98657-0",
                "98663-8",
            }
        ),
    ),
    (LOINC, "bodyheight", frozenset({"3137-7", "3138-5", "8302-2", "8306-3", "8308-9"})),
    (LOINC, "headcircum", frozenset({"8287-5", "9843-4"})),
    (
        LOINC,
        "bodyweight",
        frozenset({"29463-7", "3141-9", "3142-7", "75292-3", "79348-9", "8350-1", "8351-9"}),
    ),
    (LOINC, "bmi", frozenset({"39156-5", "89270-3"})),
    (LOINC, "bp", frozenset({"35094-2", "55284-4", "76534-7", "8459-0", "8480-6", "85354-9"})),
    (SNOMED, "vitalspanel", frozenset({"46680005"})),
    (SNOMED, "resprate", frozenset({"271306003", "271625008", "86290005"})),
    (
        SNOMED,
        "heartrate",
        frozenset(
            {"249043002", "251670001", "271306003", "399017001", "429525003", "429614003", "444981005"}
        ),
    ),
    (SNOMED, "oxygensat", frozenset({"431314004", "442476006"})),
    (
        SNOMED,
        "bodytemp",
        frozenset(
            {
                "1222808002",
                "276885007",
                "300076005",
                "307047009",
                "364246006",
                "386725007",
                "415882003",
                "415929009",
                "415945006",
                "415974002",
                "431598003",
                "698831002",
                "698832009",
                "708499008",
            }
        ),
    ),
    (
        SNOMED,
        "bodyheight",
        frozenset(
            {"1153637007", "1162392001", "1162417005", "1162418000", "1162419008", "1230278008", "50373000"}
        ),
    ),
    (SNOMED, "headcircum", frozenset({"1269262007", "169876006", "363811000", "363812007"})),
    (
        SNOMED,
        "bodyweight",
        frozenset({"1162415002", "1162416001", "424927000", "425024002", "735395000", "784399000"}),
    ),
    (SNOMED, "bmi", frozenset({"60621009"})),
    (
        SNOMED,
        "bp",
        frozenset(
            {
                "163033001",
                "163035008",
                "251076008",
                "271649006",
                "271650006",
                "386534000",
                "386536003",
                "399304008",
                "407554009",
                "407556006",
                "716579001",
            }
        ),
    ),
]


def implied_profiles(resource: dict[str, Any]) -> list[str]:
    """Core vital-signs profile implied by an Observation's code (first match, LOINC before SNOMED)."""
    if resource.get("resourceType") != "Observation":
        return []
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        return []
    pairs = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
    for system, name, codes in _VITALS:
        if any(s == system and c in codes for s, c in pairs):
            return [CORE + name]
    return []


def global_profiles(implementation_guides: list[dict[str, Any]], resource_type: str) -> list[str]:
    return [
        g["profile"]
        for ig in implementation_guides
        for g in ig.get("global", ())
        if isinstance(g, dict) and g.get("type") == resource_type and isinstance(g.get("profile"), str)
    ]
