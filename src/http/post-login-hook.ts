import express, { type Router } from "express";
import { verifyPostLoginSignature } from "../auth0/hook-signature.js";
import { assertStorableJson, rawBody } from "./body.js";
import type { SqlStore } from "../directory/sql.js";
import { invalidSyntax, unauthorized } from "../errors.js";
import { decidePostLogin, type PostLoginEvent } from "../sync/post-login.js";

export { signPostLoginBody, verifyPostLoginSignature } from "../auth0/hook-signature.js";

const optionalText = (v: unknown): boolean => v === undefined || v === null || typeof v === "string";

/** Only fields of the PostLoginEvent shape: a signed event is still input, and a wrong type is 400, not a crash. */
function optionalRecord(v: unknown, keys: readonly string[]): boolean {
  if (v === undefined || v === null) return true;
  if (typeof v !== "object" || Array.isArray(v)) return false;
  return keys.every((k) => optionalText((v as Record<string, unknown>)[k]));
}

function isEvent(v: unknown): v is PostLoginEvent {
  if (typeof v !== "object" || v === null) return false;
  const { user, organization, connection } = v as { user?: unknown; organization?: unknown; connection?: unknown };
  if (typeof user !== "object" || user === null || Array.isArray(user)) return false;
  const { user_id, email } = user as { user_id?: unknown; email?: unknown };
  return (
    typeof user_id === "string" &&
    optionalText(email) &&
    optionalRecord(organization, ["id", "name"]) &&
    optionalRecord(connection, ["name", "strategy"])
  );
}

/** POST /hooks/auth0/post-login: the login decision for the Auth0 post-login Action. */
export function postLoginHookRouter(store: SqlStore, secret: string): Router {
  const router = express.Router();
  router.post("/", rawBody("64kb"), async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body.toString("utf8") : "";
    if (!verifyPostLoginSignature(secret, req.get("x-scim-bridge-signature"), body)) {
      throw unauthorized("missing, stale or invalid x-scim-bridge-signature");
    }
    let event: unknown;
    try {
      event = JSON.parse(body);
    } catch {
      throw invalidSyntax("body is not JSON");
    }
    // Its strings are looked up in the store, where PostgreSQL refuses U+0000 and unpaired surrogates.
    assertStorableJson(event);
    // `scim-bridge doctor` checks reachability and the shared secret with a signed test event: it is
    // answered without a lookup or a write, and denied, should anything else ever send it.
    if (typeof event === "object" && event !== null && (event as { test?: unknown }).test === true) {
      res.json({
        test: true,
        decision: "deny",
        reason: "test event: the hook is reachable and the signature is valid",
      });
      return;
    }
    if (!isEvent(event))
      throw invalidSyntax(
        "body needs user.user_id; user.email, organization.id/name and connection.name/strategy must be strings or null when present",
      );
    res.json(await decidePostLogin(store, event, res.locals.requestId as string | undefined));
  });
  return router;
}
