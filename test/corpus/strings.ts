/**
 * Hostile strings reused across routes. Ids must match `^[A-Za-z0-9_-]{1,128}$`; each of these
 * does not, and must be rejected before anything is read or written.
 */
export const INJECTION_IDS: readonly string[] = [
  "conv' OR '1'='1",
  'conv"; DROP TABLE sessions; --',
  "conv#meta",
  "conv#task#1",
  "msg#000000000000000#000000#task_result#x",
  "../../etc/passwd",
  "..",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a Log4Shell-looking id, on purpose.
  "${jndi:ldap://127.0.0.1/a}",
  "{{7*7}}",
  "<script>alert(1)</script>",
  "conv;rm -rf /",
  "conv|id",
  "conv`id`",
  "conv$(id)",
  "conv%00",
  "conv.json",
  "conv:1",
  "conv@host",
  "conv=1&admin=1",
  "a".repeat(129),
  "x".repeat(4096),
  " conv",
  "conv ",
  "conv\t1",
];

/** Unicode and control characters: never valid in ids. */
export const UNICODE_IDS: readonly string[] = [
  "конв",
  "会话",
  "conv😀",
  "conv\u200b", // zero-width space
  "conv\u202e1", // right-to-left override
  "conv\ufeff", // byte-order mark
  "ｃｏｎｖ", // full-width latin
  "conv\u0000",
  "conv\u0007",
  "conv\n",
  "conv\r\nX-Injected: 1",
  "conv\u007f",
  "é",
  "\ud83d", // a lone surrogate
];

/** Every hostile id. */
export const HOSTILE_IDS: readonly string[] = [...INJECTION_IDS, ...UNICODE_IDS];

/**
 * A path segment as a client would send it (percent-encoded). A lone surrogate cannot be
 * encoded as UTF-8, so it goes out as the bytes a careless client would send (CESU-8).
 */
export const segment = (value: string): string => {
  try {
    return encodeURIComponent(value);
  } catch {
    return value
      .replace(/[\ud800-\udfff]/g, "%ED%A0%BD")
      .replace(/[^A-Za-z0-9%_-]/g, (c) => encodeURIComponent(c));
  }
};

/** Malformed JSON texts. */
export const MALFORMED_JSON: readonly string[] = [
  "{",
  "}",
  "{'conversation_id': 'c'}",
  '{"a":1,}',
  '{"a":01}',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":undefined}',
  '{"a":"\\x41"}',
  '{"a":"unterminated}',
  "[1,2",
  "nul",
  "\u0000",
  '{"a":1}{"b":2}',
  "<xml/>",
  "a=1&b=2",
  "\ufeff{}", // a BOM before the object
  "/* comment */ {}",
  '{"a":"b"} trailing',
];

/** Well-formed JSON that is not an object. */
export const NON_OBJECT_JSON: readonly string[] = [
  "[]",
  "[{}]",
  "null",
  "true",
  "0",
  "-1e400",
  '"string"',
  '""',
];
