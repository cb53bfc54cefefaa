// Data only, no imports: lib/ (the CDK alarms and dashboard) reads the metric names at synth.

export type Level = "debug" | "info" | "warn";

export interface OutcomeSpec {
  readonly status: number;
  readonly level: Level;
  /** A constant sentence on-call can grep for; data goes in keys. */
  readonly message: string;
  /** The CloudWatch metric counted once per occurrence. */
  readonly metric: string;
}

/**
 * Every outcome of every route, in one place: its status code, its log line and its metric.
 * Expiry is never an error: it is a 2xx (or the documented 410) with a WARN line.
 */
export const OUTCOMES = {
  // DEBUG: SessionStore.set already writes the INFO line (registered or refreshed, with the window).
  session_registered: {
    status: 201,
    level: "debug",
    message: "Session registered",
    metric: "SessionRegistered",
  },
  session_active: {
    status: 200,
    level: "info",
    message: "Session read: active",
    metric: "SessionReadActive",
  },
  session_expired: {
    status: 410,
    level: "info",
    message: "Session read: expired",
    metric: "SessionReadExpired",
  },
  session_not_found: {
    status: 404,
    level: "info",
    message: "Session read: never registered",
    metric: "SessionReadMissing",
  },
  task_accepted: {
    status: 200,
    level: "info",
    message: "Tool call accepted: task recorded and dispatched",
    metric: "TaskAccepted",
  },
  task_completed_inline: {
    status: 200,
    level: "info",
    message: "Tool call answered with its task's result: the task finished within the inline wait",
    metric: "TaskCompletedInline",
  },
  tool_session_expired: {
    status: 200,
    level: "warn",
    message: "Tool called after session expired; nothing dispatched",
    metric: "ToolCallAfterExpiry",
  },
  tool_session_not_found: {
    status: 200,
    level: "warn",
    message: "Tool called for a conversation with no session; nothing dispatched",
    metric: "ToolCallWithoutSession",
  },
  task_results_none_yet: {
    status: 200,
    level: "info",
    message: "Agent polled its task results before any session started",
    metric: "TaskResultsPolledNoSession",
  },
  task_results_listed: {
    status: 200,
    level: "info",
    message: "Agent polled its task results",
    metric: "TaskResultsPolled",
  },
  callback_delivered: {
    status: 200,
    level: "info",
    message: "Callback delivered to the live session",
    metric: "CallbackDelivered",
  },
  callback_delivery_failed: {
    status: 200,
    level: "warn",
    message: "Callback stored but the live push to notifyUrl failed",
    metric: "CallbackDeliveryFailed",
  },
  callback_after_expiry: {
    status: 200,
    level: "warn",
    message: "Callback arrived after session expired",
    metric: "CallbackAfterExpiry",
  },
  callback_duplicate: {
    status: 200,
    level: "info",
    message: "Duplicate callback answered with the first outcome; nothing stored or pushed again",
    metric: "CallbackDuplicate",
  },
  task_not_found: {
    status: 404,
    level: "warn",
    message: "Callback for a task that does not exist",
    metric: "CallbackTaskNotFound",
  },
  post_call_stored: {
    status: 200,
    level: "info",
    message: "Post-call transcript and analysis stored in the conversation history",
    metric: "PostCallStored",
  },
  call_initiation_failure_recorded: {
    status: 200,
    level: "info",
    message: "Call initiation failure recorded in the conversation history",
    metric: "CallInitiationFailureRecorded",
  },
  post_call_ignored: {
    status: 200,
    level: "info",
    message: "Post-call event acknowledged; its type is not stored",
    metric: "PostCallIgnored",
  },
  webhook_unusable: {
    status: 200,
    level: "warn",
    message: "Signed post-call event could not be interpreted; acknowledged, parked when possible",
    metric: "PostCallUnusable",
  },
  webhook_parked: {
    status: 200,
    level: "warn",
    message: "Post-call event could not be stored; parked for replay",
    metric: "PostCallParked",
  },
  webhook_signature_rejected: {
    status: 401,
    level: "warn",
    message: "Post-call webhook rejected: missing or invalid signature",
    metric: "WebhookSignatureRejected",
  },
  signed_url_issued: {
    status: 200,
    level: "info",
    message: "Signed conversation URL issued",
    metric: "SignedUrlIssued",
  },
  signed_url_upstream_auth_failed: {
    status: 502,
    level: "warn",
    message: "ElevenLabs rejected the API key while issuing a signed URL",
    metric: "SignedUrlUpstreamAuthFailed",
  },
  signed_url_upstream_failed: {
    status: 502,
    level: "warn",
    message: "ElevenLabs refused or garbled a signed URL request",
    metric: "SignedUrlUpstreamFailed",
  },
  history_read: {
    status: 200,
    level: "info",
    message: "Conversation history read",
    metric: "HistoryRead",
  },
  conversation_erased: {
    status: 200,
    level: "info",
    message: "Conversation erased: session ended, history and tasks deleted",
    metric: "ConversationErased",
  },
  conversation_not_found: {
    status: 404,
    level: "info",
    message: "Conversation history read: never seen",
    metric: "HistoryNotFound",
  },
  conversations_listed: {
    status: 200,
    level: "info",
    message: "Conversations listed",
    metric: "ConversationsListed",
  },
} as const satisfies Record<string, OutcomeSpec>;
