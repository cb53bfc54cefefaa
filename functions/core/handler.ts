import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { requireBearer, requireToolSecret } from "./auth.js";
import { AppError, ServiceUnavailableError } from "./errors.js";
import { errorResponse, type HttpRequest, type HttpResponse, readRequest } from "./http.js";
import { type Outcome, respond } from "./outcomes.js";
import { type AppLogger, type AppMetrics, countOutcome } from "./powertools.js";
import { type RouteName, routeNamed } from "./routes.js";
import type { Secrets } from "./secrets.js";

/** What every HTTP handler needs besides its own use case. */
export interface HttpDeps {
  readonly logger: AppLogger & {
    appendKeys?(keys: Record<string, unknown>): void;
    resetKeys?(): void;
    /** Powertools: cold_start, function_request_id, function_name, ... on every line of the invocation. */
    addContext?(context: Context): void;
  };
  readonly metrics: AppMetrics & { publishStoredMetrics?(): void };
  readonly secrets: Secrets;
}

export type LambdaHttpHandler = (event: APIGatewayProxyEventV2, context?: Context) => Promise<HttpResponse>;

/**
 * The adapter shared by every route: reads the event (body limit), checks the `service` and
 * `tool` credentials the route table declares (the `task` token and the `signature` need the
 * stored task or the raw body, so their use cases check them), runs the route's use case and
 * answers its outcome (one log line, one metric, the response), and maps every error to the
 * design's JSON body. Never throws, never sends a stack trace; metrics are flushed after each
 * invocation.
 */
export const createHttpHandler = (
  routeName: RouteName,
  deps: HttpDeps,
  useCase: (request: HttpRequest) => Promise<Outcome>,
): LambdaHttpHandler => {
  // Resolved once, when the handler is built at cold start: a wiring typo fails the import, not a request.
  const route = routeNamed(routeName);
  return async (event, context) => {
    const requestId = context?.awsRequestId ?? event.requestContext?.requestId ?? "local";
    deps.logger.resetKeys?.();
    if (context) deps.logger.addContext?.(context);
    deps.logger.appendKeys?.({ route: routeName, requestId });
    try {
      const read = readRequest(event, route.maxBodyBytes);
      const remainingMs =
        typeof context?.getRemainingTimeInMillis === "function"
          ? context.getRemainingTimeInMillis()
          : undefined;
      const request = remainingMs === undefined ? read : { ...read, remainingMs };
      if (route.auth === "service" || route.auth === "tool") {
        const secret = route.auth === "service" ? "serviceToken" : "toolSecret";
        const versions = await deps.secrets.versions(secret);
        const matched =
          route.auth === "service"
            ? requireBearer(request.headers, versions)
            : requireToolSecret(request.headers, versions);
        // Shows ops when the last caller has switched to the new value (safe to drop the old one).
        if (matched === "previous")
          deps.logger.info("Caller used the previous secret value", { secret, matched });
      }
      return respond(await useCase(request), deps.logger, deps.metrics);
    } catch (error) {
      countOutcome(
        deps.metrics,
        error instanceof ServiceUnavailableError
          ? "DependencyUnavailable"
          : error instanceof AppError
            ? "RequestRejected"
            : "UnexpectedError",
      );
      return errorResponse(error, deps.logger, { route: routeName, path: event.rawPath });
    } finally {
      deps.metrics.publishStoredMetrics?.();
    }
  };
};
