import { createHmac, timingSafeEqual } from "node:crypto";
import express, { type Router } from "express";
import { assertJsonDepth, rawBody } from "./body.js";
import type { Db } from "../directory/database.js";
import { invalidSyntax, unauthorized } from "../errors.js";
import { decidePostLogin, type PostLoginEvent } from "../sync/post-login.js";

/** Signatures older than this are refused, so a captured request cannot be replayed later. */
const MAX_SKEW_SECONDS = 300;

export function signPostLoginBody(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  return `t=${timestamp},v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** Checks `x-scim-bridge-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` in constant time. */
export function verifyPostLoginSignature(secret: string, header: string | undefined, body: string, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  if (!header) return false;
  const parts = Object.fromEntries(header.split(",").map((p) => p.trim().split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > MAX_SKEW_SECONDS || !parts.v1) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest();
  const given = Buffer.from(parts.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function isEvent(v: unknown): v is PostLoginEvent {
  if (typeof v !== "object" || v === null) return false;
  const user = (v as { user?: unknown }).user;
  if (typeof user !== "object" || user === null) return false;
  const { user_id, email } = user as { user_id?: unknown; email?: unknown };
  return typeof user_id === "string" && (email === undefined || email === null || typeof email === "string");
}

/** POST /hooks/auth0/post-login: the login decision for the Auth0 post-login Action. */
export function postLoginHookRouter(db: Db, secret: string): Router {
  const router = express.Router();
  router.post("/", rawBody("64kb"), (req, res) => {
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
    assertJsonDepth(event);
    if (!isEvent(event)) throw invalidSyntax("body needs user.user_id, and user.email must be a string or null when present");
    res.json(decidePostLogin(db, event, res.locals.requestId as string | undefined));
  });
  return router;
}
