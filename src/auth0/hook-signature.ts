import { createHmac, timingSafeEqual } from "node:crypto";

// The signature the post-login Action (action/post-login.cjs) puts on its calls to the bridge's hook,
// and that the doctor puts on its test event: `x-scim-bridge-signature: t=<unix seconds>,v1=<hex>`.

/** Signatures older than this are refused, so a captured request cannot be replayed later. */
const MAX_SKEW_SECONDS = 300;

export function signPostLoginBody(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  return `t=${timestamp},v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** Checks `x-scim-bridge-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` in constant time. */
export function verifyPostLoginSignature(
  secret: string,
  header: string | undefined,
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): boolean {
  if (!header) return false;
  const parts = Object.fromEntries(header.split(",").map((p) => p.trim().split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > MAX_SKEW_SECONDS || !parts.v1) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest();
  const given = Buffer.from(parts.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
