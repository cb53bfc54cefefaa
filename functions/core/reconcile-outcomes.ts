/**
 * Every outcome of reconciling one conversation: its log line and its metric. Data only (no SDK
 * imports), because the CDK stack imports it at synth time for the alarms.
 */

/** What happened to one conversation in a pass. */
export type ReconcileOutcomeKind =
  | "stored"
  | "already_stored"
  | "still_processing"
  | "not_found"
  | "failed"
  | "auth_error"
  | "transient_error"
  | "malformed_answer"
  | "gave_up"
  | "skipped"
  | "store_failed"
  | "error";

interface OutcomeSpec {
  readonly level: "debug" | "info" | "warn" | "error";
  /** A constant sentence on-call can grep for. */
  readonly message: string;
  readonly metric: string;
}

/** Every outcome's log line and metric, in one place. */
export const RECONCILE_OUTCOMES: Readonly<Record<ReconcileOutcomeKind, OutcomeSpec>> = {
  stored: {
    level: "info",
    message: "Transcript reconciled from ElevenLabs and stored",
    metric: "ReconcileStored",
  },
  already_stored: {
    level: "info",
    message: "Transcript already stored (its webhook arrived); nothing fetched",
    metric: "ReconcileAlreadyStored",
  },
  still_processing: {
    level: "info",
    message: "ElevenLabs is still processing the conversation; retrying later",
    metric: "ReconcileStillProcessing",
  },
  not_found: {
    level: "warn",
    message: "ElevenLabs does not know the conversation; recorded, no more attempts",
    metric: "ReconcileNotFound",
  },
  failed: {
    level: "warn",
    message: "ElevenLabs reports the conversation failed; recorded, no more attempts",
    metric: "ReconcileFailed",
  },
  auth_error: {
    level: "error",
    message:
      "ElevenLabs refused the API key; transcripts cannot be reconciled until the elevenlabs-api-key secret is fixed",
    metric: "ReconcileAuthError",
  },
  transient_error: {
    level: "warn",
    message: "ElevenLabs could not answer now; retrying with back-off",
    metric: "ReconcileTransientError",
  },
  malformed_answer: {
    level: "warn",
    message: "ElevenLabs answered in an unexpected shape; nothing stored, retrying later",
    metric: "ReconcileMalformedAnswer",
  },
  gave_up: {
    level: "error",
    message: "Reconciliation gave up on a transcript after repeated failures",
    metric: "ReconcileGaveUp",
  },
  skipped: {
    level: "debug",
    message: "Conversation changed since it was read (webhook, new session or another pass); skipped",
    metric: "ReconcileSkipped",
  },
  store_failed: {
    level: "warn",
    message: "Storing a reconciled transcript failed; it stays due and is retried",
    metric: "ReconcileStoreFailed",
  },
  error: {
    level: "error",
    message: "Reconciling a conversation failed unexpectedly; it is due again after its lease",
    metric: "ReconcileError",
  },
};
