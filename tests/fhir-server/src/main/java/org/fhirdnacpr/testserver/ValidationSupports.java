package org.fhirdnacpr.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.instance.model.api.IBaseResource;

import java.util.List;

/**
 * Builds the validation support modules shared by the server's {@code $validate} and the
 * offline validator, so both judge instances with the same definitions.
 */
public final class ValidationSupports {

	private ValidationSupports() {}

	/** Our profiles / IG resources as one support module (differential-only is fine: snapshots are generated). */
	public static PrePopulatedValidationSupport prePopulated(FhirContext theContext, List<IBaseResource> theResources) {
		PrePopulatedValidationSupport support = new PrePopulatedValidationSupport(theContext);
		for (IBaseResource resource : theResources) {
			support.addResource(resource);
		}
		return support;
	}

	/**
	 * The offline chain: supplied resources first (so they may override nothing in the core
	 * spec but add to it), then base R4, in-memory terminology, common code systems
	 * (UCUM, BCP-47, mime types ...), and snapshot generation for differential-only profiles.
	 */
	public static ValidationSupportChain offlineChain(
			FhirContext theContext, IValidationSupport theDefaultProfiles, List<IValidationSupport> theSupplied) {
		ValidationSupportChain chain = new ValidationSupportChain();
		for (IValidationSupport supplied : theSupplied) {
			chain.addValidationSupport(supplied);
		}
		chain.addValidationSupport(theDefaultProfiles);
		chain.addValidationSupport(new InMemoryTerminologyServerValidationSupport(theContext));
		chain.addValidationSupport(new CommonCodeSystemsTerminologyService(theContext));
		chain.addValidationSupport(new SnapshotGeneratingValidationSupport(theContext));
		return chain;
	}

	public static DefaultProfileValidationSupport defaultProfiles(FhirContext theContext) {
		return new DefaultProfileValidationSupport(theContext);
	}
}
