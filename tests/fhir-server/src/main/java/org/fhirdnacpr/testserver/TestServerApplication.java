package org.fhirdnacpr.testserver;

import org.springframework.boot.Banner;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.autoconfigure.context.PropertyPlaceholderAutoConfiguration;
import org.springframework.boot.autoconfigure.web.servlet.ServletWebServerFactoryAutoConfiguration;
import org.springframework.boot.web.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Import;

import java.util.HashMap;
import java.util.Map;

/**
 * Spring Boot application hosting the JPA server. Only the embedded servlet container is
 * auto-configured; everything HAPI needs is wired explicitly in {@link JpaServerConfig}, so
 * the many optional libraries HAPI drags onto the classpath stay inert.
 */
@SpringBootConfiguration
@ImportAutoConfiguration({PropertyPlaceholderAutoConfiguration.class, ServletWebServerFactoryAutoConfiguration.class})
@Import(JpaServerConfig.class)
public class TestServerApplication {

	static void start(String[] args) {
		long started = System.nanoTime();
		SpringApplication app = new SpringApplication(TestServerApplication.class);
		app.setBannerMode(Banner.Mode.OFF);
		app.setAllowCircularReferences(true); // HAPI's JPA beans reference each other
		app.setLogStartupInfo(false);
		Map<String, Object> defaults = new HashMap<>();
		defaults.put("server.address", "127.0.0.1");
		defaults.put("server.port", "8080");
		defaults.put("logging.level.root", "WARN");
		app.setDefaultProperties(defaults);
		ConfigurableApplicationContext context = app.run(args);

		int port = ((WebServerApplicationContext) context).getWebServer().getPort();
		String address = context.getEnvironment().getProperty("server.address", "127.0.0.1");
		ProfileValidationLoader profiles = context.getBean(ProfileValidationLoader.class);
		double seconds = (System.nanoTime() - started) / 1e9;
		// The one line printed at the default log level: scripts wait for /metadata, humans read this.
		System.out.printf(
				"fhir-test-server started: base=http://%s:%d/fhir startup=%.1fs profiles=%d from %s%n",
				address, port, seconds, profiles.getLoadedCount(), profiles.getLocations());
		System.out.flush();
		profiles.warmUpInBackground();
	}
}
