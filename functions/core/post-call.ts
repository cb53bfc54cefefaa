import * as z from "zod/mini";
import type { Clock } from "./clock.js";
import type { ConversationStore, MessageInput } from "./conversation-store.js";
import { ServiceUnavailableError } from "./errors.js";
import { errorBody, type HttpRequest } from "./http.js";
import { ID_PATTERN } from "./ids.js";
import { withoutUndefined } from "./objects.js";
import type { Outcome } from "./outcomes.js";
import type { ParkedEvent, Parker } from "./parking.js";
import type { AppLogger } from "./powertools.js";
import type { Secrets } from "./secrets.js";
import { formatIssues } from "./validation.js";
import { SIGNATURE_HEADER, verifyWebhookSignature } from "./webhook-signature.js";

/** What the post-call webhook needs. */
export interface PostCallDeps {
  readonly conversations: ConversationStore;
  readonly secrets: Secrets;
  readonly parker: Parker;
  readonly now: Clock;
  readonly logger: AppLogger;
}

/** What storing an already verified event needs (the webhook and the replay of parked events). */
export type PostCallStoreDeps = Pick<PostCallDeps, "conversations">;

// Caps keep every history item far below DynamoDB's 400 KB item limit.
const MAX_LINE_TEXT = 20_000;
const MAX_TOOL_TEXT = 4_000;
const MAX_TOOL_ENTRIES = 20;
const MAX_FACT_JSON = 32_000;
const MAX_LABEL = 128;

// ---------------------------------------------------------------------------------------------
// Payload shapes (ElevenLabs post-call webhooks). Loose on purpose: unknown fields are ignored,
// and only what the history needs is required, so an additive change on their side stores fine.
// ---------------------------------------------------------------------------------------------

const optionalText = z.optional(z.nullable(z.string()));
const optionalNumber = z.optional(z.nullable(z.number().check(z.gte(0))));
const looseRecord = z.optional(z.nullable(z.record(z.string(), z.unknown())));

/** The webhook envelope every post-call event shares (also the OpenAPI document's source). */
export const envelopeSchema = z.looseObject({
  type: z.string(),
  event_timestamp: optionalNumber,
  data: z.looseObject({ conversation_id: z.optional(z.unknown()) }),
});

const transcriptLineSchema = z.looseObject({
  role: z.string(),
  message: optionalText,
  time_in_call_secs: z.number().check(z.gte(0)),
  tool_calls: z.optional(z.nullable(z.array(z.unknown()))),
  tool_results: z.optional(z.nullable(z.array(z.unknown()))),
  interrupted: z.optional(z.nullable(z.boolean())),
});

export const transcriptionSchema = z.looseObject({
  conversation_id: z.string().check(z.regex(ID_PATTERN)),
  agent_id: optionalText,
  status: optionalText,
  transcript: z.nullable(z.array(transcriptLineSchema)),
  metadata: z.looseObject({
    start_time_unix_secs: z.number().check(z.gte(0)),
    call_duration_secs: optionalNumber,
    termination_reason: optionalText,
    main_language: optionalText,
  }),
  analysis: z.optional(
    z.nullable(
      z.looseObject({
        call_successful: optionalText,
        transcript_summary: optionalText,
        call_summary_title: optionalText,
        evaluation_criteria_results: looseRecord,
        data_collection_results: looseRecord,
      }),
    ),
  ),
});

export const initiationFailureSchema = z.looseObject({
  conversation_id: z.string().check(z.regex(ID_PATTERN)),
  agent_id: optionalText,
  failure_reason: optionalText,
  metadata: z.optional(z.nullable(z.looseObject({ type: optionalText, body: looseRecord }))),
});

type TranscriptionData = z.infer<typeof transcriptionSchema>;
type TranscriptLine = z.infer<typeof transcriptLineSchema>;
type InitiationFailureData = z.infer<typeof initiationFailureSchema>;

/** What a verified post-call body means for the history. Pure: decided without I/O. */
export type PostCallEvent =
  | {
      readonly kind: "transcription";
      readonly eventType: string;
      readonly conversationId: string;
      readonly agentId?: string;
      readonly status: string;
      readonly messages: MessageInput[];
      /** Meta `call` facts: summary, callSuccessful, data collection, evaluation, duration... */
      readonly call: Record<string, unknown>;
    }
  | {
      readonly kind: "initiation_failure";
      readonly eventType: string;
      readonly conversationId: string;
      readonly agentId?: string;
      /** When it failed (the event's timestamp), unless a first delivery already recorded a time. */
      readonly atMs: number;
      readonly failure: Record<string, unknown>;
    }
  | { readonly kind: "ignored"; readonly eventType: string; readonly conversationId?: string }
  | {
      readonly kind: "unusable";
      readonly eventType?: string;
      readonly conversationId?: string;
      readonly problem: string;
    };

/**
 * Interprets a verified body: transcript lines keyed `t-<index>` at
 * `start_time_unix_secs + time_in_call_secs`, one `call_analysis` line at the call's end, or a
 * `call_initiation_failure` line. Keys come only from the payload, so a re-sent event maps to the
 * same items. `post_call_audio` and unknown types are ignored; a bad body is `unusable`.
 */
export const interpretPostCallEvent = (rawBody: string, receivedAtMs: number): PostCallEvent => {
  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch {
    return { kind: "unusable", problem: "the body is not valid JSON" };
  }
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success) return unusable(undefined, undefined, formatIssues(envelope.error.issues, "body"));
  const { type, data, event_timestamp: eventTimestamp } = envelope.data;
  const eventType = label(type);
  const conversationId = validId(data.conversation_id);
  if (type === "post_call_transcription") {
    const parsed = transcriptionSchema.safeParse(data);
    if (!parsed.success)
      return unusable(eventType, conversationId, formatIssues(parsed.error.issues, "data"));
    return transcription(eventType, parsed.data);
  }
  if (type === "call_initiation_failure") {
    const parsed = initiationFailureSchema.safeParse(data);
    if (!parsed.success)
      return unusable(eventType, conversationId, formatIssues(parsed.error.issues, "data"));
    return initiationFailure(eventType, parsed.data, eventTimestamp ? eventTimestamp * 1000 : receivedAtMs);
  }
  // post_call_audio (base64 MP3) and types added later: acknowledged, never stored.
  return { kind: "ignored", eventType, ...(conversationId ? { conversationId } : {}) };
};

const unusable = (
  eventType: string | undefined,
  conversationId: string | undefined,
  issues: string[],
): PostCallEvent => ({
  kind: "unusable",
  ...(eventType ? { eventType } : {}),
  ...(conversationId ? { conversationId } : {}),
  problem: issues.slice(0, 5).join("; "),
});

const transcription = (eventType: string, data: TranscriptionData): PostCallEvent => {
  const lines = data.transcript ?? [];
  const startMs = Math.round(data.metadata.start_time_unix_secs * 1000);
  const lastLineSecs = Math.max(0, ...lines.map((l) => l.time_in_call_secs));
  const durationSecs = data.metadata.call_duration_secs ?? lastLineSecs;
  // The analysis closes the history: never before the last line, even if the duration says so.
  const endMs = startMs + Math.round(Math.max(durationSecs, lastLineSecs) * 1000);
  const analysis = data.analysis ?? undefined;
  const status = data.status ?? "done";
  const call = withoutUndefined({
    status,
    summary: analysis?.transcript_summary ?? undefined,
    summaryTitle: analysis?.call_summary_title ?? undefined,
    callSuccessful: analysis?.call_successful ?? undefined,
    dataCollectionResults: capJson(analysis?.data_collection_results ?? undefined),
    evaluationCriteriaResults: capJson(analysis?.evaluation_criteria_results ?? undefined),
    startedAt: new Date(startMs).toISOString(),
    endedAt: new Date(endMs).toISOString(),
    durationSecs,
    terminationReason: data.metadata.termination_reason ?? undefined,
    mainLanguage: data.metadata.main_language ?? undefined,
    transcriptLines: lines.length,
  });
  const messages: MessageInput[] = lines.map((line, index) => ({
    kind: "transcript",
    atMs: startMs + Math.round(line.time_in_call_secs * 1000),
    seq: index,
    id: `t-${index}`,
    role: label(line.role),
    ...(line.message ? { text: capText(line.message, MAX_LINE_TEXT) } : {}),
    data: lineData(line),
  }));
  // After every line, including lines at the very same millisecond (seq = number of lines).
  messages.push({
    kind: "call_analysis",
    atMs: endMs,
    seq: lines.length,
    id: "analysis",
    ...(call.summary ? { text: String(call.summary) } : {}),
    data: call,
  });
  return { kind: "transcription", ...identity(eventType, data), status, messages, call };
};

/** The event type, conversation and (when it is a valid id) agent an event is about. */
const identity = (
  eventType: string,
  data: { conversation_id: string; agent_id?: string | null | undefined },
) => {
  const agentId = validId(data.agent_id);
  return { eventType, conversationId: data.conversation_id, ...(agentId ? { agentId } : {}) };
};

const lineData = (line: TranscriptLine): Record<string, unknown> =>
  withoutUndefined({
    timeInCallSecs: line.time_in_call_secs,
    interrupted: line.interrupted ?? undefined,
    toolCalls: toolEntries(line.tool_calls, (c) => ({
      toolName: labelOf(c.tool_name),
      requestId: labelOf(c.request_id),
      type: labelOf(c.type),
      params: textOf(c.params_as_json, MAX_TOOL_TEXT),
      toolHasBeenCalled: boolOf(c.tool_has_been_called),
      // tool_details is left out: it repeats the request, headers included (which may hold secrets).
    })),
    toolResults: toolEntries(line.tool_results, (r) => ({
      toolName: labelOf(r.tool_name),
      requestId: labelOf(r.request_id),
      type: labelOf(r.type),
      result: textOf(r.result_value, MAX_TOOL_TEXT),
      isError: boolOf(r.is_error),
      latencySecs: typeof r.tool_latency_secs === "number" ? r.tool_latency_secs : undefined,
    })),
  });

const toolEntries = (
  entries: readonly unknown[] | null | undefined,
  pick: (entry: Record<string, unknown>) => Record<string, unknown>,
): Record<string, unknown>[] | undefined => {
  const picked = (entries ?? [])
    .slice(0, MAX_TOOL_ENTRIES)
    .filter(isRecord)
    .map((e) => withoutUndefined(pick(e)));
  return picked.length > 0 ? picked : undefined;
};

/** Fields of the Twilio or SIP failure details worth keeping (no phone numbers). */
const FAILURE_DETAILS: Readonly<Record<string, string>> = {
  sip_status_code: "sipStatusCode",
  sip_status: "sipStatus",
  error_reason: "errorReason",
  twirp_code: "twirpCode",
  call_sid: "callSid",
  CallSid: "callSid",
  CallStatus: "callStatus",
  SipResponseCode: "sipResponseCode",
  Direction: "direction",
};

const initiationFailure = (eventType: string, data: InitiationFailureData, atMs: number): PostCallEvent => {
  const body = data.metadata?.body ?? {};
  const details: Record<string, unknown> = {};
  for (const [from, to] of Object.entries(FAILURE_DETAILS)) {
    const value = body[from];
    if (typeof value === "number") details[to] = value;
    if (typeof value === "string") details[to] = capText(value, MAX_TOOL_TEXT);
  }
  return {
    kind: "initiation_failure",
    ...identity(eventType, data),
    atMs: Math.round(atMs),
    failure: withoutUndefined({
      failureReason: labelOf(data.failure_reason) ?? "unknown",
      provider: labelOf(data.metadata?.type),
      ...details,
    }),
  };
};

// ---------------------------------------------------------------------------------------------
// Storing. Every write is an idempotent upsert keyed by the payload, so a retried or replayed
// event stores once. Nothing here looks at the session: history does not depend on it.
// ---------------------------------------------------------------------------------------------

type StorableEvent = Extract<PostCallEvent, { kind: "transcription" | "initiation_failure" }>;

/** Writes a verified event into the conversation's history; returns the keys to log. */
export const storePostCallEvent = async (
  deps: PostCallStoreDeps,
  event: StorableEvent,
): Promise<Record<string, unknown>> => {
  const { conversationId } = event;
  // Read first so other events' facts are merged, not overwritten, in the meta `call` map.
  const meta = await deps.conversations.getMeta(conversationId);
  const previousCall = meta?.call ?? {};
  const agent = event.agentId ? { agentId: event.agentId } : {};
  if (event.kind === "transcription") {
    await deps.conversations.appendMessages(conversationId, event.messages);
    await deps.conversations.updateCallFacts(conversationId, {
      status: event.status,
      call: { ...previousCall, ...event.call },
      ...agent,
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
  });
  return { conversationId, eventType: event.eventType, failureReason: event.failure.failureReason };
};

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
    await deps.secrets.get("webhookSecret"),
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
  const rawBody = request.rawBody.toString("utf8");
  const receivedAt = new Date(receivedAtMs).toISOString();
  const event = interpretPostCallEvent(rawBody, receivedAtMs);
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
  try {
    const stored = await storePostCallEvent(deps, event);
    const kind = event.kind === "transcription" ? "post_call_stored" : "call_initiation_failure_recorded";
    return {
      kind,
      body: { status: "stored", eventType: event.eventType, conversationId: event.conversationId },
      log: { ...stored, receivedAt },
    };
  } catch (error) {
    return parkUnstored(deps, about, { receivedAt, rawBody }, error);
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
  const reason = transient ? "storage_unavailable" : `storage_failed: ${errorName(error)}`;
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
      ? interpretPostCallEvent(parked.rawBody, receivedAtMs)
      : { kind: "unusable", problem: "receivedAt is not a date" };
    const about = withoutUndefined({
      receivedAt: parked.receivedAt,
      eventType: event.eventType,
      conversationId: event.conversationId,
    }) as Pick<ReplayResult, "receivedAt" | "eventType" | "conversationId">;
    if (event.kind === "ignored") results.push({ ...about, outcome: "ignored" });
    else if (event.kind === "unusable")
      results.push({ ...about, outcome: "unusable", reason: event.problem });
    else {
      try {
        await storePostCallEvent(deps, event);
        results.push({ ...about, outcome: "stored" });
      } catch (error) {
        results.push({ ...about, outcome: "failed", reason: errorName(error) });
      }
    }
  }
  return results;
};

// ---------------------------------------------------------------------------------------------

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const validId = (value: unknown): string | undefined =>
  typeof value === "string" && ID_PATTERN.test(value) ? value : undefined;

const capText = (value: string, max: number): string =>
  value.length <= max ? value : `${value.slice(0, max)}…[truncated ${value.length - max} characters]`;

const label = (value: string): string => capText(value, MAX_LABEL);
const labelOf = (value: unknown): string | undefined =>
  typeof value === "string" ? label(value) : undefined;
const textOf = (value: unknown, max: number): string | undefined =>
  typeof value === "string" ? capText(value, max) : undefined;
const boolOf = (value: unknown): boolean | undefined => (typeof value === "boolean" ? value : undefined);

/** Keeps a JSON value whole when small; otherwise keeps a truncated JSON text of it. */
const capJson = (value: unknown): unknown => {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value);
  return text.length <= MAX_FACT_JSON ? value : { truncated: true, json: capText(text, MAX_FACT_JSON) };
};

const errorName = (error: unknown): string => (error instanceof Error ? error.name : "Error");
