import { createHttpHandler } from "../core/handler.js";
import type { Parker } from "../core/parking.js";
import { createParker } from "../core/parking-sqs.js";
import { receivePostCallWebhook } from "../core/post-call-api.js";
import { type ConversationDependencies, createConversationDependencies } from "../core/table-dependencies.js";

/** `POST /webhooks/elevenlabs/post-call`: ElevenLabs' signed post-call webhook. */
export const makeHandler = (deps: ConversationDependencies & { parker: Parker }) =>
  createHttpHandler("post-call-webhook", deps, (request) => receivePostCallWebhook(deps, request));

// Its route writes the conversations table only: no session store.
const deps = createConversationDependencies();
export const handler = makeHandler({ ...deps, parker: createParker(deps.config) });
