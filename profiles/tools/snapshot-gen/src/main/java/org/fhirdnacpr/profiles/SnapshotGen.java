package org.fhirdnacpr.profiles;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.parser.DataFormatException;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.parser.LenientErrorHandler;
import ca.uhn.fhir.parser.StrictErrorHandler;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationOptions;
import ca.uhn.fhir.validation.ValidationResult;
import ca.uhn.hapi.converters.canonical.VersionCanonicalizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.common.hapi.validation.validator.ProfileKnowledgeWorkerR5;
import org.hl7.fhir.common.hapi.validation.validator.WorkerContextValidationSupportAdapter;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.ElementDefinition;
import org.hl7.fhir.r4.model.StructureDefinition;
import org.hl7.fhir.r5.conformance.profile.ProfileUtilities;
import org.hl7.fhir.utilities.validation.ValidationMessage;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Snapshots for our differential StructureDefinitions, and a HAPI verdict for each example.
 *
 * <pre>
 *   snapshot OUT_DIR OUR_DIR [CONTEXT_DIR...]
 *       every StructureDefinition in OUR_DIR (top level) gets a snapshot from HL7's ProfileUtilities;
 *       the result is written to OUT_DIR under the same file name. Bases (R4 core, UK Core from the
 *       CONTEXT_DIRs) get snapshots first, in dependency order. Generator messages go to stderr; exit 1
 *       if any is an error.
 *   validate REPORT_JSON MANIFEST_JSON OUR_DIR [CONTEXT_DIR...]
 *       validates every manifest entry against its profile with FhirInstanceValidator (offline: no
 *       terminology server) and writes [{file, profile, errors[], warnings[]}] to REPORT_JSON.
 * </pre>
 */
public final class SnapshotGen {

	private static final FhirContext R4 = FhirContext.forR4Cached();
	private static final Set<String> CONFORMANCE = Set.of("StructureDefinition", "ValueSet", "CodeSystem");
	private static final Pattern JSON_TYPE = Pattern.compile("\"resourceType\"\\s*:\\s*\"([A-Za-z]+)\"");
	private static final Pattern XML_ROOT = Pattern.compile("<([A-Za-z]+)[^>]*xmlns=\"http://hl7.org/fhir\"");

	private SnapshotGen() {}

	public static void main(String[] args) throws IOException {
		if (args.length >= 3 && args[0].equals("snapshot")) {
			System.exit(snapshot(Path.of(args[1]), Path.of(args[2]), contextDirs(args, 3)));
		} else if (args.length >= 4 && args[0].equals("validate")) {
			System.exit(validate(Path.of(args[1]), Path.of(args[2]), Path.of(args[3]), contextDirs(args, 4)));
		}
		System.err.println("usage: snapshot OUT_DIR OUR_DIR [CONTEXT_DIR...] | "
				+ "validate REPORT MANIFEST OUR_DIR [CONTEXT_DIR...]");
		System.exit(2);
	}

	private static List<Path> contextDirs(String[] args, int from) {
		List<Path> dirs = new ArrayList<>();
		for (int i = from; i < args.length; i++) {
			dirs.add(Path.of(args[i]));
		}
		return dirs;
	}

	// ---- snapshot -------------------------------------------------------------------------------

	private static int snapshot(Path outDir, Path ourDir, List<Path> contextDirs) throws IOException {
		Map<Path, IBaseResource> ours = readConformance(ourDir, false);
		PrePopulatedValidationSupport known = new PrePopulatedValidationSupport(R4);
		Map<String, StructureDefinition> byUrl = new LinkedHashMap<>();
		for (Path dir : contextDirs) {
			for (IBaseResource resource : readConformance(dir, true).values()) {
				register(known, byUrl, resource);
			}
		}
		for (IBaseResource resource : ours.values()) {
			if (resource instanceof StructureDefinition sd) {
				sd.setSnapshot(null); // ours are always regenerated from the differential
			}
			register(known, byUrl, resource);
		}
		ValidationSupportChain chain = new ValidationSupportChain(
				ValidationSupportChain.CacheConfiguration.disabled(),
				known,
				new DefaultProfileValidationSupport(R4),
				new InMemoryTerminologyServerValidationSupport(R4),
				new CommonCodeSystemsTerminologyService(R4));
		Generator generator = new Generator(chain, known, byUrl);

		Files.createDirectories(outDir);
		IParser json = R4.newJsonParser().setPrettyPrint(true);
		for (Map.Entry<Path, IBaseResource> entry : ours.entrySet()) {
			if (entry.getValue() instanceof StructureDefinition sd) {
				StructureDefinition done = generator.ensure(sd.getUrl());
				Files.writeString(
						outDir.resolve(entry.getKey().getFileName()), json.encodeResourceToString(done));
			}
		}
		return generator.errors == 0 ? 0 : 1;
	}

	private static void register(
			PrePopulatedValidationSupport known, Map<String, StructureDefinition> byUrl, IBaseResource resource) {
		known.addResource(resource);
		if (resource instanceof StructureDefinition sd) {
			byUrl.put(sd.getUrl(), sd);
		}
	}

	/** Generates snapshots depth first: a base, and the extensions a profile uses, before the profile. */
	private static final class Generator {
		private final IValidationSupport chain;
		private final PrePopulatedValidationSupport known;
		private final Map<String, StructureDefinition> byUrl;
		private final VersionCanonicalizer canonicalizer = new VersionCanonicalizer(R4);
		private final Set<String> inProgress = new HashSet<>();
		int errors;

		Generator(IValidationSupport chain, PrePopulatedValidationSupport known, Map<String, StructureDefinition> byUrl) {
			this.chain = chain;
			this.known = known;
			this.byUrl = byUrl;
		}

		StructureDefinition ensure(String url) {
			StructureDefinition sd = byUrl.get(url);
			if (sd == null || sd.hasSnapshot() || !inProgress.add(url)) {
				return sd; // core definitions (already have snapshots), unknown, or a cycle
			}
			ensure(sd.getBaseDefinition());
			for (ElementDefinition element : sd.getDifferential().getElement()) {
				for (ElementDefinition.TypeRefComponent type : element.getType()) {
					type.getProfile().forEach(p -> ensure(p.getValue()));
				}
			}
			org.hl7.fhir.r5.model.StructureDefinition input = canonicalizer.structureDefinitionToCanonical(sd);
			WorkerContextValidationSupportAdapter context = new WorkerContextValidationSupportAdapter(chain);
			org.hl7.fhir.r5.model.StructureDefinition base =
					context.fetchResource(org.hl7.fhir.r5.model.StructureDefinition.class, input.getBaseDefinition());
			if (base == null) {
				System.err.println("ERROR " + url + ": unknown base " + input.getBaseDefinition());
				errors++;
				return sd;
			}
			List<ValidationMessage> messages = new ArrayList<>();
			ProfileUtilities utilities = new ProfileUtilities(context, messages, new ProfileKnowledgeWorkerR5(R4));
			utilities.generateSnapshot(base, input, url, null, input.getName());
			for (ValidationMessage message : messages) {
				boolean error = message.getLevel() == ValidationMessage.IssueSeverity.ERROR
						|| message.getLevel() == ValidationMessage.IssueSeverity.FATAL;
				errors += error ? 1 : 0;
				System.err.println(message.getLevel() + " " + url + " " + message.getLocation() + ": "
						+ message.getMessage());
			}
			StructureDefinition result = (StructureDefinition) canonicalizer.structureDefinitionFromCanonical(input);
			byUrl.put(url, result);
			known.addResource(result); // replaces the differential-only copy for profiles built on this one
			return result;
		}
	}

	// ---- validate -------------------------------------------------------------------------------

	private static int validate(Path report, Path manifest, Path ourDir, List<Path> contextDirs) throws IOException {
		PrePopulatedValidationSupport known = new PrePopulatedValidationSupport(R4);
		for (Path dir : contextDirs) {
			readConformance(dir, true).values().forEach(known::addResource);
		}
		readConformance(ourDir, false).values().forEach(known::addResource);
		ValidationSupportChain chain = new ValidationSupportChain(
				known,
				new DefaultProfileValidationSupport(R4),
				new InMemoryTerminologyServerValidationSupport(R4),
				new CommonCodeSystemsTerminologyService(R4),
				new SnapshotGeneratingValidationSupport(R4));
		FhirValidator validator = R4.newValidator().registerValidatorModule(new FhirInstanceValidator(chain));

		ObjectMapper mapper = new ObjectMapper();
		ArrayNode out = mapper.createArrayNode();
		Path examplesDir = manifest.getParent();
		for (JsonNode entry : mapper.readTree(manifest.toFile()).get("examples")) {
			String file = entry.get("file").asText();
			String profile = entry.get("profile").asText();
			String text = Files.readString(examplesDir.resolve(file), StandardCharsets.UTF_8);
			ValidationResult result = validator.validateWithResult(text, new ValidationOptions().addProfile(profile));
			ObjectNode item = out.addObject().put("file", file).put("profile", profile);
			ArrayNode errors = item.putArray("errors");
			ArrayNode warnings = item.putArray("warnings");
			for (SingleValidationMessage message : result.getMessages()) {
				boolean error = message.getSeverity() == ResultSeverityEnum.ERROR
						|| message.getSeverity() == ResultSeverityEnum.FATAL;
				boolean warning = message.getSeverity() == ResultSeverityEnum.WARNING;
				if (error || warning) {
					(error ? errors : warnings).addObject()
							.put("location", message.getLocationString())
							.put("messageId", message.getMessageId())
							.put("message", message.getMessage());
				}
			}
		}
		mapper.writerWithDefaultPrettyPrinter().writeValue(report.toFile(), out);
		return 0;
	}

	// ---- reading --------------------------------------------------------------------------------

	/**
	 * StructureDefinitions, ValueSets and CodeSystems in a folder. Ours (top level of OUR_DIR) are parsed
	 * strictly, so a misspelt element fails the build instead of vanishing; context folders (UK Core,
	 * which has a few non-R4 elements) are walked recursively and parsed leniently.
	 */
	private static Map<Path, IBaseResource> readConformance(Path dir, boolean context) throws IOException {
		Map<Path, IBaseResource> found = new LinkedHashMap<>();
		try (Stream<Path> files = context ? Files.walk(dir) : Files.list(dir)) {
			for (Path file : files.filter(Files::isRegularFile).sorted().toList()) {
				String name = file.getFileName().toString();
				if (name.startsWith(".") || name.equals("package.json")
						|| !(name.endsWith(".json") || name.endsWith(".xml"))) {
					continue;
				}
				String text = Files.readString(file, StandardCharsets.UTF_8);
				boolean xml = text.stripLeading().startsWith("<");
				Matcher type = (xml ? XML_ROOT : JSON_TYPE).matcher(text);
				if (type.find() && CONFORMANCE.contains(type.group(1))) { // examples, Measures ... are not parsed
					IParser parser = xml ? R4.newXmlParser() : R4.newJsonParser();
					parser.setParserErrorHandler(context ? new LenientErrorHandler(false) : new StrictErrorHandler());
					try {
						found.put(file, parser.parseResource(text));
					} catch (DataFormatException e) {
						throw new IOException(file + ": " + e.getMessage(), e);
					}
				}
			}
		}
		return found;
	}
}
