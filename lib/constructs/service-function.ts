import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import type { ITableV2 } from "aws-cdk-lib/aws-dynamodb";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import {
  Architecture,
  type CfnFunction,
  ParamsAndSecretsLayerVersion,
  ParamsAndSecretsLogLevel,
  ParamsAndSecretsVersions,
  Runtime,
  Tracing,
} from "aws-cdk-lib/aws-lambda";
import { type BundlingOptions, NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { METRICS_NAMESPACE, SERVICE_NAME } from "../../functions/core/service-names.js";
import { APP_DEFAULTS } from "../app-config.js";
import { LAMBDA_BUNDLE } from "../bundling.js";

/** Where the Lambda code lives: `functions/<name>/handler.ts`. */
const FUNCTIONS_DIR = fileURLToPath(new URL("../../functions/", import.meta.url));
/** The project root, so esbuild resolves packages and the lock file from there. */
const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The Lambda runtime of every function; the bundle targets the same Node version. */
export const FUNCTION_RUNTIME = Runtime.NODEJS_24_X;

/**
 * `LAMBDA_BUNDLE` (lib/bundling.ts) in `NodejsFunction` terms. The alias goes through
 * `esbuildArgs` (`--alias:from=to`), the one way NodejsFunction passes it to esbuild.
 */
export const SERVICE_FUNCTION_BUNDLING = {
  format: OutputFormat.ESM,
  target: LAMBDA_BUNDLE.target,
  minify: LAMBDA_BUNDLE.minify,
  // Linked map files in the asset, for offline symbolication; never loaded at run time.
  sourceMap: true,
  sourcesContent: LAMBDA_BUNDLE.sourcesContent,
  mainFields: [...LAMBDA_BUNDLE.mainFields],
  // Bundle the AWS SDK too: the deployed code runs exactly the SDK versions that were tested.
  externalModules: [],
  banner: LAMBDA_BUNDLE.banner,
  esbuildArgs: {
    "--alias": Object.entries(LAMBDA_BUNDLE.alias).map(([from, to]) => `${from}=${to}`),
  },
} satisfies BundlingOptions;

/** How much of a table a function may touch, as declared in the route table. */
export type TableAccess = "read" | "write";

/**
 * A table together with what each access level may do to it. The actions come from the
 * commands its store issues, so a binding grants exactly those and nothing more.
 */
export interface TableBinding {
  readonly table: ITableV2;
  /** Environment variable that carries the table name (see `functions/core/config.ts`). */
  readonly envVar: string;
  /** IAM actions per access level. `TransactWriteItems` is authorized per item action, so it never appears. */
  readonly actions: Readonly<Record<TableAccess, readonly string[]>>;
  /** Indexes queried at every access level; granted by exact index ARN, never `index/*`. */
  readonly queryIndexes?: readonly string[];
}

/** Properties of {@link ServiceFunction}. */
export interface ServiceFunctionProps {
  /** The function's folder under `functions/` (the route name, e.g. `register-session`). */
  readonly name: string;
  /**
   * The handler file, for code that does not live in `functions/<name>/` (task runners).
   * @default `functions/<name>/handler.ts`
   */
  readonly entry?: string;
  /**
   * Adds the Parameters and Secrets extension layer (how functions read secrets without the SDK).
   * @default true
   */
  readonly secretsExtension?: boolean;
  /** One line shown in the Lambda console. */
  readonly description?: string;
  /**
   * Memory in MB (CPU scales with it).
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Hard limit of one invocation. The SDK retry budget (about 8 s) fits inside it.
   * @default Duration.seconds(10)
   */
  readonly timeout?: Duration;
  /**
   * How long the function's logs are kept.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Powertools log level (`POWERTOOLS_LOG_LEVEL`).
   * @default APP_DEFAULTS.logLevel
   */
  readonly logLevel?: string;
  /**
   * Reserved concurrency, to cap how hard the function can hit DynamoDB. Reserving takes
   * concurrency away from the rest of the account, so it is off unless asked for.
   * @default - unreserved
   */
  readonly reservedConcurrency?: number;
  /**
   * Extra environment variables.
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
}

/**
 * One Lambda function with the service's defaults: Node 24 on ARM64, bundled locally by esbuild
 * with `LAMBDA_BUNDLE` (ESM, minified, env-only credentials, source maps as files), X-Ray active tracing, Powertools settings, an explicit log group
 * with retention and its own role. Starts with no access at all: `bindTable`, `bindQueue` and
 * `bindSecret` each grant exactly what one dependency needs and set its env var in the same call.
 */
export class ServiceFunction extends Construct {
  /** The Lambda function. */
  public readonly handler: NodejsFunction;
  /** Its log group (the function writes nowhere else). */
  public readonly logGroup: LogGroup;
  /** Its execution role: log writing and X-Ray, plus whatever the binds add. */
  public readonly role: Role;
  /** The function's folder name under `functions/`. */
  public readonly name: string;

  constructor(scope: Construct, id: string, props: ServiceFunctionProps) {
    super(scope, id);
    this.name = props.name;
    const entry = props.entry ?? `${FUNCTIONS_DIR}${props.name}/handler.ts`;
    if (!existsSync(entry)) {
      throw new Error(`Function "${props.name}" has no handler: expected ${entry}`);
    }

    this.logGroup = new LogGroup(this, "Logs", {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // An explicit role instead of AWSLambdaBasicExecutionRole: that managed policy may write to
    // any log group, this role only to the function's own.
    this.role = new Role(this, "Role", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `Execution role of ${props.name}`,
    });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.handler = new NodejsFunction(this, "Function", {
      entry,
      handler: "handler",
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      description: props.description?.slice(0, 256),
      runtime: FUNCTION_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(10),
      tracing: Tracing.ACTIVE,
      role: this.role,
      // Secrets are read through the Parameters and Secrets extension (a local HTTP cache), so no
      // function bundles the Secrets Manager SDK client. Values are cached for 5 minutes.
      ...(props.secretsExtension === false
        ? {}
        : {
            paramsAndSecrets: ParamsAndSecretsLayerVersion.fromVersion(ParamsAndSecretsVersions.V1_0_103, {
              cacheSize: 10,
              secretsManagerTtl: Duration.minutes(5),
              logLevel: ParamsAndSecretsLogLevel.WARN,
            }),
          }),
      logGroup: this.logGroup,
      ...(props.reservedConcurrency !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrency }
        : {}),
      // No NODE_OPTIONS=--enable-source-maps: parsing the map costs every cold start; the map stays
      // in the asset for offline symbolication (README).
      environment: {
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? APP_DEFAULTS.logLevel,
        ...props.environment,
      },
      bundling: SERVICE_FUNCTION_BUNDLING,
    });
    // CDK adds DependsOn on the role and its policy to every function; the Role GetAtt already
    // implies the first, which cfn-lint reports (W3005) on every function. Harmless, so ignored here only.
    (this.handler.node.defaultChild as CfnFunction).addMetadata("cfn-lint", {
      config: { ignore_checks: ["W3005"] },
    });
    Validations.of(this.role).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "Only xray:PutTraceSegments and xray:PutTelemetryRecords, added by active tracing: X-Ray has no resource-level permissions for them. Every other statement names exact ARNs (asserted by the infra tests).",
    });
  }

  /**
   * Grants the actions of `access` on the table (and its queried indexes, by exact ARN) and sets
   * the table-name variable. Without `access` only the name is set: `loadConfig` needs both
   * table names at cold start, and a name grants nothing.
   */
  bindTable(binding: TableBinding, access?: TableAccess): this {
    this.handler.addEnvironment(binding.envVar, binding.table.tableName);
    if (!access) return this;
    const indexArns = (binding.queryIndexes ?? []).map((index) => `${binding.table.tableArn}/index/${index}`);
    const actions = binding.actions[access];
    this.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: [...actions], resources: [binding.table.tableArn] }),
    );
    if (indexArns.length > 0 && actions.includes("dynamodb:Query")) {
      this.role.addToPrincipalPolicy(
        new PolicyStatement({ actions: ["dynamodb:Query"], resources: indexArns }),
      );
    }
    return this;
  }

  /** Grants `sqs:SendMessage` (the only SQS call the dispatcher and the parker make) and sets the URL variable. */
  bindQueue(queue: IQueue, envVar: string): this {
    this.handler.addEnvironment(envVar, queue.queueUrl);
    this.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ["sqs:SendMessage"], resources: [queue.queueArn] }),
    );
    if (queue.encryptionMasterKey)
      queue.encryptionMasterKey.grant(this.role, "kms:GenerateDataKey", "kms:Decrypt");
    return this;
  }

  /** Grants `secretsmanager:GetSecretValue` on this one secret and sets `envVar` to its ARN. */
  bindSecret(secret: ISecret, envVar: string): this {
    this.handler.addEnvironment(envVar, secret.secretArn);
    this.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ["secretsmanager:GetSecretValue"], resources: [secret.secretArn] }),
    );
    if (secret.encryptionKey) secret.encryptionKey.grantDecrypt(this.role);
    return this;
  }

  /** Sets one environment variable. */
  addEnvironment(key: string, value: string): this {
    this.handler.addEnvironment(key, value);
    return this;
  }
}
