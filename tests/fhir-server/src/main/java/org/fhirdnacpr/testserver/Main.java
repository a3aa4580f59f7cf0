package org.fhirdnacpr.testserver;

import java.util.Arrays;

/**
 * Single entry point of the jar, so one build serves both jobs: with no sub-command (or
 * {@code serve}) it runs the HAPI FHIR JPA test server; {@code validate} runs the offline
 * batch validator ({@link OfflineValidator}) without starting Spring at all.
 */
public final class Main {

	private Main() {}

	public static void main(String[] args) throws Exception {
		if (args.length > 0 && "validate".equals(args[0])) {
			System.exit(OfflineValidator.run(Arrays.copyOfRange(args, 1, args.length)));
		}
		String[] serverArgs = args;
		if (args.length > 0 && "serve".equals(args[0])) {
			serverArgs = Arrays.copyOfRange(args, 1, args.length);
		}
		TestServerApplication.start(serverArgs);
	}
}
