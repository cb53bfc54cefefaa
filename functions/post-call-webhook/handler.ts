import { createHttpHandler } from "../core/handler.js";
import type { Parker } from "../core/parking.js";
import { createParker } from "../core/parking-sqs.js";
import { receivePostCallWebhook } from "../core/post-call-api.js";
import { createSessionDependencies, type SessionDependencies } from "../core/session-dependencies.js";

/** `POST /webhooks/elevenlabs/post-call`: ElevenLabs' signed post-call webhook. */
export const makeHandler = (deps: SessionDependencies & { parker: Parker }) =>
  createHttpHandler("post-call-webhook", deps, (request) => receivePostCallWebhook(deps, request));

// Its route writes both tables: the end of the call ends the conversation's session.
const deps = createSessionDependencies();
export const handler = makeHandler({ ...deps, parker: createParker(deps.config) });
