/**
 * Case-insensitive comparison of SCIM strings (RFC 7643 §2.2 caseExact=false; RFC 7644 §7.8 asks
 * for Unicode preparation before uniqueness tests): NFC, so that "é" typed as e + U+0301 equals the
 * precomposed letter, then Unicode lower case, with final sigma folded to σ (JavaScript lower-cases
 * a word-final Σ to ς, so "ΟΔΟΣ" and "οδοσ" would otherwise differ). This is simple case folding for
 * every script IdPs send, without the full folding's expansions (ß stays ß), so two userNames that
 * differ only in ß/ss remain two users.
 *
 * The same function fills the folded columns (user_name_lower, display_name_lower, value_lower) and
 * is registered on each SQLite connection as scim_fold(), so SQL and in-memory matching agree;
 * SQLite's own lower() folds ASCII only.
 */
export function foldCase(text: string): string {
  // ASCII (nearly every userName and email) is already NFC and has no sigma: skip ICU, which costs
  // microseconds a call and is called per value in PATCH matching.
  if (ascii.test(text)) return text.toLowerCase();
  return text.normalize("NFC").toLowerCase().replace(/ς/g, "σ");
}

// eslint-disable-next-line no-control-regex -- ASCII starts at NUL; any code point up to 0x7f folds by toLowerCase
const ascii = /^[\x00-\x7f]*$/;

/** Name of the SQL function registered by registerFold. */
export const sqlFoldFunction = "scim_fold";

interface FunctionHost {
  function(
    name: string,
    options: { deterministic: boolean; varargs?: boolean },
    fn: (value: unknown) => unknown,
  ): unknown;
}

const registered = new WeakSet<object>();

/** Registers scim_fold(text) on a better-sqlite3 connection (once per connection); NULL and non-text pass through. */
export function registerFold(connection: FunctionHost): void {
  if (registered.has(connection)) return;
  connection.function(sqlFoldFunction, { deterministic: true }, (value) =>
    typeof value === "string" ? foldCase(value) : value,
  );
  registered.add(connection);
}
