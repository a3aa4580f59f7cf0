package org.fhirdnacpr.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.parser.LenientErrorHandler;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.Resource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Reads StructureDefinition / ValueSet / CodeSystem resources from folders or single files.
 *
 * <p>Profile and IG folders also hold example instances, package manifests and other
 * artefacts; those are skipped (not an error) because only conformance resources belong
 * in a validation support chain. Bundles are opened and their conformance entries kept.
 */
public final class ConformanceResources {

	private static final Logger ourLog = LoggerFactory.getLogger(ConformanceResources.class);

	/** Resource types that are put into the validation support chain. */
	public static final Set<String> CONFORMANCE_TYPES = Set.of("StructureDefinition", "ValueSet", "CodeSystem");

	private static final Set<String> SKIPPED_FILE_NAMES = Set.of("package.json", ".index.json", "fhirpkg.lock.json");

	private ConformanceResources() {}

	/** Result of loading: resources kept plus per-file problems (never fatal). */
	public record Loaded(List<IBaseResource> resources, List<String> problems) {}

	/** Loads every conformance resource under the given paths (folders are walked recursively). */
	public static Loaded load(FhirContext theContext, List<Path> thePaths) {
		List<IBaseResource> resources = new ArrayList<>();
		List<String> problems = new ArrayList<>();
		for (Path path : thePaths) {
			if (!Files.exists(path)) {
				problems.add(path + ": does not exist (skipped)");
				continue;
			}
			for (Path file : candidateFiles(path, problems)) {
				loadFile(theContext, file, resources, problems);
			}
		}
		return new Loaded(resources, problems);
	}

	private static List<Path> candidateFiles(Path thePath, List<String> theProblems) {
		if (Files.isRegularFile(thePath)) {
			return List.of(thePath);
		}
		try (Stream<Path> walk = Files.walk(thePath)) {
			return walk.filter(Files::isRegularFile)
					.filter(ConformanceResources::isFhirFileName)
					.sorted()
					.toList();
		} catch (IOException e) {
			theProblems.add(thePath + ": cannot list folder: " + e.getMessage());
			return List.of();
		}
	}

	private static boolean isFhirFileName(Path theFile) {
		String name = theFile.getFileName().toString();
		String lower = name.toLowerCase(Locale.ROOT);
		return (lower.endsWith(".json") || lower.endsWith(".xml")) && !SKIPPED_FILE_NAMES.contains(name);
	}

	private static void loadFile(
			FhirContext theContext, Path theFile, List<IBaseResource> theOut, List<String> theProblems) {
		String text;
		try {
			text = Files.readString(theFile, StandardCharsets.UTF_8);
		} catch (IOException e) {
			theProblems.add(theFile + ": cannot read: " + e.getMessage());
			return;
		}
		String type = sniffResourceType(text);
		if (type == null || !(CONFORMANCE_TYPES.contains(type) || "Bundle".equals(type))) {
			return; // example instance or non-FHIR file: not a conformance resource
		}
		IBaseResource parsed;
		try {
			parsed = parserFor(theContext, text).parseResource(text);
		} catch (Exception e) {
			theProblems.add(theFile + ": cannot parse " + type + ": " + e.getMessage());
			return;
		}
		if (parsed instanceof Bundle bundle) {
			for (Bundle.BundleEntryComponent entry : bundle.getEntry()) {
				Resource resource = entry.getResource();
				if (resource != null && CONFORMANCE_TYPES.contains(resource.fhirType())) {
					theOut.add(resource);
				}
			}
		} else {
			theOut.add(parsed);
		}
	}

	/** Parser chosen by content (JSON starts with '{'), lenient so that IG quirks do not abort loading. */
	public static IParser parserFor(FhirContext theContext, String theText) {
		IParser parser = isJson(theText) ? theContext.newJsonParser() : theContext.newXmlParser();
		LenientErrorHandler handler = new LenientErrorHandler(false);
		handler.setErrorOnInvalidValue(false);
		parser.setParserErrorHandler(handler);
		return parser;
	}

	public static boolean isJson(String theText) {
		for (int i = 0; i < theText.length(); i++) {
			char c = theText.charAt(i);
			if (!Character.isWhitespace(c) && c != '\uFEFF') {
				return c == '{' || c == '[';
			}
		}
		return false;
	}

	/** Cheap resourceType detection so example instances are never fully parsed. */
	static String sniffResourceType(String theText) {
		if (isJson(theText)) {
			java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"resourceType\"\\s*:\\s*\"([A-Za-z]+)\"")
					.matcher(theText);
			return m.find() ? m.group(1) : null;
		}
		java.util.regex.Matcher m = java.util.regex.Pattern.compile(
						"<([A-Za-z]+)[^>]*xmlns\\s*=\\s*[\"']http://hl7.org/fhir[\"']")
				.matcher(theText);
		return m.find() ? m.group(1) : null;
	}

	/** Logs loader problems at WARN (file paths only, no content). */
	public static void logProblems(Loaded theLoaded) {
		for (String problem : theLoaded.problems()) {
			ourLog.warn("Conformance resource loading: {}", problem);
		}
	}
}
