import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import type { Parker } from "../core/parking.js";
import { createParker } from "../core/parking-sqs.js";
import { receivePostCallWebhook } from "../core/post-call-api.js";

/** `POST /webhooks/elevenlabs/post-call`: ElevenLabs' signed post-call webhook. */
export const makeHandler = (deps: Dependencies & { parker: Parker }) =>
  createHttpHandler("post-call-webhook", deps, (request) => receivePostCallWebhook(deps, request));

// Its route writes both tables: the end of the call ends the conversation's session.
const deps = createDependencies();
export const handler = makeHandler({ ...deps, parker: createParker(deps.config) });
