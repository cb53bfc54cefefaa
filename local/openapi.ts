import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { openApiDocument } from "../functions/core/openapi.js";

/** Where the committed document lives: the repository root. */
export const OPENAPI_PATH = resolve(import.meta.dirname, "..", "openapi.json");

/** The document exactly as `npm run openapi` writes it (stable key order, trailing newline). */
export const renderOpenApi = (): string => `${JSON.stringify(openApiDocument(), null, 2)}\n`;

const main = () => {
  const { values } = parseArgs({ options: { check: { type: "boolean", default: false } } });
  const text = renderOpenApi();
  if (values.check) {
    let current = "";
    try {
      current = readFileSync(OPENAPI_PATH, "utf8");
    } catch {
      // missing: reported below
    }
    if (current !== text) {
      console.error(
        "npm run openapi: openapi.json is out of date with the route table; run npm run openapi.",
      );
      process.exit(1);
    }
    console.log("openapi.json is up to date.");
    return;
  }
  writeFileSync(OPENAPI_PATH, text);
  console.log(`Wrote ${OPENAPI_PATH} (${Object.keys(openApiDocument().paths as object).length} paths).`);
};

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) main();
