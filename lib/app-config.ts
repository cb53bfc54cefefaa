import { RemovalPolicy } from "aws-cdk-lib";
import type { Node } from "constructs";

/** Deployment settings read from CDK context (`cdk.json` or `-c key=value`). */
export interface AppConfig {
  readonly stage: string;
  readonly sessionsRemovalPolicy: RemovalPolicy;
}

const STAGE_PATTERN = /^[a-z][a-z0-9-]{0,19}$/;

/**
 * Reads and validates the context once, failing synth with a clear message on bad input.
 * `sessionsTableRemoval` is `destroy` or `retain`; `prod` defaults to `retain`.
 */
export const readAppConfig = (node: Node): AppConfig => {
  const stage = String(node.tryGetContext("stage") ?? "dev");
  if (!STAGE_PATTERN.test(stage)) {
    throw new Error(`Context "stage" must match ${STAGE_PATTERN} (got "${stage}").`);
  }
  const removal = String(
    node.tryGetContext("sessionsTableRemoval") ?? (stage === "prod" ? "retain" : "destroy"),
  );
  if (removal !== "destroy" && removal !== "retain") {
    throw new Error(`Context "sessionsTableRemoval" must be "destroy" or "retain" (got "${removal}").`);
  }
  return {
    stage,
    sessionsRemovalPolicy: removal === "retain" ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  };
};
