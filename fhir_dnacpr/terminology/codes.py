"""The terminology codes fhir-dnacpr emits and reads, with where each comes from.

SNOMED CT displays differ between releases; the displays here are the ones our sources print
(../shared/reference/dnacpr-acp-fhir.md §8) and are informative only — matching is on system + code.
"""

from __future__ import annotations

from typing import NamedTuple

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_CATEGORY = "http://terminology.hl7.org/CodeSystem/consentcategorycodes"
CONSENT_PROVISION_TYPE = "http://hl7.org/fhir/consent-provision-type"
V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
PROVENANCE_ENTITY_ROLE = "http://hl7.org/fhir/provenance-entity-role"
EOL_CPR_ROLE = "https://fhir.nhs.uk/STU3/CodeSystem/EOL-CPRStatusEncounterRoleType-1"


class Code(NamedTuple):
    system: str
    code: str
    display: str

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


# Consent framing of a DNACPR decision
SCOPE_ADR = Code(CONSENT_SCOPE, "adr", "Advanced Care Directive")
CATEGORY_DNR = Code(CONSENT_CATEGORY, "dnr", "Do Not Resuscitate")
CATEGORY_ACD = Code(CONSENT_CATEGORY, "acd", "Advance Directive")
CATEGORY_RESPECT_FORM = Code(
    SNOMED,
    "1382601000000107",
    "ReSPECT (Recommended Summary Plan for Emergency Care and Treatment) form",
)
CPR_PROCEDURE = Code(SNOMED, "89666000", "Cardiopulmonary resuscitation")

# UK CPR decision findings (SCCI1580 #44)
FOR_CPR = Code(SNOMED, "450475007", "For attempted cardiopulmonary resuscitation")
NOT_FOR_CPR = Code(SNOMED, "450476008", "Not for attempted cardiopulmonary resuscitation")

# Capacity and best interests (MCA 2005)
BEST_INTERESTS = Code(
    SNOMED, "765141000000105", "Best interest decision made on behalf of patient (MCA 2005)"
)
IMCA_INSTRUCTED = Code(SNOMED, "352631000000105", "Independent mental capacity advocate instructed")
LPA_WELFARE = Code(
    SNOMED,
    "816361000000101",
    "Has appointed person with personal welfare lasting power of attorney (MCA 2005)",
)
ADRT = Code(SNOMED, "816301000000100", "Has advance decision to refuse treatment (MCA 2005)")

# Advance care plan
ACP_CATEGORY = Code(SNOMED, "736366004", "Advance care plan")
ACP_PROCEDURE = Code(SNOMED, "713603004", "Advance care planning")

# Related people
HPOWATT = Code(V3_ROLE_CODE, "HPOWATT", "healthcare power of attorney")

# Preferred place of death (NHS EoL ValueSet EOL-PreferredPlaceDeath-Code-1, displays as there)
PREFERRED_PLACE_OF_DEATH: dict[str, Code] = {
    c.code: c
    for c in (
        Code(
            SNOMED,
            "517131000000106",
            "Preferred place of death: discussion not appropriate (finding)",
        ),
        Code(
            SNOMED,
            "766391000000108",
            "Preferred place of death: patient declined discussion (finding)",
        ),
        Code(
            SNOMED,
            "517111000000103",
            "Preferred place of death: patient unable to express preference (finding)",
        ),
        Code(SNOMED, "517161000000101", "Preferred place of death: patient undecided (finding)"),
        Code(SNOMED, "710571000000101", "Preferred place of death: care home (finding)"),
        Code(SNOMED, "89751000000108", "Preferred place of death: community hospital (finding)"),
        Code(SNOMED, "110481000000108", "Preferred place of death: home (finding)"),
        Code(SNOMED, "108401000000102", "Preferred place of death: hospice (finding)"),
        Code(SNOMED, "931401000000103", "Preferred place of death: hospice community lodge (finding)"),
        Code(SNOMED, "109401000000108", "Preferred place of death: hospital (finding)"),
        Code(
            SNOMED,
            "518741000000100",
            "Preferred place of death: learning disability unit (finding)",
        ),
        Code(SNOMED, "518771000000106", "Preferred place of death: mental health unit (finding)"),
        Code(SNOMED, "1060941000000102", "Preferred place of death: no preference (finding)"),
        Code(SNOMED, "89761000000106", "Preferred place of death: nursing home (finding)"),
        Code(SNOMED, "512071000000106", "Preferred place of death: residential home (finding)"),
        Code(
            SNOMED,
            "819211000000102",
            "Preferred place of death: usual place of residence (finding)",
        ),
    )
}
