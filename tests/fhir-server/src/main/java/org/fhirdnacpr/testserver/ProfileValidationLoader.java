package org.fhirdnacpr.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.validation.JpaValidationSupportChain;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.IInstanceValidatorModule;
import ca.uhn.fhir.validation.ValidationOptions;
import jakarta.annotation.PostConstruct;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.StructureDefinition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Configuration;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Puts our profiles (and extra IG folders) at the front of the JPA validation support chain
 * used by {@code $validate}. They live only in memory, never in the database, so writes
 * stay fast and searches are not polluted by conformance resources.
 *
 * <p>After start-up a background warm-up (property {@code testserver.warm-up}, default true)
 * validates one minimal instance per profile from the profiles folder, so the first real
 * {@code $validate} does not pay many seconds of validator initialisation and snapshot generation.
 */
@Configuration
public class ProfileValidationLoader {

	private static final Logger ourLog = LoggerFactory.getLogger(ProfileValidationLoader.class);

	@Autowired
	private JpaValidationSupportChain myChain;

	@Autowired
	private FhirContext myFhirContext;

	@Value("${testserver.warm-up:true}")
	private boolean myWarmUpEnabled;

	@Autowired
	@Qualifier("myInstanceValidator")
	private IInstanceValidatorModule myInstanceValidator;

	private int myLoadedCount;
	private List<Path> myLocations = List.of();
	private final List<StructureDefinition> myOwnProfiles = new ArrayList<>();

	@PostConstruct
	public void load() {
		myLocations = ProfileLocations.all();
		ConformanceResources.Loaded loaded = ConformanceResources.load(myFhirContext, myLocations);
		ConformanceResources.logProblems(loaded);
		PrePopulatedValidationSupport support = ValidationSupports.prePopulated(myFhirContext, loaded.resources());
		myChain.addValidationSupport(0, support);
		myLoadedCount = loaded.resources().size();
		Path profilesDir = ProfileLocations.profilesDir();
		if (profilesDir != null) {
			for (IBaseResource resource :
					ConformanceResources.load(myFhirContext, List.of(profilesDir)).resources()) {
				if (resource instanceof StructureDefinition sd
						&& sd.getKind() == StructureDefinition.StructureDefinitionKind.RESOURCE
						&& !sd.getAbstract()) {
					myOwnProfiles.add(sd);
				}
			}
		}
		ourLog.info("Loaded {} conformance resources from {}", myLoadedCount, myLocations);
	}

	/**
	 * Called once the server answers requests (not from a start-up event: HAPI's own start-up
	 * listeners would compete with it for the CPU and for the validator's locks).
	 */
	public void warmUpInBackground() {
		if (!myWarmUpEnabled) {
			return;
		}
		Thread thread = new Thread(this::warmUp, "validator-warm-up");
		thread.setDaemon(true);
		thread.setPriority(Thread.MIN_PRIORITY);
		thread.start();
	}

	private void warmUp() {
		long started = System.nanoTime();
		FhirValidator validator = myFhirContext.newValidator();
		validator.registerValidatorModule(myInstanceValidator);
		List<ValidationOptions> runs = new ArrayList<>();
		runs.add(new ValidationOptions());
		for (StructureDefinition profile : myOwnProfiles) {
			runs.add(new ValidationOptions().addProfile(profile.getUrl()));
		}
		List<String> types = new ArrayList<>();
		types.add("Consent");
		myOwnProfiles.forEach(p -> types.add(p.getType()));
		for (int i = 0; i < runs.size(); i++) {
			try {
				validator.validateWithResult("{\"resourceType\":\"" + types.get(i) + "\"}", runs.get(i));
			} catch (RuntimeException e) {
				ourLog.warn("Validator warm-up failed for {}: {}", runs.get(i).getProfiles(), e.getMessage());
			}
		}
		System.out.printf(
				"fhir-test-server validator warm-up done: %d profiles in %.1fs%n",
				myOwnProfiles.size(), (System.nanoTime() - started) / 1e9);
		System.out.flush();
	}

	public int getLoadedCount() {
		return myLoadedCount;
	}

	public List<Path> getLocations() {
		return myLocations;
	}
}
