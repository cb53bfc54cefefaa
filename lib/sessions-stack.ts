import { RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { SecretName } from "../functions/core/routes.js";
import { Api } from "./constructs/api.js";
import { Observability } from "./constructs/observability.js";
import { ServiceSecrets } from "./constructs/secrets.js";
import { Tables } from "./constructs/tables.js";
import { TaskQueues } from "./constructs/task-queues.js";

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
}

/** The whole service: tables, secrets, queues, the API with its functions, alarms. */
export class SessionsStack extends Stack {
  public readonly tables: Tables;
  public readonly secrets: ServiceSecrets;
  public readonly queues: TaskQueues;
  public readonly api: Api;
  public readonly observability: Observability;

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
    this.observability = new Observability(this, "Observability", {
      stage,
      api: this.api,
      tables: this.tables,
      queues: this.queues,
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
