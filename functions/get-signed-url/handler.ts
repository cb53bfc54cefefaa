import { type BaseDependencies, createBaseDependencies } from "../core/base-dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { issueSignedUrl, type SignedUrlDeps } from "../core/signed-url-api.js";

/** `GET /signed-url?agentId=`: a signed ElevenLabs conversation URL; the API key stays here. */
export const makeHandler = (deps: BaseDependencies & Pick<SignedUrlDeps, "fetchImpl" | "timeoutMs">) =>
  createHttpHandler("get-signed-url", deps, (request) =>
    issueSignedUrl({ ...deps, apiBaseUrl: deps.config.elevenlabsApiBaseUrl }, request),
  );

// No table access (its route names none): no DynamoDB client, no stores; it only talks to ElevenLabs.
export const handler = makeHandler(createBaseDependencies(process.env, {}, []));
