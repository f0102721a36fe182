/**
 * Text either store keeps as given. PostgreSQL's text holds no U+0000 ("Character Types"), and its
 * JSON input refuses a UTF-16 surrogate without its pair (JSON escapes one as a \u sequence);
 * neither is a Unicode character (RFC 8259 §8.2), so SQLite is held to the same rule.
 */
export const unstorableText = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The refusal of text unstorableText matches, worded once for every edge that refuses it. */
export const unstorableRefusal = (subject: string): string =>
  `${subject} may not contain U+0000 (NUL) or an unpaired UTF-16 surrogate`;

const unstorableTextEverywhere = new RegExp(unstorableText.source, "g");

/** `text` with each U+0000 and unpaired surrogate replaced by U+FFFD: for records kept as seen (logs), never for SCIM data, which is refused instead. */
export const storableText = (text: string): string =>
  unstorableText.test(text) ? text.replace(unstorableTextEverywhere, "\ufffd") : text;
