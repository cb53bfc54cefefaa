/**
 * The agent's tools as the repository declares them: `elevenlabs/tools.json`, its schema and the
 * checks that turn a bad file into one line naming the file and the field.
 */
import { resolve } from "node:path";
import * as z from "zod/mini";
import { ID_PATTERN } from "../functions/core/ids.js";

/** The tools file: `elevenlabs/tools.json`. */
export const DEFAULT_TOOLS_FILE = resolve(import.meta.dirname, "..", "elevenlabs", "tools.json");

export const parameterSchema = z.strictObject({
  type: z.enum(["string", "number", "integer", "boolean"]),
  description: z.string().check(z.minLength(1)),
  required: z.optional(z.boolean()),
  enum: z.optional(z.array(z.string())),
});

const toolSchema = z.strictObject({
  name: z.string().check(z.regex(ID_PATTERN), z.maxLength(64)),
  description: z.string().check(z.minLength(1)),
  parameters: z.optional(
    z.record(z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/)), parameterSchema),
  ),
  response_timeout_secs: z.optional(z.int().check(z.gte(5), z.lte(300))),
  execution_mode: z.optional(z.enum(["immediate", "post_tool_speech", "async"])),
});

const toolsFileSchema = z.looseObject({ tools: z.array(toolSchema).check(z.minLength(1)) });

/** One async tool of the agent, as the tools file declares it. */
export type ToolSpec = z.infer<typeof toolSchema>;

/** Thrown for a bad invocation or tools file: one line for the operator. */
export class ElevenLabsConfigError extends Error {
  override readonly name = "ElevenLabsConfigError";
}

/** Reads and checks the tools file; problems name the file and the field. */
export const parseToolsFile = (text: string, file = "tools file"): ToolSpec[] => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ElevenLabsConfigError(`${file} is not valid JSON.`);
  }
  const parsed = toolsFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ElevenLabsConfigError(
      `${file}: ${issue?.path.join(".") || "root"}: ${issue?.message ?? "invalid"}.`,
    );
  }
  const names = new Set<string>();
  for (const tool of parsed.data.tools) {
    if (tool.name === "get_task_result")
      throw new ElevenLabsConfigError(`${file}: get_task_result is added for you; remove it from the file.`);
    if (names.has(tool.name))
      throw new ElevenLabsConfigError(`${file}: the tool ${tool.name} is listed twice.`);
    names.add(tool.name);
    if (tool.parameters && "conversation_id" in tool.parameters)
      throw new ElevenLabsConfigError(
        `${file}: ${tool.name} declares conversation_id; it is always sent from system__conversation_id.`,
      );
  }
  return parsed.data.tools;
};
