import { RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { Tables } from "./constructs/tables.js";

/** Properties of {@link SessionsStack}. */
export interface SessionsStackProps extends StackProps {
  /** Deployment stage name (`dev`, `prod`, ...). */
  readonly stage: string;
  /**
   * Removal behaviour of the sessions table.
   * @default RemovalPolicy.DESTROY
   */
  readonly sessionsRemovalPolicy?: RemovalPolicy;
}

/** The whole service: tables, API, queues, alarms. */
export class SessionsStack extends Stack {
  public readonly tables: Tables;

  constructor(scope: Construct, id: string, props: SessionsStackProps) {
    super(scope, id, props);
    this.tables = new Tables(this, "Tables", {
      stage: props.stage,
      sessionsRemovalPolicy: props.sessionsRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
  }
}
