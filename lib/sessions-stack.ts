import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { SecretName } from "../functions/core/routes.js";
import { Api } from "./constructs/api.js";
import { Observability } from "./constructs/observability.js";
import { ServiceSecrets } from "./constructs/secrets.js";
import { Tables } from "./constructs/tables.js";
import { TaskQueues } from "./constructs/task-queues.js";
import { TaskRunner } from "./constructs/task-runner.js";

/** The example runner's handler (`lookup_order`, `sleep`). */
const EXAMPLE_RUNNER_ENTRY = fileURLToPath(new URL("../examples/runner/handler.ts", import.meta.url));

/** Properties of {@link SessionsStack}. */
export interface SessionsStackProps extends StackProps {
  /** Deployment stage name (`dev`, `prod`, ...). */
  readonly stage: string;
  /**
   * Removal behaviour of the sessions table.
   * @default RemovalPolicy.DESTROY
   */
  readonly sessionsRemovalPolicy?: RemovalPolicy;
  /**
   * Steady-state requests per second of the API.
   * @default 50
   */
  readonly apiRateLimit?: number;
  /**
   * Burst capacity of the API.
   * @default 100
   */
  readonly apiBurstLimit?: number;
  /**
   * Public base URL behind a custom domain, used for task callback URLs.
   * @default - the API's execute-api URL
   */
  readonly publicBaseUrl?: string;
  /**
   * Late callbacks per 5 minutes above which the CallbackAfterExpiry alarm fires.
   * @default 20
   */
  readonly callbackAfterExpiryAlarmThreshold?: number;
  /**
   * E-mail subscribed to the alarm topic.
   * @default - none
   */
  readonly alarmEmail?: string;
  /**
   * Reserved concurrency of every function.
   * @default - unreserved
   */
  readonly reservedConcurrency?: number;
  /**
   * Session length override, demo stages only.
   * @default - 600 000 ms
   */
  readonly sessionTtlMs?: number;
  /**
   * Powertools log level.
   * @default "INFO"
   */
  readonly logLevel?: string;
  /**
   * Existing secrets (complete ARNs) to use instead of creating them.
   * @default - all secrets are created
   */
  readonly existingSecretArns?: Readonly<Partial<Record<SecretName, string>>>;
  /**
   * Deploy the example task runner on the task queue, so a fresh deployment completes tasks.
   * Turn it off when your own runner consumes the queue.
   * @default true
   */
  readonly exampleRunner?: boolean;
  /**
   * Task messages per runner invocation.
   * @default 5
   */
  readonly taskRunnerBatchSize?: number;
  /**
   * Most concurrent runner invocations.
   * @default 10
   */
  readonly taskRunnerMaxConcurrency?: number;
}

/** The whole service: tables, secrets, queues, the API with its functions, alarms. */
export class SessionsStack extends Stack {
  public readonly tables: Tables;
  public readonly secrets: ServiceSecrets;
  public readonly queues: TaskQueues;
  public readonly api: Api;
  public readonly observability: Observability;
  /** The example runner, unless `exampleRunner` is false. */
  public readonly exampleRunner?: TaskRunner;

  constructor(scope: Construct, id: string, props: SessionsStackProps) {
    super(scope, id, props);
    const { stage } = props;
    this.tables = new Tables(this, "Tables", {
      stage,
      sessionsRemovalPolicy: props.sessionsRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.secrets = new ServiceSecrets(this, "Secrets", {
      stage,
      ...(props.existingSecretArns ? { existingSecretArns: props.existingSecretArns } : {}),
    });
    this.queues = new TaskQueues(this, "Queues", { stage });
    this.api = new Api(this, "Api", {
      stage,
      tables: this.tables,
      secrets: this.secrets,
      queues: this.queues,
      // Logs of a production stage outlive the stack; dev stages clean up after themselves.
      logRemovalPolicy: stage === "prod" ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      ...optional({
        rateLimit: props.apiRateLimit,
        burstLimit: props.apiBurstLimit,
        publicBaseUrl: props.publicBaseUrl,
        logLevel: props.logLevel,
        reservedConcurrency: props.reservedConcurrency,
        sessionTtlMs: props.sessionTtlMs,
      }),
    });
    if (props.exampleRunner !== false) {
      this.exampleRunner = new TaskRunner(this, "ExampleRunner", {
        name: "example-runner",
        entry: EXAMPLE_RUNNER_ENTRY,
        queue: this.queues.tasks,
        publicBaseUrl: this.api.url,
        // A `sleep` may last 300 s; the rest is for delivering its result.
        timeout: Duration.seconds(330),
        logRemovalPolicy: stage === "prod" ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
        ...optional({
          batchSize: props.taskRunnerBatchSize,
          maxConcurrency: props.taskRunnerMaxConcurrency,
          logLevel: props.logLevel,
        }),
      });
    }
    this.observability = new Observability(this, "Observability", {
      stage,
      api: this.api,
      tables: this.tables,
      queues: this.queues,
      taskRunners: this.exampleRunner ? [this.exampleRunner] : [],
      ...optional({
        callbackAfterExpiryThreshold: props.callbackAfterExpiryAlarmThreshold,
        alarmEmail: props.alarmEmail,
      }),
    });
  }
}

/** Drops undefined values, so construct defaults apply. */
const optional = <T extends Record<string, unknown>>(values: T): Partial<T> =>
  Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
