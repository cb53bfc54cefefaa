import type { Clock } from "./clock.js";
import type { ConversationStore } from "./conversation-store.js";
import { DeadlineExceededError, ServiceUnavailableError } from "./errors.js";
import { errorBody, type HttpRequest } from "./http.js";
import { withoutUndefined } from "./objects.js";
import type { Outcome } from "./outcomes.js";
import type { ParkedEvent, Parker } from "./parking.js";
import { errorName, interpretPostCallEvent, isRecord, type PostCallEvent } from "./post-call-payload.js";
import type { AppLogger } from "./powertools.js";
import type { Secrets } from "./secrets.js";
import type { SessionStore } from "./session-store.js";
import { SIGNATURE_HEADER, verifyWebhookSignature } from "./webhook-signature.js";

/** What the post-call webhook needs. */
export interface PostCallDeps {
  readonly conversations: ConversationStore;
  /** The end of the call ends the conversation's active session. */
  readonly sessions: Pick<SessionStore, "end">;
  readonly secrets: Secrets;
  readonly parker: Parker;
  readonly now: Clock;
  readonly logger: AppLogger;
}

/** What storing an already verified event needs (the webhook and the replay of parked events). */
export type PostCallStoreDeps = Pick<PostCallDeps, "conversations">;

// ---------------------------------------------------------------------------------------------
// Storing. Every write is an idempotent upsert keyed by the payload, so a retried or replayed
// event stores once. Nothing here looks at the session: history does not depend on it.
// ---------------------------------------------------------------------------------------------

type StorableEvent = Extract<PostCallEvent, { kind: "transcription" | "initiation_failure" }>;

/** Writes a verified event into the conversation's history; returns the keys to log. */
export const storePostCallEvent = async (
  deps: PostCallStoreDeps,
  event: StorableEvent,
  options: { readonly timeIsUp?: () => boolean } = {},
): Promise<Record<string, unknown>> => {
  const { conversationId } = event;
  // Read first so other events' facts are merged, not overwritten, in the meta `call` map.
  const meta = await deps.conversations.getMeta(conversationId);
  const previousCall = meta?.call ?? {};
  const agent = event.agentId ? { agentId: event.agentId } : {};
  if (event.kind === "transcription") {
    await deps.conversations.appendMessages(conversationId, event.messages, options);
    await deps.conversations.updateCallFacts(conversationId, {
      status: event.status,
      call: { ...previousCall, ...event.call },
      ...agent,
      // Stored: no reconciliation needs to fetch it (webhook and reconciliation alike).
      leaveBacklog: "transcript_stored",
    });
    return {
      conversationId,
      eventType: event.eventType,
      lines: event.messages.length - 1,
      callSuccessful: event.call.callSuccessful,
    };
  }
  // Idempotent on conversation + type even if a re-send carried another event_timestamp.
  const recorded = previousCall.initiationFailure;
  const recordedAtMs =
    isRecord(recorded) && typeof recorded.failedAtMs === "number" ? recorded.failedAtMs : undefined;
  const atMs = recordedAtMs ?? event.atMs;
  await deps.conversations.appendMessages(conversationId, [
    {
      kind: "call_initiation_failure",
      atMs,
      id: "initiation-failure",
      text: String(event.failure.failureReason),
      data: event.failure,
    },
  ]);
  await deps.conversations.updateCallFacts(conversationId, {
    status: "failed",
    call: {
      ...previousCall,
      initiationFailure: { ...event.failure, failedAt: new Date(atMs).toISOString(), failedAtMs: atMs },
    },
    ...agent,
    // The call never started, so no transcript will ever exist to reconcile.
    leaveBacklog: "initiation_failed",
  });
  return { conversationId, eventType: event.eventType, failureReason: event.failure.failureReason };
};

/** Without a Lambda context (the local server): API Gateway cuts every request at 30 s. */
const ANSWER_WITHIN_MS = 29_000;
/** Kept back from the history write to park the event (one SQS message) and answer. */
const PARK_MARGIN_MS = 5_000;

/**
 * `POST /webhooks/elevenlabs/post-call`. A bad or missing signature is a 401 and nothing is
 * stored. A correctly signed event is never answered with a 4xx (ElevenLabs disables a webhook
 * after repeated failures): it is stored, ignored, or, when storage fails, parked for replay.
 * Only when parking fails too is it a 503, so ElevenLabs' retry can deliver it again.
 */
export const receivePostCallWebhook = async (deps: PostCallDeps, request: HttpRequest): Promise<Outcome> => {
  const receivedAtMs = deps.now();
  const check = verifyWebhookSignature(
    request.rawBody,
    request.headers[SIGNATURE_HEADER],
    await deps.secrets.versions("webhookSecret"),
    receivedAtMs,
  );
  if (!check.valid) {
    return {
      kind: "webhook_signature_rejected",
      body: errorBody(
        "invalid_signature",
        "The ElevenLabs-Signature header is missing, expired or does not match the body.",
      ),
      log: { reason: check.reason, bodyBytes: request.rawBody.length },
    };
  }
  if (check.matched === "previous")
    deps.logger.info("Caller used the previous secret value", {
      secret: "webhookSecret",
      matched: "previous",
    });
  const rawBody = request.rawBody.toString("utf8");
  const receivedAt = new Date(receivedAtMs).toISOString();
  const event = interpretSafely(rawBody, receivedAtMs, deps.logger);
  const about = { eventType: event.eventType, conversationId: event.conversationId, receivedAt };

  if (event.kind === "ignored") {
    return { kind: "post_call_ignored", body: { status: "ignored", eventType: event.eventType }, log: about };
  }
  if (event.kind === "unusable") {
    // Kept anyway (best effort), so a payload change on ElevenLabs' side loses nothing.
    const parked = await tryPark(deps.parker, { receivedAt, rawBody, reason: `unusable: ${event.problem}` });
    return {
      kind: "webhook_unusable",
      body: { status: "unusable", message: "The event was received but could not be interpreted." },
      log: { ...about, problem: event.problem, parked: parked.ok, parker: deps.parker.kind },
    };
  }
  // The call is over: its session ends now (before storing, so a callback answered after this
  // webhook's answer never counts as delivered), whether or not the history write succeeds.
  const sessionEnded = await endSession(deps, event.conversationId, about);
  try {
    // Stop writing while there is still time to park the event and answer 200: a transcript the
    // table cannot take in time (throttled, or tens of thousands of lines) is parked, not lost to
    // a Lambda timeout that ElevenLabs would count as a failed delivery.
    const stopAtMs = receivedAtMs + (request.remainingMs ?? ANSWER_WITHIN_MS) - PARK_MARGIN_MS;
    const stored = await storePostCallEvent(deps, event, { timeIsUp: () => deps.now() >= stopAtMs });
    const kind = event.kind === "transcription" ? "post_call_stored" : "call_initiation_failure_recorded";
    return {
      kind,
      body: { status: "stored", eventType: event.eventType, conversationId: event.conversationId },
      log: { ...stored, receivedAt, sessionEnded },
    };
  } catch (error) {
    return parkUnstored(deps, { ...about, sessionEnded }, { receivedAt, rawBody }, error);
  }
};

/**
 * Ends the conversation's session if it is active (`call_ended`). A failure here is logged and
 * does not stop the event from being stored: the window still closes at its expiry.
 */
const endSession = async (
  deps: PostCallDeps,
  conversationId: string,
  about: Record<string, unknown>,
): Promise<boolean> => {
  try {
    return await deps.sessions.end(conversationId, "call_ended");
  } catch (error) {
    deps.logger.warn("The call ended but its session could not be ended; it closes at its expiry", {
      ...about,
      error: errorName(error),
    });
    return false;
  }
};

/**
 * Interprets a verified body inside the webhook's protected path: a payload the rules did not
 * foresee becomes `unusable` (parked for a person, answered 200), never a 500 that ElevenLabs
 * would retry until it disables the webhook.
 */
const interpretSafely = (rawBody: string, receivedAtMs: number, logger?: AppLogger): PostCallEvent => {
  try {
    return interpretPostCallEvent(rawBody, receivedAtMs);
  } catch (error) {
    logger?.error("Interpreting a signed post-call event failed unexpectedly", { error: errorName(error) });
    return { kind: "unusable", problem: `interpretation failed: ${errorName(error)}` };
  }
};

const parkUnstored = async (
  deps: PostCallDeps,
  about: Record<string, unknown>,
  event: Omit<ParkedEvent, "reason">,
  error: unknown,
): Promise<Outcome> => {
  const transient = error instanceof ServiceUnavailableError;
  if (!transient) deps.logger.error("Storing a post-call event failed unexpectedly", { ...about, error });
  const reason =
    error instanceof DeadlineExceededError
      ? "storage_too_slow"
      : transient
        ? "storage_unavailable"
        : `storage_failed: ${errorName(error)}`;
  const parked = await tryPark(deps.parker, { ...event, reason });
  if (!parked.ok) {
    deps.logger.error("Post-call event could be neither stored nor parked; ElevenLabs must retry it", {
      ...about,
      reason,
      parker: deps.parker.kind,
      parkError: parked.error,
    });
    throw new ServiceUnavailableError("The event could not be stored right now. Please retry shortly.", 5);
  }
  return {
    kind: "webhook_parked",
    body: { status: "parked", eventType: about.eventType, conversationId: about.conversationId },
    log: { ...about, reason, parker: deps.parker.kind },
  };
};

const tryPark = async (
  parker: Parker,
  event: ParkedEvent,
): Promise<{ ok: true } | { ok: false; error: string }> => {
  try {
    await parker.park(event);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: `${errorName(error)}: ${error instanceof Error ? error.message : ""}` };
  }
};

/** What replaying one parked event did. */
export interface ReplayResult {
  readonly receivedAt: string;
  readonly outcome: "stored" | "ignored" | "unusable" | "failed";
  /**
   * Whether replaying it again cannot help: `unusable` events and storage failures other than
   * the database being unavailable. Those are set aside for a person, never retried forever.
   */
  readonly permanent?: boolean;
  readonly eventType?: string;
  readonly conversationId?: string;
  /** Why it was not stored (`unusable` and `failed`). */
  readonly reason?: string;
}

/**
 * Re-applies parked events through the webhook's own interpretation and storage, oldest first.
 * Signatures are not checked again: events are only parked after their signature was verified.
 * Idempotent, so replaying an event that was stored meanwhile changes nothing. Never throws for
 * one event: a failure is reported so the caller keeps that event parked.
 */
export const replayParked = async (
  deps: PostCallStoreDeps,
  events: readonly ParkedEvent[],
): Promise<ReplayResult[]> => {
  const results: ReplayResult[] = [];
  for (const parked of events) {
    const receivedAtMs = Date.parse(parked.receivedAt);
    const event: PostCallEvent = Number.isFinite(receivedAtMs)
      ? interpretSafely(parked.rawBody, receivedAtMs)
      : { kind: "unusable", problem: "receivedAt is not a date" };
    const about = withoutUndefined({
      receivedAt: parked.receivedAt,
      eventType: event.eventType,
      conversationId: event.conversationId,
    }) as Pick<ReplayResult, "receivedAt" | "eventType" | "conversationId">;
    if (event.kind === "ignored") results.push({ ...about, outcome: "ignored" });
    else if (event.kind === "unusable")
      results.push({ ...about, outcome: "unusable", reason: event.problem, permanent: true });
    else {
      try {
        await storePostCallEvent(deps, event);
        results.push({ ...about, outcome: "stored" });
      } catch (error) {
        const permanent = !(error instanceof ServiceUnavailableError);
        results.push({ ...about, outcome: "failed", reason: errorName(error), permanent });
      }
    }
  }
  return results;
};
