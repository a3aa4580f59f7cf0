package org.fhirdnacpr.testserver;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Where the server finds the conformance resources it loads for {@code $validate}.
 *
 * <p>{@code FHIR_PROFILES_DIR} (system property {@code fhir.profiles.dir} wins) names our own
 * profiles folder; without it the repository's {@code profiles/} folder is searched upwards
 * from the jar and from the working directory, so the server works from any checkout.
 * {@code FHIR_IG_DIRS} (system property {@code fhir.ig.dirs}) adds colon-separated IG folders;
 * when it is not set at all, UK Core from the shared reference folder
 * ({@code $FHIR_DNACPR_SHARED/fhir-packages/uk-core}, default {@code <repo>/../shared/...}) is
 * used if present, because our profiles derive from UK Core. Set it empty to load no IG.
 */
public final class ProfileLocations {

	private ProfileLocations() {}

	/** Our profiles folder, or null when none is configured or found (the server starts anyway). */
	public static Path profilesDir() {
		String configured = setting("fhir.profiles.dir", "FHIR_PROFILES_DIR");
		if (configured != null) {
			return Path.of(configured).toAbsolutePath().normalize();
		}
		Path root = repoRoot();
		return root == null ? null : root.resolve("profiles");
	}

	/**
	 * The checkout this jar belongs to: system property {@code fhir.repo.root} (set by
	 * {@code scripts/fhir-server}), else the folder holding {@code tests/fhir-server} searched
	 * upwards from the jar, then from the working directory; null when none is found.
	 */
	public static Path repoRoot() {
		String configured = setting("fhir.repo.root", "FHIR_REPO_ROOT");
		if (configured != null) {
			return Path.of(configured).toAbsolutePath().normalize();
		}
		for (Path start : List.of(jarDir(), Path.of("").toAbsolutePath())) {
			for (Path dir = start.toAbsolutePath().normalize(); dir != null; dir = dir.getParent()) {
				if (Files.isDirectory(dir.resolve("tests").resolve("fhir-server"))) {
					return dir;
				}
			}
		}
		return null;
	}

	/** Extra IG folders (may be empty). */
	public static List<Path> igDirs() {
		String configured = System.getProperty("fhir.ig.dirs");
		if (configured == null) {
			configured = System.getenv("FHIR_IG_DIRS");
		}
		List<Path> result = new ArrayList<>();
		if (configured == null) {
			Path ukCore = defaultUkCore();
			if (ukCore != null) {
				result.add(ukCore);
			}
		} else {
			for (String part : configured.split(":")) {
				if (!part.isBlank()) {
					result.add(Path.of(part.trim()).toAbsolutePath().normalize());
				}
			}
		}
		return result;
	}

	/** Profiles folder (if any) followed by the IG folders: the load order for the chain. */
	public static List<Path> all() {
		List<Path> result = new ArrayList<>();
		Path profiles = profilesDir();
		if (profiles != null) {
			result.add(profiles);
		}
		result.addAll(igDirs());
		return result;
	}

	private static Path defaultUkCore() {
		String shared = setting("fhir.dnacpr.shared", "FHIR_DNACPR_SHARED");
		Path sharedDir;
		if (shared != null) {
			sharedDir = Path.of(shared);
		} else {
			Path root = repoRoot();
			if (root == null) {
				return null;
			}
			sharedDir = root.getParent().resolve("shared");
		}
		Path ukCore = sharedDir.resolve("fhir-packages").resolve("uk-core").toAbsolutePath().normalize();
		return Files.isDirectory(ukCore) ? ukCore : null;
	}

	private static String setting(String theProperty, String theEnv) {
		String value = System.getProperty(theProperty);
		if (value == null || value.isBlank()) {
			value = System.getenv(theEnv);
		}
		return value == null || value.isBlank() ? null : value;
	}

	/** Folder of the jar we were started from ({@code java -jar}), or of the classes folder. */
	private static Path jarDir() {
		String classPath = System.getProperty("java.class.path", "");
		String first = classPath.split(java.io.File.pathSeparator)[0];
		if (first.isBlank()) {
			return Path.of("").toAbsolutePath();
		}
		Path location = Path.of(first).toAbsolutePath().normalize();
		return Files.isDirectory(location) ? location : location.getParent();
	}
}
