import { createHttpHandler } from "../core/handler.js";
import { respond } from "../core/outcomes.js";
import type { Parker } from "../core/parking.js";
import { createParker } from "../core/parking-sqs.js";
import { receivePostCallWebhook } from "../core/post-call.js";
import { type ConversationDependencies, createConversationDependencies } from "../core/table-dependencies.js";

/** `POST /webhooks/elevenlabs/post-call`: ElevenLabs' signed post-call webhook. */
export const makeHandler = (deps: ConversationDependencies & { parker: Parker }) =>
  createHttpHandler("post-call-webhook", deps, async (request) =>
    respond(await receivePostCallWebhook(deps, request), deps.logger, deps.metrics),
  );

// Its route writes the conversations table only: no session store.
const deps = createConversationDependencies();
export const handler = makeHandler({ ...deps, parker: createParker(deps.config) });
