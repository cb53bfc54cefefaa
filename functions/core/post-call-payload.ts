import * as z from "zod/mini";
import type { MessageInput } from "./conversation-items.js";
import { ID_PATTERN } from "./ids.js";
import { once, withoutUndefined } from "./objects.js";
import { toStorable } from "./storable.js";
import { formatIssues } from "./validation.js";

// What an ElevenLabs post-call payload means for the history: pure functions of the raw body,
// no I/O. post-call-api.ts verifies, stores, parks and replays what this module decides.

// Caps keep every history item far below DynamoDB's 400 KB item limit.
const MAX_LINE_TEXT = 20_000;
const MAX_TOOL_TEXT = 4_000;
const MAX_TOOL_ENTRIES = 20;
const MAX_FACT_JSON = 32_000;
const MAX_LABEL = 128;
const MAX_NOTES = 20;
/**
 * The latest instant a history line may carry: its sort key has 15 digits of epoch ms (year
 * 33658), and `toISOString` works to year 275760. A time beyond it (`start_time_unix_secs: 1e20`)
 * is recorded as invalid, never thrown.
 */
const MAX_TIME_MS = 999_999_999_999_999;

// ---------------------------------------------------------------------------------------------
// Payload shapes (ElevenLabs post-call webhooks). Loose on purpose: unknown fields are ignored,
// and only what the history needs is required, so an additive change on their side stores fine.
// ---------------------------------------------------------------------------------------------

/** Built once, on first use (functions/core/objects.ts `once`): never at a cold start. */
const buildSchemas = () => {
  const optionalText = z.optional(z.nullable(z.string()));
  /** Seconds ≥ 0. Finite but out of range (`1e20`) is noted when interpreting, not refused. */
  const seconds = z.number().check(z.gte(0));
  const optionalNumber = z.optional(z.nullable(z.number().check(z.gte(0))));
  const optionalSeconds = optionalNumber;
  const looseRecord = z.optional(z.nullable(z.record(z.string(), z.unknown())));

  /** The webhook envelope every post-call event shares (also the OpenAPI document's source). */
  const envelopeSchema = z.looseObject({
    type: z.string(),
    event_timestamp: optionalNumber,
    data: z.looseObject({ conversation_id: z.optional(z.unknown()) }),
  });

  const transcriptLineSchema = z.looseObject({
    role: z.string(),
    message: optionalText,
    time_in_call_secs: seconds,
    tool_calls: z.optional(z.nullable(z.array(z.unknown()))),
    tool_results: z.optional(z.nullable(z.array(z.unknown()))),
    interrupted: z.optional(z.nullable(z.boolean())),
  });

  const transcriptionSchema = z.looseObject({
    conversation_id: z.string().check(z.regex(ID_PATTERN)),
    agent_id: optionalText,
    status: optionalText,
    // Missing or null: the analysis and call facts are still stored (no transcript lines).
    transcript: z.optional(z.nullable(z.array(transcriptLineSchema))),
    user_id: z.optional(z.unknown()),
    has_audio: z.optional(z.unknown()),
    has_user_audio: z.optional(z.unknown()),
    has_response_audio: z.optional(z.unknown()),
    conversation_initiation_client_data: z.optional(z.unknown()),
    metadata: z.looseObject({
      start_time_unix_secs: seconds,
      call_duration_secs: optionalSeconds,
      termination_reason: optionalText,
      main_language: optionalText,
      phone_call: z.optional(z.unknown()),
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

  const initiationFailureSchema = z.looseObject({
    conversation_id: z.string().check(z.regex(ID_PATTERN)),
    agent_id: optionalText,
    failure_reason: optionalText,
    metadata: z.optional(z.nullable(z.looseObject({ type: optionalText, body: looseRecord }))),
  });
  return {
    envelope: envelopeSchema,
    transcriptLine: transcriptLineSchema,
    transcription: transcriptionSchema,
    initiationFailure: initiationFailureSchema,
  };
};
const schemas = once(buildSchemas);
type Schemas = ReturnType<typeof buildSchemas>;

/** The webhook envelope every post-call event shares (also the OpenAPI document's source). */
export const envelopeSchema = (): Schemas["envelope"] => schemas().envelope;
/** A `post_call_transcription`'s `data` (also the OpenAPI document's source). */
export const transcriptionSchema = (): Schemas["transcription"] => schemas().transcription;
/** A `call_initiation_failure`'s `data` (also the OpenAPI document's source). */
export const initiationFailureSchema = (): Schemas["initiationFailure"] => schemas().initiationFailure;

type TranscriptionData = z.infer<Schemas["transcription"]>;
type TranscriptLine = z.infer<Schemas["transcriptLine"]>;
type InitiationFailureData = z.infer<Schemas["initiationFailure"]>;

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
  const envelope = envelopeSchema().safeParse(json);
  if (!envelope.success) return unusable(undefined, undefined, formatIssues(envelope.error.issues, "body"));
  const { type, data, event_timestamp: eventTimestamp } = envelope.data;
  const eventType = label(type);
  const conversationId = validId(data.conversation_id);
  if (type === "post_call_transcription") {
    const parsed = transcriptionSchema().safeParse(data);
    if (!parsed.success)
      return unusable(eventType, conversationId, formatIssues(parsed.error.issues, "data"));
    return transcription(eventType, parsed.data, rawAnalysis(json), receivedAtMs);
  }
  if (type === "call_initiation_failure") {
    const parsed = initiationFailureSchema().safeParse(data);
    if (!parsed.success)
      return unusable(eventType, conversationId, formatIssues(parsed.error.issues, "data"));
    const failedAtMs = eventTimestamp ? eventTimestamp * 1000 : receivedAtMs;
    return initiationFailure(eventType, parsed.data, validTimeMs(failedAtMs) ? failedAtMs : receivedAtMs);
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

/**
 * The analysis' free-form records as parsed from JSON: zod rebuilds records by assignment, which
 * drops a `__proto__` key, and these are the caller's data, stored as sent.
 */
const rawAnalysis = (json: unknown): Record<string, unknown> | undefined => {
  const data = isRecord(json) ? json.data : undefined;
  const analysis = isRecord(data) ? data.analysis : undefined;
  return isRecord(analysis) ? analysis : undefined;
};

const validTimeMs = (ms: number) => Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIME_MS;

// The call's times in ms, kept in range (each replacement adds a note); the analysis (endMs)
// closes the history, never before the last line.
const callTimes = (data: TranscriptionData, receivedAtMs: number, notes: string[]) => {
  const lines = data.transcript ?? [];
  let startMs = Math.round(data.metadata.start_time_unix_secs * 1000);
  if (!validTimeMs(startMs)) {
    notes.push("data.metadata.start_time_unix_secs is out of range; the time the event was received is used");
    startMs = receivedAtMs;
  }
  const lineAtMs = (secs: number) => startMs + Math.round(secs * 1000);
  if (lines.some((l) => !validTimeMs(lineAtMs(l.time_in_call_secs)))) {
    notes.push(
      "data.transcript[].time_in_call_secs is out of range on some lines; they are kept in order at the latest time",
    );
  }
  const atMs = (secs: number) => Math.min(MAX_TIME_MS, lineAtMs(secs));
  const lastLineSecs = Math.max(0, ...lines.map((l) => l.time_in_call_secs));
  let durationSecs = data.metadata.call_duration_secs ?? lastLineSecs;
  if (!validTimeMs(lineAtMs(durationSecs))) {
    notes.push("data.metadata.call_duration_secs is out of range; the last line's time is used");
    durationSecs = Number.isFinite(lastLineSecs) ? lastLineSecs : 0;
  }
  return { startMs, atMs, durationSecs, endMs: atMs(Math.max(durationSecs, lastLineSecs)) };
};

const transcription = (
  eventType: string,
  data: TranscriptionData,
  raw: Record<string, unknown> | undefined,
  receivedAtMs: number,
): PostCallEvent => {
  // Everything ElevenLabs sends is stored: what cannot be (a time out of range, a number DynamoDB
  // cannot hold, nesting too deep) is replaced, and a note in `call.storageNotes` says what and why.
  const notes: string[] = [];
  const lines = data.transcript ?? [];
  const { startMs, atMs, durationSecs, endMs } = callTimes(data, receivedAtMs, notes);
  const analysis = data.analysis ?? undefined;
  const status = data.status ?? "done";
  const facts = withoutUndefined({
    status,
    summary: analysis?.transcript_summary ?? undefined,
    summaryTitle: analysis?.call_summary_title ?? undefined,
    callSuccessful: analysis?.call_successful ?? undefined,
    dataCollectionResults: capJson(
      analysis?.data_collection_results ? raw?.data_collection_results : undefined,
      "data.analysis.data_collection_results",
      notes,
    ),
    evaluationCriteriaResults: capJson(
      analysis?.evaluation_criteria_results ? raw?.evaluation_criteria_results : undefined,
      "data.analysis.evaluation_criteria_results",
      notes,
    ),
    startedAt: new Date(startMs).toISOString(),
    endedAt: new Date(endMs).toISOString(),
    durationSecs,
    terminationReason: data.metadata.termination_reason ?? undefined,
    mainLanguage: data.metadata.main_language ?? undefined,
    transcriptLines: lines.length,
    ...correlationFacts(data),
  });
  const messages: MessageInput[] = lines.map((line, index) =>
    storableLine(
      {
        kind: "transcript",
        atMs: atMs(line.time_in_call_secs),
        seq: index,
        id: `t-${index}`,
        role: label(line.role),
        ...(line.message ? { text: capText(line.message, MAX_LINE_TEXT) } : {}),
        data: lineData(line),
      },
      `data.transcript[${index}]`,
      notes,
    ),
  );
  const storedFacts = toStorable(facts, "call", notes) as Record<string, unknown>;
  const call =
    notes.length > 0
      ? {
          ...storedFacts,
          storageNotes: notes.slice(0, MAX_NOTES),
          ...(notes.length > MAX_NOTES ? { storageNotesOmitted: notes.length - MAX_NOTES } : {}),
        }
      : storedFacts;
  // After every line, including lines at the very same millisecond (seq = number of lines).
  messages.push({
    kind: "call_analysis",
    atMs: endMs,
    seq: lines.length,
    id: "analysis",
    ...(typeof call.summary === "string" && call.summary ? { text: call.summary } : {}),
    data: call,
  });
  return { kind: "transcription", ...identity(eventType, data), status: String(call.status), messages, call };
};

/** A history line whose caller-supplied parts (role, text, data) are all storable. */
const storableLine = (message: MessageInput, path: string, notes: string[]): MessageInput => {
  const stored = toStorable(
    withoutUndefined({ role: message.role, text: message.text, data: message.data }),
    path,
    notes,
  ) as Pick<MessageInput, "role" | "text" | "data">;
  return { ...message, ...stored };
};

const MAX_DYNAMIC_VARIABLES = 50;

/**
 * What ElevenLabs documents for correlating a call with your users, kept in the meta's `call`:
 * `user_id`, the dynamic variables the conversation started with (never a `secret__*` one: those
 * are secrets by ElevenLabs' convention), the phone call facts and which audio exists. Values of
 * an unexpected type are dropped, never refused.
 */
export const correlationFacts = (data: {
  user_id?: unknown;
  has_audio?: unknown;
  has_user_audio?: unknown;
  has_response_audio?: unknown;
  conversation_initiation_client_data?: unknown;
  metadata: { phone_call?: unknown };
}): Record<string, unknown> => {
  const clientData = isRecord(data.conversation_initiation_client_data)
    ? data.conversation_initiation_client_data
    : {};
  const variables = isRecord(clientData.dynamic_variables) ? clientData.dynamic_variables : {};
  const dynamicVariables: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(variables)) {
    if (Object.keys(dynamicVariables).length >= MAX_DYNAMIC_VARIABLES) break;
    if (name === "" || name.length > MAX_LABEL || name.toLowerCase().startsWith("secret__")) continue;
    if (typeof value === "string") dynamicVariables[name] = capText(value, MAX_TOOL_TEXT);
    else if (typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value)))
      dynamicVariables[name] = value;
  }
  const phone = isRecord(data.metadata.phone_call) ? data.metadata.phone_call : undefined;
  const phoneCall: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(phone ?? {})) {
    if (name === "" || name.length > MAX_LABEL) continue;
    if (typeof value === "string") phoneCall[name] = label(value);
    else if (typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value)))
      phoneCall[name] = value;
  }
  const userId = labelOf(data.user_id) ?? labelOf(clientData.user_id);
  return withoutUndefined({
    userId: userId === "" ? undefined : userId,
    dynamicVariables: Object.keys(dynamicVariables).length > 0 ? dynamicVariables : undefined,
    phoneCall: Object.keys(phoneCall).length > 0 ? phoneCall : undefined,
    hasAudio: boolOf(data.has_audio),
    hasUserAudio: boolOf(data.has_user_audio),
    hasResponseAudio: boolOf(data.has_response_audio),
  });
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
    failure: toStorable(
      withoutUndefined({
        failureReason: labelOf(data.failure_reason) ?? "unknown",
        provider: labelOf(data.metadata?.type),
        ...details,
      }),
      "data",
      [],
    ) as Record<string, unknown>,
  };
};

// ---------------------------------------------------------------------------------------------

export const isRecord = (value: unknown): value is Record<string, unknown> =>
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

/**
 * Keeps a JSON value whole when small and storable; otherwise a storable copy (see `toStorable`)
 * or, when large, a truncated JSON text of it. Bounded in depth first, so a value nested 500 000
 * levels deep never reaches the (recursive) `JSON.stringify`.
 */
const capJson = (value: unknown, path: string, notes: string[]): unknown => {
  if (value === undefined) return undefined;
  const stored = toStorable(value, path, notes, 0, FACT_DEPTH);
  const text = JSON.stringify(stored);
  return text.length <= MAX_FACT_JSON ? stored : { truncated: true, json: capText(text, MAX_FACT_JSON) };
};

/** The analysis records sit two levels down in the meta (`call.<record>`) and the analysis line (`data.<record>`). */
const FACT_DEPTH = 20;

export const errorName = (error: unknown): string => (error instanceof Error ? error.name : "Error");
