import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { issueSignedUrl, type SignedUrlDeps } from "../core/signed-url-api.js";

/** `GET /signed-url?agentId=`: a signed ElevenLabs conversation URL; the API key stays here. */
export const makeHandler = (deps: Dependencies & Pick<SignedUrlDeps, "fetchImpl" | "timeoutMs">) =>
  createHttpHandler("get-signed-url", deps, (request) =>
    issueSignedUrl({ ...deps, apiBaseUrl: deps.config.elevenlabsApiBaseUrl }, request),
  );

// No table access: this function only talks to ElevenLabs.
export const handler = makeHandler(createDependencies(process.env, {}, []));
