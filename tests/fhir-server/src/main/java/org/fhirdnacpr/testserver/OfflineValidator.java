package org.fhirdnacpr.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ValidationOptions;
import ca.uhn.fhir.validation.ValidationResult;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.r4.model.OperationOutcome;
import org.hl7.fhir.r5.utils.validation.constants.BestPracticeWarningLevel;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Offline batch validator: HAPI {@link FhirInstanceValidator} over the same support chain as
 * the test server, loaded once, then every input validated in turn. One NDJSON line per input:
 * {@code {"file": ..., "millis": ..., "outcome": {OperationOutcome}}} (plus {@code "id"} in jobs mode).
 *
 * <p>Used to compare the project's Python validator with HAPI over many instances, and to run
 * the HL7 validator test cases (each with its own supporting files: see {@code --jobs}).
 */
public final class OfflineValidator {

	static final String USAGE = String.join(
			"\n",
			"usage: java -jar fhir-test-server.jar validate [options] [FILE|DIR ...]",
			"  --ig PATH            folder or file of conformance resources (StructureDefinition, ValueSet,",
			"                       CodeSystem; example instances are skipped); repeatable",
			"  --profile URL        also validate against this profile (as if in meta.profile); repeatable",
			"  --files-from FILE    read input paths from FILE, one per line ('-' = stdin)",
			"  --jobs FILE          NDJSON jobs ('-' = stdin), one per line:",
			"                       {\"id\":..., \"file\":..., \"profiles\":[URL...], \"ig\":[PATH...]}",
			"                       a job's ig/profiles are added to the global --ig/--profile ones",
			"  --best-practice LVL  ignore|hint|warning|error (default warning)",
			"  --no-unknown-profile-errors  report an unknown profile as a warning, not an error",
			"  --assume-valid-rest-references  do not report unresolvable literal references",
			"  --output FILE        write NDJSON to FILE instead of stdout",
			"Loader problems go to stderr; exit code 0 unless the arguments are wrong.");

	private final FhirContext myContext = FhirContext.forR4Cached();
	private final DefaultProfileValidationSupport myDefaultProfiles = ValidationSupports.defaultProfiles(myContext);
	private final ObjectMapper myMapper = new ObjectMapper();
	private final Map<List<Path>, FhirValidator> myValidatorsBySupport = new HashMap<>();
	private final Map<Path, IValidationSupport> mySupportByPath = new HashMap<>();

	private final List<Path> myGlobalIgs = new ArrayList<>();
	private final List<String> myGlobalProfiles = new ArrayList<>();
	private BestPracticeWarningLevel myBestPractice = BestPracticeWarningLevel.Warning;
	private boolean myErrorForUnknownProfiles = true;
	private boolean myAssumeValidRestReferences;

	private OfflineValidator() {}

	/** Runs the command; returns the process exit code. */
	public static int run(String[] args) throws IOException {
		OfflineValidator validator = new OfflineValidator();
		List<String> inputs = new ArrayList<>();
		String filesFrom = null;
		String jobs = null;
		String output = null;
		for (int i = 0; i < args.length; i++) {
			String arg = args[i];
			switch (arg) {
				case "--ig" -> validator.myGlobalIgs.add(Path.of(value(args, ++i, arg)));
				case "--profile" -> validator.myGlobalProfiles.add(value(args, ++i, arg));
				case "--files-from" -> filesFrom = value(args, ++i, arg);
				case "--jobs" -> jobs = value(args, ++i, arg);
				case "--output" -> output = value(args, ++i, arg);
				case "--best-practice" -> validator.myBestPractice = bestPractice(value(args, ++i, arg));
				case "--no-unknown-profile-errors" -> validator.myErrorForUnknownProfiles = false;
				case "--assume-valid-rest-references" -> validator.myAssumeValidRestReferences = true;
				case "-h", "--help" -> {
					System.out.println(USAGE);
					return 0;
				}
				default -> {
					if (arg.startsWith("--")) {
						System.err.println("unknown option " + arg + "\n" + USAGE);
						return 2;
					}
					inputs.add(arg);
				}
			}
		}
		if (inputs.isEmpty() && filesFrom == null && jobs == null) {
			System.err.println(USAGE);
			return 2;
		}
		try (BufferedWriter out = output == null
				? new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8))
				: Files.newBufferedWriter(Path.of(output), StandardCharsets.UTF_8)) {
			for (Path file : expand(inputs)) {
				validator.validateAndWrite(null, file, List.of(), List.of(), out);
			}
			if (filesFrom != null) {
				try (BufferedReader reader = open(filesFrom)) {
					for (String line = reader.readLine(); line != null; line = reader.readLine()) {
						if (!line.isBlank()) {
							validator.validateAndWrite(null, Path.of(line.trim()), List.of(), List.of(), out);
						}
					}
				}
			}
			if (jobs != null) {
				validator.runJobs(jobs, out);
			}
		}
		return 0;
	}

	private void runJobs(String theJobsFile, BufferedWriter theOut) throws IOException {
		try (BufferedReader reader = open(theJobsFile)) {
			int lineNumber = 0;
			for (String line = reader.readLine(); line != null; line = reader.readLine()) {
				lineNumber++;
				if (line.isBlank()) {
					continue;
				}
				JsonNode job;
				try {
					job = myMapper.readTree(line);
				} catch (IOException e) {
					System.err.println("jobs line " + lineNumber + ": not JSON (skipped): " + e.getMessage());
					continue;
				}
				String id = job.hasNonNull("id") ? job.get("id").asText() : null;
				if (!job.hasNonNull("file")) {
					System.err.println("jobs line " + lineNumber + ": no \"file\" (skipped)");
					continue;
				}
				validateAndWrite(id, Path.of(job.get("file").asText()), strings(job, "profiles", "profile"),
						strings(job, "ig", "supporting").stream().map(Path::of).toList(), theOut);
			}
		}
	}

	private void validateAndWrite(
			String theId, Path theFile, List<String> theProfiles, List<Path> theIgs, BufferedWriter theOut)
			throws IOException {
		long started = System.nanoTime();
		OperationOutcome outcome = validate(theFile, theProfiles, theIgs);
		long millis = (System.nanoTime() - started) / 1_000_000;
		ObjectNode line = myMapper.createObjectNode();
		if (theId != null) {
			line.put("id", theId);
		}
		line.put("file", theFile.toString());
		line.put("millis", millis);
		line.set("outcome", myMapper.readTree(myContext.newJsonParser().encodeResourceToString(outcome)));
		theOut.write(myMapper.writeValueAsString(line));
		theOut.write('\n');
		theOut.flush();
	}

	private OperationOutcome validate(Path theFile, List<String> theProfiles, List<Path> theIgs) {
		String text;
		try {
			text = Files.readString(theFile, StandardCharsets.UTF_8);
		} catch (IOException | RuntimeException e) {
			return fatal("cannot read file: " + e.getMessage());
		}
		ValidationOptions options = new ValidationOptions();
		for (String profile : new LinkedHashSet<>(concat(myGlobalProfiles, theProfiles))) {
			options.addProfile(profile);
		}
		try {
			FhirValidator validator = validatorFor(concat(myGlobalIgs, theIgs));
			ValidationResult result = validator.validateWithResult(text, options);
			return (OperationOutcome) result.toOperationOutcome();
		} catch (Exception e) {
			// Malformed content and validator crashes end up as a located outcome, never a lost input.
			return fatal(e.getClass().getSimpleName() + ": " + e.getMessage());
		}
	}

	/** One validator per distinct set of supporting paths; the base R4 definitions are shared by all. */
	private FhirValidator validatorFor(List<Path> theIgs) {
		List<Path> key = theIgs.stream().map(p -> p.toAbsolutePath().normalize()).distinct().toList();
		return myValidatorsBySupport.computeIfAbsent(key, k -> {
			List<IValidationSupport> supplied = new ArrayList<>();
			for (Path path : k) {
				supplied.add(mySupportByPath.computeIfAbsent(path, this::loadSupport));
			}
			FhirInstanceValidator module =
					new FhirInstanceValidator(ValidationSupports.offlineChain(myContext, myDefaultProfiles, supplied));
			module.setBestPracticeWarningLevel(myBestPractice);
			module.setErrorForUnknownProfiles(myErrorForUnknownProfiles);
			module.setAssumeValidRestReferences(myAssumeValidRestReferences);
			FhirValidator validator = myContext.newValidator();
			validator.setValidateAgainstStandardSchema(false);
			validator.setValidateAgainstStandardSchematron(false);
			validator.registerValidatorModule(module);
			return validator;
		});
	}

	private IValidationSupport loadSupport(Path thePath) {
		ConformanceResources.Loaded loaded = ConformanceResources.load(myContext, List.of(thePath));
		for (String problem : loaded.problems()) {
			System.err.println("ig: " + problem);
		}
		return ValidationSupports.prePopulated(myContext, loaded.resources());
	}

	private static OperationOutcome fatal(String theMessage) {
		OperationOutcome outcome = new OperationOutcome();
		outcome.addIssue()
				.setSeverity(OperationOutcome.IssueSeverity.FATAL)
				.setCode(OperationOutcome.IssueType.STRUCTURE)
				.setDiagnostics(theMessage);
		return outcome;
	}

	private static List<Path> expand(List<String> theInputs) throws IOException {
		List<Path> files = new ArrayList<>();
		for (String input : theInputs) {
			Path path = Path.of(input);
			if (Files.isDirectory(path)) {
				try (Stream<Path> walk = Files.walk(path)) {
					walk.filter(Files::isRegularFile)
							.filter(p -> {
								String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
								return name.endsWith(".json") || name.endsWith(".xml");
							})
							.sorted()
							.forEach(files::add);
				}
			} else {
				files.add(path);
			}
		}
		return files;
	}

	private static List<String> strings(JsonNode theJob, String... theNames) {
		List<String> values = new ArrayList<>();
		for (String name : theNames) {
			JsonNode node = theJob.get(name);
			if (node instanceof ArrayNode array) {
				array.forEach(n -> values.add(n.asText()));
			} else if (node != null && !node.isNull()) {
				values.add(node.asText());
			}
		}
		return values;
	}

	private static <T> List<T> concat(List<T> theFirst, List<T> theSecond) {
		List<T> all = new ArrayList<>(theFirst);
		all.addAll(theSecond);
		return all;
	}

	private static BufferedReader open(String theName) throws IOException {
		Reader reader = "-".equals(theName)
				? new InputStreamReader(System.in, StandardCharsets.UTF_8)
				: Files.newBufferedReader(Path.of(theName), StandardCharsets.UTF_8);
		return new BufferedReader(reader);
	}

	private static String value(String[] args, int theIndex, String theOption) {
		if (theIndex >= args.length) {
			throw new IllegalArgumentException(theOption + " needs a value");
		}
		return args[theIndex];
	}

	private static BestPracticeWarningLevel bestPractice(String theValue) {
		return switch (theValue.toLowerCase(Locale.ROOT)) {
			case "ignore" -> BestPracticeWarningLevel.Ignore;
			case "hint" -> BestPracticeWarningLevel.Hint;
			case "error" -> BestPracticeWarningLevel.Error;
			default -> BestPracticeWarningLevel.Warning;
		};
	}

}
