import { createHmac } from "node:crypto";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import type { ParkedEvent, Parker } from "../../functions/core/parking.js";
import { apiEvent } from "./events.js";

export const WEBHOOK_SECRET = "wsec_test_secret_0123456789abcdef";
export const ELEVENLABS_API_KEY = "sk_test_elevenlabs_key_DO_NOT_LEAK_0123456789";

/**
 * The documented scheme, written out independently of the code under test:
 * `t=<unix secs>,v0=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 */
export const signature = (
  body: string | Buffer,
  unixSeconds: number | string,
  secret = WEBHOOK_SECRET,
): string =>
  `t=${unixSeconds},v0=${createHmac("sha256", secret).update(`${unixSeconds}.`).update(body).digest("hex")}`;

/** The post-call webhook request as API Gateway delivers it (lowercased headers). */
export const webhookRequest = (
  body: string,
  options: { signedAtMs?: number; secret?: string; header?: string | null; isBase64Encoded?: boolean } = {},
): APIGatewayProxyEventV2 => {
  const header =
    options.header === undefined
      ? signature(body, Math.floor((options.signedAtMs ?? Date.now()) / 1000), options.secret)
      : options.header;
  return apiEvent({
    method: "POST",
    path: "/webhooks/elevenlabs/post-call",
    headers: {
      "content-type": "application/json",
      ...(header === null ? {} : { "ElevenLabs-Signature": header }),
    },
    body,
    ...(options.isBase64Encoded ? { isBase64Encoded: true } : {}),
  });
};

/** A transcript line as ElevenLabs sends it. */
export const line = (role: "agent" | "user", message: string | null, secs: number, extra: object = {}) => ({
  role,
  message,
  time_in_call_secs: secs,
  tool_calls: [],
  tool_results: [],
  feedback: null,
  ...extra,
});

/** A `post_call_transcription` body modelled on ElevenLabs' documented example. */
export const transcriptionEvent = (
  conversationId: string,
  options: { startSecs?: number; transcript?: unknown[]; analysis?: unknown; durationSecs?: number } = {},
) => {
  const startSecs = options.startSecs ?? 1_739_537_297;
  return {
    type: "post_call_transcription",
    event_timestamp: startSecs + 23,
    data: {
      agent_id: "agent_01jxyz",
      conversation_id: conversationId,
      status: "done",
      user_id: null,
      has_audio: true,
      has_user_audio: true,
      has_response_audio: true,
      transcript: options.transcript ?? [
        line("agent", "Hi, how can I help?", 0),
        line("agent", null, 6, {
          tool_calls: [
            {
              type: "webhook",
              request_id: "lookup_order_1",
              tool_name: "lookup_order",
              params_as_json: '{"order_id":"A1042"}',
              tool_has_been_called: true,
              tool_details: {
                type: "webhook",
                method: "POST",
                url: "https://api.example.com/tools/lookup_order",
                headers: { "X-Tool-Secret": "tool-secret-value-in-details" },
                body: '{"order_id":"A1042"}',
              },
            },
          ],
          tool_results: [
            {
              type: "webhook",
              request_id: "lookup_order_1",
              tool_name: "lookup_order",
              result_value: '{"status":"shipped"}',
              is_error: false,
              tool_has_been_called: true,
              tool_latency_secs: 0.41,
              dynamic_variable_updates: [],
            },
          ],
        }),
        line("user", "Great, thanks.", 9),
      ],
      metadata: {
        start_time_unix_secs: startSecs,
        call_duration_secs: options.durationSecs ?? 22,
        cost: 296,
        termination_reason: "Client disconnected",
        main_language: "en",
        phone_call: null,
        error: null,
      },
      analysis:
        options.analysis === undefined
          ? {
              call_successful: "success",
              transcript_summary: "Caller asked about order A1042; agent confirmed it shipped.",
              call_summary_title: "Order status",
              evaluation_criteria_results: {
                resolved: { criteria_id: "resolved", result: "success", rationale: "Status given." },
              },
              data_collection_results: {
                order_id: { data_collection_id: "order_id", value: "A1042", rationale: "Stated by caller." },
              },
            }
          : options.analysis,
      conversation_initiation_client_data: { dynamic_variables: { user_name: "angelo" } },
    },
  };
};

/** A `call_initiation_failure` body (SIP variant of ElevenLabs' example). */
export const initiationFailureEvent = (conversationId: string, eventTimestamp = 1_759_931_652) => ({
  type: "call_initiation_failure",
  event_timestamp: eventTimestamp,
  data: {
    agent_id: "agent_01jxyz",
    conversation_id: conversationId,
    failure_reason: "busy",
    metadata: {
      type: "sip",
      body: {
        from_number: "+441111111111",
        to_number: "+11111111111",
        sip_status_code: 486,
        error_reason: "INVITE failed: sip status: 486: Busy here (SIP 486)",
        call_sid: "d8e7f6a5-b4c3-4d5e-8f9a-0b1c2d3e4f5a",
        sip_status: "Busy here",
      },
    },
  },
});

/** A `post_call_audio` body (never stored). */
export const audioEvent = (conversationId: string) => ({
  type: "post_call_audio",
  event_timestamp: 1_739_537_319,
  data: { agent_id: "agent_01jxyz", conversation_id: conversationId, full_audio: "SUQzBAAAAAAA" },
});

/** A parker that keeps events in memory, or fails when told to. */
export const memoryParker = (options: { fail?: boolean } = {}): Parker & { parked: ParkedEvent[] } => {
  const parked: ParkedEvent[] = [];
  return {
    kind: "memory",
    parked,
    park: async (event) => {
      if (options.fail) throw new Error("parking queue unreachable");
      parked.push(event);
    },
  };
};
