import { CfnOutput, Duration } from "aws-cdk-lib";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";

/** Properties of {@link TaskQueues}. */
export interface TaskQueuesProps {
  /** Deployment stage, used in output descriptions. */
  readonly stage: string;
  /**
   * How long a task message stays invisible after a runner received it. A runner that crashes
   * lets the task reappear after this. It must be at least the runner's Lambda timeout (the example
   * runner's is 330 s, for a 300 s `sleep`), or Lambda refuses the subscription.
   * @default Duration.minutes(6)
   */
  readonly taskVisibilityTimeout?: Duration;
  /**
   * Receives of a task message before it moves to the task dead-letter queue.
   * @default 5
   */
  readonly maxReceiveCount?: number;
}

/**
 * The queues of the service, each with its dead-letter queue, SQS-managed encryption and a
 * policy that refuses non-TLS requests:
 * - the task queue, where `call-tool` hands async work to the task runners;
 * - the parking queue, where `post-call-webhook` parks events it could not store, for replay.
 */
export class TaskQueues extends Construct {
  /** Task messages (task id, tool, params, callback URL, per-task token) for the runners. */
  public readonly tasks: Queue;
  /** Task messages the runners failed `maxReceiveCount` times. */
  public readonly tasksDeadLetter: Queue;
  /** Post-call events that could not be stored; replayed by ops. */
  public readonly parking: Queue;
  /** Parked events a replay failed to process repeatedly. */
  public readonly parkingDeadLetter: Queue;

  constructor(scope: Construct, id: string, props: TaskQueuesProps) {
    super(scope, id);
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    const secure = { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true } as const;

    this.tasksDeadLetter = new Queue(this, "TasksDeadLetter", {
      ...secure,
      retentionPeriod: Duration.days(14),
    });
    this.tasks = new Queue(this, "Tasks", {
      ...secure,
      visibilityTimeout: props.taskVisibilityTimeout ?? Duration.minutes(6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.tasksDeadLetter, maxReceiveCount },
    });

    this.parkingDeadLetter = new Queue(this, "ParkingDeadLetter", {
      ...secure,
      retentionPeriod: Duration.days(14),
    });
    // Parked events are conversation history that is not stored anywhere else: keep them as long as SQS can.
    this.parking = new Queue(this, "Parking", {
      ...secure,
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: this.parkingDeadLetter, maxReceiveCount },
    });

    new CfnOutput(scope, "TaskQueueUrl", {
      value: this.tasks.queueUrl,
      description: `Task queue (${props.stage}): task runners receive from it`,
    });
    new CfnOutput(scope, "TaskQueueArn", {
      value: this.tasks.queueArn,
      description:
        "Task queue ARN, to grant the task runners sqs:ReceiveMessage/DeleteMessage/ChangeMessageVisibility",
    });
    new CfnOutput(scope, "TaskDeadLetterQueueUrl", {
      value: this.tasksDeadLetter.queueUrl,
      description: "Tasks the runners failed repeatedly",
    });
    new CfnOutput(scope, "ParkingQueueUrl", {
      value: this.parking.queueUrl,
      description: `Post-call events that could not be stored (${props.stage}); replay them`,
    });
    new CfnOutput(scope, "ParkingQueueArn", {
      value: this.parking.queueArn,
      description: "Parking queue ARN",
    });
  }
}
