package org.fhirdnacpr.testserver;

import ca.uhn.fhir.batch2.api.IJobMaintenanceService;
import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.api.model.HistoryCountModeEnum;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import org.apache.commons.dbcp2.BasicDataSource;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

import java.time.Duration;
import java.util.Properties;
import javax.sql.DataSource;

/**
 * The HAPI JPA server wiring: R4 DAOs/providers ({@link JpaR4Config}), search/paging support
 * ({@link HapiJpaConfig}), the batch2 framework and its job definitions (needed by Bulk Data
 * {@code $export}), an in-memory H2 database and the REST servlet at {@code /fhir/*}.
 * Nothing else (no subscriptions, MDM, CR, Elasticsearch, OpenAPI): a test server only.
 */
@Configuration
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	ThreadPoolFactoryConfig.class,
	SubscriptionChannelConfig.class, // in-memory message broker; batch2 (bulk export) sends work chunks over it
	ProfileValidationLoader.class
})
public class JpaServerConfig {

	/** Batch2 maintenance pass interval; HAPI's default (60 s) would make $export take minutes. */
	private static final long JOB_MAINTENANCE_INTERVAL_MILLIS = 2_000;

	@Bean
	public JpaStorageSettings storageSettings(
			@Value("${testserver.enforce-referential-integrity:true}") boolean theEnforceReferentialIntegrity,
			@Value("${testserver.auto-create-placeholders:false}") boolean theAutoCreatePlaceholders) {
		JpaStorageSettings settings = new JpaStorageSettings();
		// Client-assigned ids of any shape (also all-digit ones); server-assigned ids are UUIDs.
		settings.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
		settings.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);
		// Tests read their own writes: never answer a search from a cached earlier result.
		settings.setReuseCachedSearchResultsForMillis(null);
		// HAPI's default caches _history totals for a while (a fresh version would be missing from them).
		settings.setHistoryCountMode(HistoryCountModeEnum.COUNT_ACCURATE);
		settings.setEnforceReferentialIntegrityOnWrite(theEnforceReferentialIntegrity);
		settings.setEnforceReferentialIntegrityOnDelete(theEnforceReferentialIntegrity);
		settings.setAutoCreatePlaceholderReferenceTargets(theAutoCreatePlaceholders);
		// Test clean-up: DELETE Type?param=... and $expunge.
		settings.setAllowMultipleDelete(true);
		settings.setExpungeEnabled(true);
		settings.setDeleteExpungeEnabled(true);
		// Bulk Data export: run jobs, never hand back an earlier job's files, finish quickly.
		settings.setEnableTaskBulkExportJobExecution(true);
		settings.setEnableBulkExportJobReuse(false);
		settings.setJobFastTrackingEnabled(true);
		settings.setEnableTaskBulkImportJobExecution(false); // $import is not offered
		// Conformance resources posted by tests (SearchParameter etc.) are not re-validated on write.
		settings.setValidateResourceStatusForPackageUpload(false);
		return settings;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings();
	}

	@Bean(destroyMethod = "close")
	public BasicDataSource dataSource() {
		BasicDataSource dataSource = new BasicDataSource();
		dataSource.setDriver(new org.h2.Driver());
		// DB_CLOSE_DELAY=-1 keeps the in-memory database while the pool recycles connections.
		dataSource.setUrl("jdbc:h2:mem:fhir_test;DB_CLOSE_DELAY=-1");
		dataSource.setUsername("sa");
		dataSource.setPassword("");
		dataSource.setMaxTotal(20);
		dataSource.setMaxWait(Duration.ofSeconds(30));
		return dataSource;
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory theBeanFactory,
			FhirContext theFhirContext,
			JpaStorageSettings theStorageSettings,
			DataSource theDataSource,
			@Value("${testserver.jdbc-batch-size:100}") int theJdbcBatchSize,
			@Value("${testserver.order-writes:true}") boolean theOrderWrites) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(theBeanFactory, theFhirContext, theStorageSettings);
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setDataSource(theDataSource);
		Properties jpa = new Properties();
		jpa.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		jpa.put("hibernate.hbm2ddl.auto", "update");
		jpa.put("hibernate.format_sql", "false");
		jpa.put("hibernate.show_sql", "false");
		jpa.put("hibernate.jdbc.batch_size", Integer.toString(theJdbcBatchSize));
		// Grouping inserts/updates by table lets one JDBC batch carry a whole transaction's rows of a kind.
		jpa.put("hibernate.order_inserts", Boolean.toString(theOrderWrites));
		jpa.put("hibernate.order_updates", Boolean.toString(theOrderWrites));
		jpa.put("hibernate.cache.use_query_cache", "false");
		jpa.put("hibernate.cache.use_second_level_cache", "false");
		jpa.put("hibernate.cache.use_structured_entries", "false");
		jpa.put("hibernate.cache.use_minimal_puts", "false");
		jpa.put("hibernate.archive.scanner", "org.hibernate.boot.archive.scan.internal.DisabledScanner");
		// No Hibernate Search (Lucene/Elasticsearch): plain SQL search is all the tests need.
		jpa.put("hibernate.search.enabled", "false");
		// H2 scans the table for HAPI's OR-of-pairs id look-up; the inspector hands it an indexable form.
		jpa.put("hibernate.session_factory.statement_inspector", IdLookupQueryRewriter.class.getName());
		factory.setJpaProperties(jpa);
		return factory;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory theEntityManagerFactory) {
		JpaTransactionManager manager = new JpaTransactionManager();
		manager.setEntityManagerFactory(theEntityManagerFactory);
		return manager;
	}

	@Bean
	public Object jobMaintenanceIntervalSetter(IJobMaintenanceService theJobMaintenanceService) {
		if (theJobMaintenanceService instanceof JobMaintenanceServiceImpl impl) {
			impl.setScheduledJobFrequencyMillis(JOB_MAINTENANCE_INTERVAL_MILLIS);
		}
		return Boolean.TRUE;
	}

	@Bean
	public RestfulServer restfulServer(
			FhirContext theFhirContext,
			IFhirSystemDao<?, ?> theSystemDao,
			ResourceProviderFactory theResourceProviderFactory,
			IJpaSystemProvider theJpaSystemProvider,
			JpaStorageSettings theStorageSettings,
			ISearchParamRegistry theSearchParamRegistry,
			IValidationSupport theValidationSupport,
			DatabaseBackedPagingProvider thePagingProvider,
			BulkDataExportProvider theBulkDataExportProvider) {
		RestfulServer server = new RestfulServer(theFhirContext);
		server.registerProviders(theResourceProviderFactory.createProviders());
		server.registerProvider(theJpaSystemProvider);
		server.registerProvider(theBulkDataExportProvider);
		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, theSystemDao, theStorageSettings, theSearchParamRegistry, theValidationSupport);
		capabilities.setImplementationDescription("fhir-dnacpr HAPI FHIR JPA test server (R4, in-memory H2)");
		server.setServerConformanceProvider(capabilities);
		thePagingProvider.setDefaultPageSize(20);
		thePagingProvider.setMaximumPageSize(500);
		server.setPagingProvider(thePagingProvider);
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.registerInterceptor(ValidateRequestParsing.install(theFhirContext));
		return server;
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer theRestfulServer) {
		ServletRegistrationBean<RestfulServer> registration =
				new ServletRegistrationBean<>(theRestfulServer, "/fhir/*");
		registration.setLoadOnStartup(1);
		return registration;
	}
}
