import { BatchWriteCommand, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { type MessageInput, messageSortKey } from "../../../functions/core/conversation-items.js";
import { ConversationStore } from "../../../functions/core/conversation-store.js";
import { replayParked, storePostCallEvent } from "../../../functions/core/post-call-api.js";
import { interpretPostCallEvent, type PostCallEvent } from "../../../functions/core/post-call-payload.js";
import { createDocClient } from "../../support/doc-client.js";
import { captureLogger } from "../../support/log-capture.js";
import {
  audioEvent,
  initiationFailureEvent,
  line,
  transcriptionEvent,
} from "../../support/post-call-fixtures.js";

const RECEIVED = Date.parse("2026-11-27T10:00:00.000Z");
const START_MS = 1_739_537_297_000;
const interpret = (body: unknown) =>
  interpretPostCallEvent(typeof body === "string" ? body : JSON.stringify(body), RECEIVED);

const messagesOf = (event: PostCallEvent): MessageInput[] => {
  if (event.kind !== "transcription") throw new Error(`expected a transcription, got ${event.kind}`);
  return event.messages;
};

describe("interpretPostCallEvent", () => {
  it("maps transcript lines to deterministic keys at start + time_in_call_secs, then the analysis", () => {
    const messages = messagesOf(interpret(transcriptionEvent("conv_1")));
    expect(messages.map((m) => [m.kind, m.id, m.atMs, m.seq, m.role, m.text])).toEqual([
      ["transcript", "t-0", START_MS, 0, "agent", "Hi, how can I help?"],
      ["transcript", "t-1", START_MS + 6000, 1, "agent", undefined],
      ["transcript", "t-2", START_MS + 9000, 2, "user", "Great, thanks."],
      [
        "call_analysis",
        "analysis",
        START_MS + 22_000,
        3,
        undefined,
        "Caller asked about order A1042; agent confirmed it shipped.",
      ],
    ]);
  });

  it("keeps tool calls and results of a line, but not tool_details (its headers may hold secrets)", () => {
    const toolLine = messagesOf(interpret(transcriptionEvent("conv_1")))[1];
    expect(toolLine?.data).toEqual({
      timeInCallSecs: 6,
      toolCalls: [
        {
          toolName: "lookup_order",
          requestId: "lookup_order_1",
          type: "webhook",
          params: '{"order_id":"A1042"}',
          toolHasBeenCalled: true,
        },
      ],
      toolResults: [
        {
          toolName: "lookup_order",
          requestId: "lookup_order_1",
          type: "webhook",
          result: '{"status":"shipped"}',
          isError: false,
          latencySecs: 0.41,
        },
      ],
    });
    expect(JSON.stringify(toolLine)).not.toContain("tool-secret-value-in-details");
  });

  it("records the analysis as call facts: summary, call_successful, data collection, evaluation, duration", () => {
    const event = interpret(transcriptionEvent("conv_1"));
    expect(event).toMatchObject({
      kind: "transcription",
      conversationId: "conv_1",
      agentId: "agent_01jxyz",
      status: "done",
      call: {
        status: "done",
        summary: "Caller asked about order A1042; agent confirmed it shipped.",
        summaryTitle: "Order status",
        callSuccessful: "success",
        dataCollectionResults: { order_id: { value: "A1042" } },
        evaluationCriteriaResults: { resolved: { result: "success" } },
        startedAt: new Date(START_MS).toISOString(),
        endedAt: new Date(START_MS + 22_000).toISOString(),
        durationSecs: 22,
        terminationReason: "Client disconnected",
        transcriptLines: 3,
      },
    });
  });

  it("orders lines by time in call even when the transcript array is not, with the index breaking ties", () => {
    const messages = messagesOf(
      interpret(
        transcriptionEvent("conv_1", {
          transcript: [line("agent", "late", 12), line("user", "early", 3), line("agent", "same second", 3)],
          durationSecs: 5,
        }),
      ),
    );
    const ordered = [...messages].sort((a, b) => messageSortKey(a).localeCompare(messageSortKey(b)));
    expect(ordered.map((m) => (m.kind === "transcript" ? m.text : m.kind))).toEqual([
      "early",
      "same second",
      "late",
      "call_analysis",
    ]);
    // The analysis never precedes the last line, even when call_duration_secs is shorter.
    expect(ordered.at(-1)?.atMs).toBe(START_MS + 12_000);
  });

  it("maps the same body to the same keys every time (a re-sent event overwrites, never duplicates)", () => {
    const body = JSON.stringify(transcriptionEvent("conv_1"));
    const first = messagesOf(interpretPostCallEvent(body, RECEIVED)).map(messageSortKey);
    const again = messagesOf(interpretPostCallEvent(body, RECEIVED + 3_600_000)).map(messageSortKey);
    expect(again).toEqual(first);
  });

  it("stores a call with no transcript and no analysis as just its closing line", () => {
    const messages = messagesOf(interpret(transcriptionEvent("conv_1", { transcript: [], analysis: null })));
    expect(messages).toEqual([expect.objectContaining({ kind: "call_analysis", atMs: START_MS + 22_000 })]);
  });

  it("caps very long text so an item stays far below DynamoDB's 400 KB limit", () => {
    const long = "x".repeat(50_000);
    const [first] = messagesOf(
      interpret(transcriptionEvent("conv_1", { transcript: [line("user", long, 1)] })),
    );
    expect(first?.text?.length).toBeLessThan(20_100);
    expect(first?.text).toMatch(/…\[truncated 30000 characters\]$/);
  });

  it("interprets a call_initiation_failure without keeping phone numbers", () => {
    const event = interpret(initiationFailureEvent("conv_1"));
    expect(event).toEqual({
      kind: "initiation_failure",
      eventType: "call_initiation_failure",
      conversationId: "conv_1",
      agentId: "agent_01jxyz",
      atMs: 1_759_931_652_000,
      failure: {
        failureReason: "busy",
        provider: "sip",
        sipStatusCode: 486,
        sipStatus: "Busy here",
        errorReason: "INVITE failed: sip status: 486: Busy here (SIP 486)",
        callSid: "d8e7f6a5-b4c3-4d5e-8f9a-0b1c2d3e4f5a",
      },
    });
    expect(JSON.stringify(event)).not.toContain("+44");
  });

  it.each([
    [
      "post_call_audio",
      audioEvent("conv_1"),
      { kind: "ignored", eventType: "post_call_audio", conversationId: "conv_1" },
    ],
    [
      "an unknown type",
      { type: "post_call_video", data: {} },
      { kind: "ignored", eventType: "post_call_video" },
    ],
  ])("ignores %s", (_label, body, expected) => {
    expect(interpret(body)).toEqual(expected);
  });

  it.each([
    ["a body that is not JSON", "{not json", "the body is not valid JSON"],
    ["an envelope without data", { type: "post_call_transcription" }, "body.data is required"],
    [
      "an invalid conversation id",
      transcriptionEvent("conv 1; drop"),
      "data.conversation_id contains characters that are not allowed",
    ],
    [
      "a line without time_in_call_secs",
      transcriptionEvent("conv_1", { transcript: [{ role: "user", message: "hi" }] }),
      "data.transcript.0.time_in_call_secs is required",
    ],
  ])("calls %s unusable, saying why", (_label, body, problem) => {
    expect(interpret(body)).toMatchObject({ kind: "unusable", problem });
  });
});

describe("storePostCallEvent and replayParked (mocked DynamoDB)", () => {
  const doc = createDocClient();
  const ddb = mockClient(doc);
  const conversations = new ConversationStore({
    client: doc,
    tableName: "conversations",
    now: () => RECEIVED,
    logger: captureLogger(),
  });

  beforeEach(() => {
    ddb.reset();
    ddb.on(GetCommand).resolves({});
    ddb.on(BatchWriteCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
  });

  /** The stored meta already records an initiation failure at `failedAtMs`. */
  const metaWithFailure = (failedAtMs: number) =>
    ddb.on(GetCommand).resolves({
      Item: {
        conversationId: "conv_1",
        sk: "meta",
        createdAt: "c",
        updatedAt: "u",
        call: { initiationFailure: { failureReason: "busy", failedAtMs } },
      },
    });

  const callFactsWritten = () =>
    ddb.commandCalls(UpdateCommand).find((c) => c.args[0].input.ExpressionAttributeNames?.["#call"])?.args[0]
      .input.ExpressionAttributeValues?.[":call"];

  it("merges its facts into the meta's call map instead of overwriting other events' facts", async () => {
    metaWithFailure(1);
    const event = interpret(transcriptionEvent("conv_1"));
    if (event.kind !== "transcription") throw new Error("expected a transcription");
    await storePostCallEvent({ conversations }, event);
    expect(callFactsWritten()).toMatchObject({
      initiationFailure: { failureReason: "busy" },
      callSuccessful: "success",
    });
  });

  it("keeps the first recorded failure time when a failure is re-sent with another event_timestamp", async () => {
    const firstAtMs = 1_759_931_652_000;
    metaWithFailure(firstAtMs);
    const resent = interpret(initiationFailureEvent("conv_1", 1_759_931_999));
    if (resent.kind !== "initiation_failure") throw new Error("expected a failure");
    await storePostCallEvent({ conversations }, resent);
    const item =
      ddb.commandCalls(BatchWriteCommand)[0]?.args[0].input.RequestItems?.conversations?.[0]?.PutRequest
        ?.Item;
    expect(item?.sk).toBe(
      messageSortKey({ atMs: firstAtMs, kind: "call_initiation_failure", id: "initiation-failure" }),
    );
  });

  it("replays parked events through the same interpretation and storage, reporting each", async () => {
    const receivedAt = new Date(RECEIVED).toISOString();
    ddb.on(BatchWriteCommand).resolvesOnce({}).rejects(new Error("boom"));
    const results = await replayParked({ conversations }, [
      { receivedAt, rawBody: JSON.stringify(transcriptionEvent("conv_1")), reason: "storage_unavailable" },
      { receivedAt, rawBody: JSON.stringify(audioEvent("conv_2")), reason: "storage_unavailable" },
      { receivedAt, rawBody: "{not json", reason: "unusable: the body is not valid JSON" },
      { receivedAt: "yesterday", rawBody: JSON.stringify(transcriptionEvent("conv_3")), reason: "x" },
      { receivedAt, rawBody: JSON.stringify(transcriptionEvent("conv_4")), reason: "storage_unavailable" },
    ]);
    expect(results).toEqual([
      { receivedAt, eventType: "post_call_transcription", conversationId: "conv_1", outcome: "stored" },
      { receivedAt, eventType: "post_call_audio", conversationId: "conv_2", outcome: "ignored" },
      { receivedAt, outcome: "unusable", reason: "the body is not valid JSON", permanent: true },
      { receivedAt: "yesterday", outcome: "unusable", reason: "receivedAt is not a date", permanent: true },
      {
        receivedAt,
        eventType: "post_call_transcription",
        conversationId: "conv_4",
        outcome: "failed",
        reason: "Error",
        // Not the database being unavailable: another replay cannot help (issue 19).
        permanent: true,
      },
    ]);
  });
});
