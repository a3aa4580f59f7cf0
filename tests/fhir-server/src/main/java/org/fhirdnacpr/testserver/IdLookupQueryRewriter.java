package org.fhirdnacpr.testserver;

import org.hibernate.resource.jdbc.spi.StatementInspector;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Lets H2 answer HAPI's batched id look-up with its (RES_TYPE, FHIR_ID) index instead of a table scan.
 *
 * <p>Before a transaction runs, HAPI resolves every {@code Type/id} the bundle names in one query whose
 * WHERE clause is an OR of {@code (res_type=? and fhir_id=?)} pairs. PostgreSQL turns that into index
 * look-ups; H2 2.3 scans HFJ_RESOURCE for it, so each transaction costs time proportional to the whole
 * table and pushing N resources in bundles costs O(N^2) — the test server, not the client, becomes what
 * a push benchmark measures. H2 <em>does</em> use the unique index for the equivalent row-value form
 * {@code (res_type, fhir_id) in ((?,?),(?,?))}, with the parameters in the same order, so this inspector
 * rewrites exactly that pattern (two or more pairs on the same table alias, the whole parenthesised OR
 * group) and leaves every other
 * statement untouched. The meaning of the query does not change.
 */
public final class IdLookupQueryRewriter implements StatementInspector {

	/**
	 * A parenthesised group of two or more {@code alias.res_type=? and alias.fhir_id=?} terms joined by OR,
	 * as Hibernate 6 renders HAPI's criteria query. Anchored on the group's own parentheses so a term is
	 * never pulled out of a larger AND/OR expression. Group 1 is the table alias.
	 */
	private static final Pattern PAIRS = Pattern.compile(
			"\\((\\w+)\\.res_type=\\? and \\1\\.fhir_id=\\?"
					+ "(?: or \\1\\.res_type=\\? and \\1\\.fhir_id=\\?)+\\)",
			Pattern.CASE_INSENSITIVE);

	private static final Pattern OR = Pattern.compile(" or ", Pattern.CASE_INSENSITIVE);

	private static final boolean TRACE = Boolean.getBoolean("testserver.trace-id-lookup");

	@Override
	public String inspect(String theSql) {
		if (theSql.length() < 64 || !theSql.regionMatches(true, 0, "select", 0, 6)) {
			return theSql;
		}
		String lower = theSql.toLowerCase(java.util.Locale.ROOT);
		if (!lower.contains("fhir_id") || !lower.contains(" or ")) {
			return theSql;
		}
		Matcher matcher = PAIRS.matcher(theSql);
		if (!matcher.find()) {
			if (TRACE) {
				System.err.println("id-lookup: not rewritten: " + theSql);
			}
			return theSql;
		}
		String alias = matcher.group(1);
		int pairs = 1;
		Matcher each = OR.matcher(matcher.group());
		while (each.find()) {
			pairs++;
		}
		StringBuilder replacement = new StringBuilder(32 + pairs * 6);
		replacement.append("((").append(alias).append(".RES_TYPE,").append(alias).append(".FHIR_ID) in (");
		for (int i = 0; i < pairs; i++) {
			replacement.append(i == 0 ? "(?,?)" : ",(?,?)");
		}
		replacement.append("))");
		String rewritten = theSql.substring(0, matcher.start()) + replacement + theSql.substring(matcher.end());
		if (TRACE) {
			System.err.println("id-lookup: " + theSql + "\n  -> " + rewritten);
		}
		return rewritten;
	}
}
