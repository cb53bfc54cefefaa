import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

/** How a command-line tool prints: stdout lines and stderr lines (tests capture both). */
export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** True for the error `node:util` parseArgs throws on an unknown or malformed flag. */
export const isParseArgsError = (error: unknown): boolean =>
  error instanceof TypeError && ((error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ?? false);

/**
 * Runs a script's `run(argv, env, io)` when the module is the one node was started with (not when a
 * test imports it), and sets the exit code from its answer.
 */
export const runIfMain = (
  moduleUrl: string,
  run: (argv: string[], env: NodeJS.ProcessEnv, io: CliIo) => Promise<number>,
): void => {
  const main = process.argv[1];
  if (main === undefined || moduleUrl !== pathToFileURL(resolve(main)).href) return;
  void run(process.argv.slice(2), process.env, {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
  }).then((code) => {
    process.exitCode = code;
  });
};
