import { CfnOutput, Duration, type RemovalPolicy, Validations } from "aws-cdk-lib";
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway";
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from "aws-cdk-lib/aws-apigatewayv2";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { DEFAULT_TOOL_INLINE_WAIT_MS, ROUTES } from "../../functions/core/routes.js";
import { SECRET_ENV } from "../../functions/core/secret-env.js";
import type { ServiceSecrets } from "./secrets.js";
import { ServiceFunction } from "./service-function.js";
import type { Tables } from "./tables.js";
import type { TaskQueues } from "./task-queues.js";

/** Properties of {@link Api}. */
export interface ApiProps {
  /** Deployment stage, used in names and output descriptions. */
  readonly stage: string;
  /** The tables, bound per route as `access.sessions` / `access.conversations` say. */
  readonly tables: Tables;
  /** The secrets, each bound only to the routes whose `access.secrets` names it. */
  readonly secrets: ServiceSecrets;
  /** The task queue (routes with `access.taskQueue`) and parking queue (`access.parkingQueue`). */
  readonly queues: TaskQueues;
  /** Steady-state requests per second of the whole API (default stage); defaulted in `readAppConfig`. */
  readonly rateLimit: number;
  /** Burst capacity of the whole API (default stage); defaulted in `readAppConfig`. */
  readonly burstLimit: number;
  /**
   * Public base URL when the API sits behind a custom domain; task callback URLs are built from it.
   * @default - the API's execute-api URL
   */
  readonly publicBaseUrl?: string;
  /** Powertools log level of every function; defaulted in `readAppConfig`. */
  readonly logLevel: string;
  /**
   * Reserved concurrency of every function.
   * @default - unreserved
   */
  readonly reservedConcurrency?: number;
  /**
   * Session length override (`SESSION_TTL_MS`), for demo stages only.
   * @default - the code's 600 000 ms
   */
  readonly sessionTtlMs?: number;
  /**
   * Days conversation history is kept (`HISTORY_RETENTION_DAYS`), given to every function that
   * writes the conversations table. @default - kept until erased
   */
  readonly historyRetentionDays?: number;
  /** What happens to the function and access log groups when the stack is deleted. */
  readonly logRemovalPolicy: RemovalPolicy;
  /** Who starts a session (`SESSION_START` of the functions that touch sessions); defaulted in `readAppConfig`. */
  readonly sessionStart: "first-tool-call" | "app";
  /**
   * How long a tool call waits for its own task's result (`TOOL_INLINE_WAIT_MS` of call-tool).
   * @default - the code's default (DEFAULT_TOOL_INLINE_WAIT_MS)
   */
  readonly toolInlineWaitMs?: number;
}

/** The route table's entry as the API's route key and integration. */
type TableRoute = (typeof ROUTES)[number];

/** `register-session` -> `RegisterSession`. */
const pascal = (name: string) =>
  name
    .split("-")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");

/**
 * The HTTP API, built from the route table: one function and one route per `ROUTES` entry, each
 * function granted exactly its route's `access` (tables, queues, secrets) and nothing more.
 * Callers are authenticated inside the functions (bearer token, tool secret header, per-task
 * token, HMAC signature), so the routes carry no API Gateway authorizer.
 */
export class Api extends Construct {
  /** The HTTP API (no authorizers, no CORS). */
  public readonly httpApi: HttpApi;
  /** The `$default` stage: throttled, access-logged. */
  public readonly stage: HttpStage;
  /** Access logs of the `$default` stage (JSON, no headers or query strings). */
  public readonly accessLogs: LogGroup;
  /** The function behind each route, by route name. */
  public readonly functions: Readonly<Record<string, ServiceFunction>>;
  /** The base URL callers use (custom domain if configured). */
  public readonly url: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const { tables, secrets, queues } = props;
    const { logRemovalPolicy } = props;

    this.httpApi = new HttpApi(this, "HttpApi", {
      apiName: `elevenlabs-agent-sessions-${props.stage}`,
      description: "ElevenLabs agent sessions, task callbacks and conversation history",
      // The default stage is created below, with throttling and access logs.
      createDefaultStage: false,
      // No CORS: every caller is a server (the app's backend, ElevenLabs, task runners).
    });
    this.accessLogs = new LogGroup(this, "AccessLogs", {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: logRemovalPolicy,
    });
    this.stage = new HttpStage(this, "DefaultStage", {
      httpApi: this.httpApi,
      stageName: "$default",
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit, burstLimit: props.burstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        // No headers and no query string: they may carry tokens.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: "$context.requestId",
            ip: "$context.identity.sourceIp",
            requestTime: "$context.requestTime",
            routeKey: "$context.routeKey",
            path: "$context.path",
            status: "$context.status",
            protocol: "$context.protocol",
            responseLength: "$context.responseLength",
            responseLatency: "$context.responseLatency",
            integrationLatency: "$context.integrationLatency",
            integrationStatus: "$context.integrationStatus",
            integrationError: "$context.integrationErrorMessage",
            error: "$context.error.message",
          }),
        ),
      },
    });
    // With the $default stage the API's endpoint is its base URL. The functions may reference it:
    // the Api resource depends on none of them (only its integrations and permissions do).
    this.url = props.publicBaseUrl ?? this.httpApi.apiEndpoint;

    const functions: Record<string, ServiceFunction> = {};
    const inlineWaitMs = props.toolInlineWaitMs ?? DEFAULT_TOOL_INLINE_WAIT_MS;
    for (const route of ROUTES) {
      // A function serves every route of its name (the tool routes answer POST and GET).
      const existing = functions[route.name];
      if (existing) {
        this.addRoute(route, existing, `${pascal(route.name)}${route.method}`);
        continue;
      }
      const { access } = route;
      // The tool route may wait for its task's result: its timeout covers the wait and its own work.
      const timeoutSeconds = access.taskQueue
        ? Math.max(route.timeoutSeconds ?? 10, Math.ceil(inlineWaitMs / 1000) + 10)
        : route.timeoutSeconds;
      const fn = new ServiceFunction(this, pascal(route.name), {
        name: route.name,
        description: route.description,
        logRemovalPolicy,
        ...(timeoutSeconds ? { timeout: Duration.seconds(timeoutSeconds) } : {}),
        logLevel: props.logLevel,
        ...(props.reservedConcurrency !== undefined
          ? { reservedConcurrency: props.reservedConcurrency }
          : {}),
      });
      fn.bindTable(tables.sessionsBinding, access.sessions);
      fn.bindTable(tables.conversationsBinding, access.conversations);
      for (const name of access.secrets)
        fn.bindSecret(secrets.byName[name], `${SECRET_ENV[name]}_SECRET_ARN`);
      if (access.taskQueue) {
        fn.bindQueue(queues.tasks, "TASK_QUEUE_URL");
        // Task callback URLs point back at this API.
        fn.addEnvironment("PUBLIC_BASE_URL", this.url);
        fn.addEnvironment("TOOL_INLINE_WAIT_MS", String(inlineWaitMs));
      }
      if (access.parkingQueue) fn.bindQueue(queues.parking, "PARKING_QUEUE_URL");
      // Every function that writes conversation items stamps them with the retention period.
      if (access.conversations === "write" && props.historyRetentionDays !== undefined) {
        fn.addEnvironment("HISTORY_RETENTION_DAYS", String(props.historyRetentionDays));
      }
      if (access.sessions && props.sessionTtlMs !== undefined) {
        fn.addEnvironment("SESSION_TTL_MS", String(props.sessionTtlMs));
      }
      if (access.sessions) fn.addEnvironment("SESSION_START", props.sessionStart);

      this.addRoute(route, fn, pascal(route.name));
      functions[route.name] = fn;
    }
    this.functions = functions;

    new CfnOutput(scope, "ApiUrl", {
      value: this.url,
      description: `Base URL of the API (${props.stage})`,
    });
  }

  /** One API route to its function; `id` names the integration (unchanged for the first route of a function). */
  private addRoute(route: TableRoute, fn: ServiceFunction, id: string): void {
    const [apiRoute] = this.httpApi.addRoutes({
      path: route.path,
      methods: [HttpMethod[route.method]],
      integration: new HttpLambdaIntegration(`${id}Integration`, fn.handler),
    });
    if (apiRoute) {
      Validations.of(apiRoute).acknowledge({
        id: "AwsSolutions-APIG4",
        reason: `Authenticated inside the function (${route.auth} auth from the route table: bearer token, tool secret header, per-task token or ElevenLabs HMAC signature); API Gateway authorizers cannot check these.`,
      });
    }
  }
}
