/**
 * `npm run elevenlabs:config -- --url <ApiUrl> [--agent <agentId>] [--apply]`: the ElevenLabs side
 * of a deploy as code. Prints the server tools (one webhook tool per entry of
 * `elevenlabs/tools.json`, plus `get_task_result`) and the post-call webhook settings in the
 * JSON ElevenLabs' API takes; with `--apply` and `ELEVENLABS_API_KEY` creates or updates them:
 * the tool secret as a workspace secret, each tool (matched by name), the post-call webhook
 * (matched by URL) and the workspace's webhook settings, then attaches the tools to `--agent`.
 *
 * The pieces: elevenlabs-tools.ts (the tools file), elevenlabs-setup.ts (the definitions),
 * elevenlabs-api.ts (applying them); this file is the command line.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { ID_PATTERN } from "../functions/core/ids.js";
import { DEFAULT_ELEVENLABS_API_BASE_URL } from "../functions/core/signed-url-api.js";
import { ApiUrlError, normalizeApiUrl } from "./api-url.js";
import { isParseArgsError, runIfMain } from "./cli.js";
import { applyElevenLabsSetup, ElevenLabsApiError } from "./elevenlabs-api.js";
import { buildElevenLabsSetup, type SetupOptions } from "./elevenlabs-setup.js";
import { DEFAULT_TOOLS_FILE, ElevenLabsConfigError, parseToolsFile } from "./elevenlabs-tools.js";
import { readStageSecrets, StageSecretError, stageSecretId } from "./stage-secrets.js";

const USAGE = `Usage: npm run elevenlabs:config -- --url <ApiUrl> [--agent <agentId>] [--apply] [--stage <stage>]

Prints the ElevenLabs server tools and post-call webhook settings for the service at --url (the
stack's ApiUrl output, as it is). With --apply and ELEVENLABS_API_KEY, creates or updates them.

  --url <ApiUrl>        the service's base URL
  --agent <agentId>     also attach the tools to this agent
  --apply               create/update through ElevenLabs' API (ELEVENLABS_API_BASE_URL to change it)
  --stage <stage>       read the tool secret from Secrets Manager (elevenlabs-agent-sessions/<stage>/tool-secret);
                        without it, --apply takes TOOL_SECRET from the environment
  --region <region>     AWS region of the stage (default: AWS_REGION / your profile)
  --tools <file>        the tools file (default elevenlabs/tools.json)
  --webhook-secret-file <file>  where a new webhook's HMAC secret goes (default webhook-secret.txt)`;

const parseCli = (argv: readonly string[]) =>
  parseArgs({
    args: [...argv],
    options: {
      url: { type: "string" },
      agent: { type: "string" },
      apply: { type: "boolean", default: false },
      stage: { type: "string" },
      region: { type: "string" },
      tools: { type: "string" },
      "webhook-secret-file": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  }).values;

type CliValues = ReturnType<typeof parseCli>;

/** The setup to print or apply: the service URL, the tools file, the workspace secret's name. */
const setupOptions = (values: CliValues): SetupOptions => {
  const apiUrl = normalizeApiUrl(values.url ?? "");
  if (values.agent !== undefined && !ID_PATTERN.test(values.agent))
    throw new ElevenLabsConfigError(`--agent must be an ElevenLabs agent id, not "${values.agent}".`);
  const toolsFile = resolve(values.tools ?? DEFAULT_TOOLS_FILE);
  let toolsText: string;
  try {
    toolsText = readFileSync(toolsFile, "utf8");
  } catch {
    throw new ElevenLabsConfigError(`The tools file ${toolsFile} cannot be read.`);
  }
  return {
    apiUrl,
    tools: parseToolsFile(toolsText, toolsFile),
    secretName: `elevenlabs-agent-sessions-${values.stage ?? "local"}-tool-secret`,
    ...(values.agent ? { agentId: values.agent } : {}),
  };
};

/** `--apply`: the key, the tool secret (Secrets Manager with `--stage`, else TOOL_SECRET) and where to. */
const applySetup = async (
  options: SetupOptions,
  values: CliValues,
  env: NodeJS.ProcessEnv,
  io: { out: (line: string) => void; fetchImpl?: typeof fetch },
): Promise<void> => {
  const stage = values.stage;
  const apiKey = env.ELEVENLABS_API_KEY?.trim();
  if (!apiKey)
    throw new ElevenLabsConfigError(
      "--apply needs ELEVENLABS_API_KEY (an ElevenLabs API key of the workspace).",
    );
  const toolSecret = stage
    ? (await readStageSecrets(stage, ["tool-secret"], values.region))["tool-secret"]
    : env.TOOL_SECRET?.trim();
  if (!toolSecret)
    throw new ElevenLabsConfigError(
      "--apply needs the tool secret: --stage <stage> reads it from Secrets Manager, or set TOOL_SECRET.",
    );
  const baseUrl = env.ELEVENLABS_API_BASE_URL?.trim() || DEFAULT_ELEVENLABS_API_BASE_URL;
  if (!/^https?:\/\/\S+$/.test(baseUrl))
    throw new ElevenLabsConfigError(`ELEVENLABS_API_BASE_URL must be an http(s) URL, not "${baseUrl}".`);
  const webhookSecretFile = resolve(values["webhook-secret-file"] ?? "webhook-secret.txt");
  await applyElevenLabsSetup(options, {
    apiKey,
    baseUrl,
    toolSecret,
    webhookSecretFile,
    webhookSecretCommand: `aws secretsmanager put-secret-value --secret-id ${stageSecretId(stage ?? "<stage>", "webhook-secret")} --secret-string file://${webhookSecretFile}`,
    log: io.out,
    ...(io.fetchImpl ? { fetchImpl: io.fetchImpl } : {}),
  });
};

/** The CLI: returns the exit code; `out` gets the result, `err` one line on failure. */
export const runElevenLabsConfig = async (
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: { out: (line: string) => void; err: (line: string) => void; fetchImpl?: typeof fetch },
): Promise<number> => {
  try {
    const values = parseCli(argv);
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const options = setupOptions(values);
    if (!values.apply) {
      io.out(JSON.stringify(buildElevenLabsSetup(options), null, 2));
      return 0;
    }
    await applySetup(options, values, env, io);
    io.out(`Done: ElevenLabs is set up for ${options.apiUrl}.`);
    return 0;
  } catch (error) {
    const known =
      error instanceof ElevenLabsConfigError ||
      error instanceof ElevenLabsApiError ||
      error instanceof ApiUrlError ||
      error instanceof StageSecretError ||
      isParseArgsError(error);
    io.err(`npm run elevenlabs:config: ${known ? (error as Error).message : `failed: ${String(error)}`}`);
    return 1;
  }
};

runIfMain(import.meta.url, runElevenLabsConfig);
