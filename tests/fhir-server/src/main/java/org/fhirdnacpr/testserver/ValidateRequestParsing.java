package org.fhirdnacpr.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.parser.IParserErrorHandler;
import ca.uhn.fhir.parser.LenientErrorHandler;
import ca.uhn.fhir.parser.json.BaseJsonLikeValue;
import ca.uhn.fhir.rest.api.server.RequestDetails;

/**
 * Lets {@code $validate} see invalid content instead of rejecting it at parse time.
 *
 * <p>HAPI parses the request body into a model object before the operation runs, and its
 * default parser refuses unknown codes (e.g. {@code Consent.status = "bogus"}) with HTTP 400,
 * so the validator never reports them. The validator itself works on the raw body, so for
 * {@code $validate} requests only the model parse is made lenient. Every other request (all
 * writes) keeps HAPI's default behaviour: a real server rejects such content.
 */
@Interceptor
public class ValidateRequestParsing {

	private static final ThreadLocal<Boolean> ourInValidate = ThreadLocal.withInitial(() -> Boolean.FALSE);

	/** Installs the request-aware parser error handler on the context; returns the interceptor to register. */
	public static ValidateRequestParsing install(FhirContext theContext) {
		theContext.setParserErrorHandler(new RequestAwareErrorHandler(new LenientErrorHandler()));
		return new ValidateRequestParsing();
	}

	/** Runs after the URL is parsed and before the body is parsed: marks the thread for this request. */
	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public boolean markRequest(RequestDetails theRequestDetails) {
		ourInValidate.set("$validate".equals(theRequestDetails.getOperation()));
		return true;
	}

	@Hook(Pointcut.SERVER_PROCESSING_COMPLETED)
	public void clearRequest(RequestDetails theRequestDetails) {
		ourInValidate.remove();
	}

	/** HAPI's default handler, except that invalid values are tolerated while parsing a $validate body. */
	static final class RequestAwareErrorHandler implements IParserErrorHandler {

		private final IParserErrorHandler myDefault;
		private final IParserErrorHandler myForValidate = new LenientErrorHandler(false).disableAllErrors();

		RequestAwareErrorHandler(IParserErrorHandler theDefault) {
			myDefault = theDefault;
		}

		private IParserErrorHandler current() {
			return ourInValidate.get() ? myForValidate : myDefault;
		}

		@Override
		public void containedResourceWithNoId(IParseLocation theLocation) {
			current().containedResourceWithNoId(theLocation);
		}

		@Override
		public void incorrectJsonType(
				IParseLocation theLocation,
				String theElementName,
				BaseJsonLikeValue.ValueType theExpectedValueType,
				BaseJsonLikeValue.ScalarType theExpectedScalarType,
				BaseJsonLikeValue.ValueType theFoundValueType,
				BaseJsonLikeValue.ScalarType theFoundScalarType) {
			current().incorrectJsonType(
					theLocation,
					theElementName,
					theExpectedValueType,
					theExpectedScalarType,
					theFoundValueType,
					theFoundScalarType);
		}

		@Override
		public void invalidValue(IParseLocation theLocation, String theValue, String theError) {
			current().invalidValue(theLocation, theValue, theError);
		}

		@Override
		public void missingRequiredElement(IParseLocation theLocation, String theElementName) {
			current().missingRequiredElement(theLocation, theElementName);
		}

		@Override
		public void unexpectedRepeatingElement(IParseLocation theLocation, String theElementName) {
			current().unexpectedRepeatingElement(theLocation, theElementName);
		}

		@Override
		public void unknownAttribute(IParseLocation theLocation, String theAttributeName) {
			current().unknownAttribute(theLocation, theAttributeName);
		}

		@Override
		public void unknownElement(IParseLocation theLocation, String theElementName) {
			current().unknownElement(theLocation, theElementName);
		}

		@Override
		public void unknownReference(IParseLocation theLocation, String theReference) {
			current().unknownReference(theLocation, theReference);
		}

		@Override
		public void invalidInternalReference(IParseLocation theLocation, String theReference) {
			current().invalidInternalReference(theLocation, theReference);
		}

		@Override
		public void extensionContainsValueAndNestedExtensions(IParseLocation theLocation) {
			current().extensionContainsValueAndNestedExtensions(theLocation);
		}
	}
}
