package dev.cdcjoin.registry;

import io.quarkus.security.identity.SecurityIdentity;
import io.quarkus.vertx.http.runtime.security.HttpSecurityPolicy;
import io.smallrye.mutiny.Uni;
import io.vertx.ext.web.RoutingContext;
import javax.enterprise.context.ApplicationScoped;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/**
 * Demands an authenticated caller on the Confluent-compatible API (/apis/ccompat/...) when
 * {@code cdcjoin.registry.ccompat-basic-auth=true}: an anonymous request gets Quarkus's 401
 * challenge, a wrong password a 401 from the basic mechanism, and the users are Quarkus's embedded
 * ones ({@code quarkus.security.users.embedded.users.NAME=PASSWORD}, HTTP basic).
 *
 * <p>Why a policy bean and not {@code quarkus.http.auth.permission.*}: in Quarkus 2.16 (the
 * registry's) path permissions are build-time configuration, so a permission would make every
 * start of this one build demand credentials, while the tests also need the open registry. This
 * bean's switch is read at start-up (scripts/registry.sh --basic_auth_file sets it). Quarkus 2.16
 * applies every HttpSecurityPolicy bean to every request; this one permits all other paths, so
 * Apicurio's own API (/apis/registry/v2, what Debezium's converter writes through) stays open.
 */
@ApplicationScoped
public class CcompatBasicAuthPolicy implements HttpSecurityPolicy {
  private static final String CCOMPAT_PREFIX = "/apis/ccompat/";

  @ConfigProperty(name = "cdcjoin.registry.ccompat-basic-auth", defaultValue = "false")
  boolean ccompatBasicAuth;

  @Override
  public Uni<CheckResult> checkPermission(
      RoutingContext request, Uni<SecurityIdentity> identity,
      AuthorizationRequestContext requestContext) {
    if (!ccompatBasicAuth || !request.normalizedPath().startsWith(CCOMPAT_PREFIX)) {
      return Uni.createFrom().item(CheckResult.PERMIT);
    }
    // Subscribing to `identity` is what runs the authentication (it is lazy: the registry sets
    // quarkus.http.auth.proactive=false). DENY for an anonymous caller becomes a 401 challenge.
    return identity.map(caller -> caller.isAnonymous() ? CheckResult.DENY : CheckResult.PERMIT);
  }
}
