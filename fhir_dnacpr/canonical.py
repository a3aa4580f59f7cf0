"""Canonical URLs: our profiles, extensions and code systems, and the identifier systems we use.

One place for every URL, so the builder, the parser, the profiles and the validator cannot drift apart.
"""

from __future__ import annotations

BASE = "https://fhir-dnacpr.github.io/fhir"
PACKAGE_NAME = "fhir-dnacpr.profiles"

# Profiles (StructureDefinitions in profiles/)
PROFILE_DNACPR_CONSENT = f"{BASE}/StructureDefinition/DnacprDecision"
PROFILE_ACP_CAREPLAN = f"{BASE}/StructureDefinition/AdvanceCarePlan"
PROFILE_DNACPR_PATIENT = f"{BASE}/StructureDefinition/DnacprPatient"
"""UK Core Patient + our NHS number Modulus 11 invariant."""
PROFILE_DNACPR_PRACTITIONER = f"{BASE}/StructureDefinition/DnacprPractitioner"
"""UK Core Practitioner + GMC/NMC/HCPC number format invariants."""
PROFILE_DNACPR_ORGANIZATION = f"{BASE}/StructureDefinition/DnacprOrganization"
"""UK Core Organization + ODS code format invariant."""

# UK Core profiles our resources claim
UKCORE = "https://fhir.hl7.org.uk/StructureDefinition"
PROFILE_UKCORE_PATIENT = f"{UKCORE}/UKCore-Patient"
PROFILE_UKCORE_PRACTITIONER = f"{UKCORE}/UKCore-Practitioner"
PROFILE_UKCORE_ORGANIZATION = f"{UKCORE}/UKCore-Organization"
PROFILE_UKCORE_RELATEDPERSON = f"{UKCORE}/UKCore-RelatedPerson"
PROFILE_UKCORE_DOCUMENTREFERENCE = f"{UKCORE}/UKCore-DocumentReference"
PROFILE_UKCORE_PROVENANCE = f"{UKCORE}/UKCore-Provenance"

# Our extensions: what R4 Consent/CarePlan have no element for
EXT_REVIEW_DATE = f"{BASE}/StructureDefinition/dnacpr-review-date"
"""Complex: ``date`` (valueDate) or ``indefinite`` (valueBoolean true). Review is not expiry."""
EXT_CLINICAL_RATIONALE = f"{BASE}/StructureDefinition/dnacpr-clinical-rationale"
EXT_MENTAL_CAPACITY = f"{BASE}/StructureDefinition/dnacpr-mental-capacity"
EXT_REASON_NOT_DISCUSSED = f"{BASE}/StructureDefinition/dnacpr-reason-not-discussed"
EXT_SENIOR_ENDORSEMENT = f"{BASE}/StructureDefinition/dnacpr-senior-endorsement"
"""Complex: ``endorser`` (Reference(Practitioner)) and ``dateTime``."""
EXT_CPR_DECISION_FINDING = f"{BASE}/StructureDefinition/dnacpr-decision-finding"
"""valueCodeableConcept: SNOMED 450475007 / 450476008, kept for EPaCCS-style consumers."""
EXT_FORM_TYPE = f"{BASE}/StructureDefinition/dnacpr-form-type"
EXT_DECISION_MAKER_IS_SENIOR = f"{BASE}/StructureDefinition/dnacpr-decision-maker-is-senior"
EXT_RESPECT_CARE_PRIORITY = f"{BASE}/StructureDefinition/respect-care-priority"
"""Complex: ``score`` (valueInteger 0-100: 0 prioritise sustaining life, 100 comfort) and ``text``."""
EXT_RELATED_PARTY_ROLE = f"{BASE}/StructureDefinition/related-party-role"
EXT_PREFERRED_PLACE_OF_DEATH = f"{BASE}/StructureDefinition/preferred-place-of-death"
EXT_PREFERRED_PLACE_OF_CARE = f"{BASE}/StructureDefinition/preferred-place-of-care"
EXT_ADRT = f"{BASE}/StructureDefinition/advance-decision-to-refuse-treatment"
"""Complex: ``present`` (valueBoolean) and ``location`` (valueString: where the ADRT is kept)."""

# Our code systems and value sets
CS_MENTAL_CAPACITY = f"{BASE}/CodeSystem/mental-capacity"
CS_FORM_TYPE = f"{BASE}/CodeSystem/dnacpr-form-type"
CS_RELATED_PARTY_ROLE = f"{BASE}/CodeSystem/related-party-role"
CS_RECORD_STATUS = f"{BASE}/CodeSystem/source-record-status"
VS_CPR_DECISION = f"{BASE}/ValueSet/cpr-decision"
VS_MENTAL_CAPACITY = f"{BASE}/ValueSet/mental-capacity"
VS_FORM_TYPE = f"{BASE}/ValueSet/dnacpr-form-type"
VS_PREFERRED_PLACE_OF_DEATH = f"{BASE}/ValueSet/preferred-place-of-death"
VS_RELATED_PARTY_ROLE = f"{BASE}/ValueSet/related-party-role"

# Policy basis for ppc-1 (Consent.policy.uri): the MCA 2005 and the joint BMA/RC(UK)/RCN guidance
POLICY_MCA_2005 = "https://www.legislation.gov.uk/ukpga/2005/9/contents"
POLICY_RCUK_DNACPR = "https://www.resus.org.uk/library/additional-guidance/guidance-resuscitation"

# Identifier systems
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS_ORGANIZATION = "https://fhir.nhs.uk/Id/ods-organization-code"
GMC_NUMBER = "https://fhir.hl7.org.uk/Id/gmc-number"
NMC_NUMBER = "https://fhir.hl7.org.uk/Id/nmc-number"
HCPC_NUMBER = "https://fhir.hl7.org.uk/Id/hcpc-number"
REGISTRATION_SYSTEMS = {"gmc": GMC_NUMBER, "nmc": NMC_NUMBER, "hcpc": HCPC_NUMBER}

# Source-system provenance
TOOL_DEVICE_NAME = "fhir-dnacpr"
SOURCE_FILE_SHA256 = f"{BASE}/Id/source-file-sha256"
