import { createDependencies, type Dependencies } from "../core/dependencies.js";
import { createHttpHandler } from "../core/handler.js";
import { respond } from "../core/outcomes.js";
import { issueSignedUrl, type SignedUrlDeps } from "../core/signed-url.js";

/** `GET /signed-url?agentId=`: a signed ElevenLabs conversation URL; the API key stays here. */
export const makeHandler = (deps: Dependencies & Pick<SignedUrlDeps, "fetchImpl" | "timeoutMs">) =>
  createHttpHandler("get-signed-url", deps, async (request) =>
    respond(
      await issueSignedUrl({ ...deps, apiBaseUrl: deps.config.elevenlabsApiBaseUrl }, request),
      deps.logger,
      deps.metrics,
    ),
  );

// No table access: this function only talks to ElevenLabs.
export const handler = makeHandler(createDependencies(process.env, {}, []));
