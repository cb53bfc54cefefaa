/**
 * What the Lambda bundles use instead of `@smithy/core/event-streams` (esbuild alias, see
 * `lib/bundling.ts`). The SDK's HTTP protocol loads that module with a dynamic `import()` only
 * when an operation streams events (Kinesis, Transcribe, Bedrock...); DynamoDB and SQS have no
 * such operation, yet a single-file bundle inlines the module: about 14 KB of every function
 * with an AWS client. Should an event-stream operation ever be called from a bundle, it fails
 * with this message instead of a confusing TypeError.
 */

const MESSAGE =
  "Event streams are not bundled: lib/bundling.ts aliases @smithy/core/event-streams away because " +
  "no DynamoDB or SQS operation uses them. Remove the alias before calling an event-stream operation.";

/** Thrown by every export: no bundled client may reach an event-stream operation. */
export class EventStreamsNotBundledError extends Error {
  override readonly name = "EventStreamsNotBundledError";
}

/** Stands in for the SDK's serde class, which `HttpProtocol` constructs. */
export class EventStreamSerde {
  constructor() {
    throw new EventStreamsNotBundledError(MESSAGE);
  }
}

/** Stands in for the SDK's marshaller provider, which `HttpProtocol` calls first. */
export const eventStreamSerdeProvider = (): never => {
  throw new EventStreamsNotBundledError(MESSAGE);
};
