/**
 * `npm run symbolicate -- <index.mjs.map> < stack.txt`: maps a Lambda stack trace (positions in the
 * minified `index.mjs`) back to the TypeScript sources, offline. The functions do not load their
 * source maps at run time (`--enable-source-maps` costs every cold start); the map ships next to
 * the bundle in the asset (`cdk.out/asset.<hash>/index.mjs.map`). Reads stdin, writes stdout;
 * positions the map does not cover are left as they were.
 */
import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { text } from "node:stream/consumers";

const mapFile = process.argv[2];
if (!mapFile) {
  process.stderr.write("usage: npm run symbolicate -- <path/to/index.mjs.map> < stack.txt\n");
  process.exit(2);
}
const map = new SourceMap(JSON.parse(readFileSync(mapFile, "utf8")));

/** `index.mjs:1:23456` (or a full path/URL ending in index.mjs) → `functions/core/x.ts:12:5`. */
const symbolicate = (stack: string, sourceMap: Pick<SourceMap, "findEntry">): string =>
  stack.replace(/([^\s(]*index\.mjs):(\d+):(\d+)/g, (whole, _file: string, line: string, column: string) => {
    const entry = sourceMap.findEntry(Number(line) - 1, Number(column) - 1) as {
      originalSource?: string;
      originalLine?: number;
      originalColumn?: number;
    };
    if (!entry.originalSource || entry.originalLine === undefined || entry.originalColumn === undefined)
      return whole;
    const source = entry.originalSource.replace(/^(\.\.\/)+/, "");
    return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  });

process.stdout.write(symbolicate(await text(process.stdin), map));
