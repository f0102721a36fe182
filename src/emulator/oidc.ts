/**
 * The part of Auth0's Authentication API a regular web application signs in with (the console):
 * OIDC discovery, JWKS, /authorize with a simulated Universal Login page, the authorization_code
 * grant of /oauth/token with PKCE, and RP-initiated logout at /oidc/logout.
 *
 * Sources (Auth0 public docs): "Authorization Code Flow with PKCE" and "Authorize" (api/authentication);
 * "Use Organizations with Tokens" (org_id, org_name in the ID token); "Create Custom Claims"
 * (namespaced claims added by an Action); "Log Users Out of Auth0 with OIDC Endpoint" (/oidc/logout,
 * Allowed Logout URLs); "JSON Web Key Sets". Where the docs leave room the emulator is stricter:
 * PKCE with S256 is required, `organization` must be an organization id, codes are single use and
 * expire after 10 minutes (RFC 6749 §4.1.2 recommends at most that), redirect URIs match exactly.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Reply } from "./router.js";
import type { EmulatorState } from "./state.js";
import type { LoginRequest, LoginResult, OidcClientSpec } from "./types.js";

const CODE_LIFETIME_MS = 10 * 60 * 1000;
const TRANSACTION_LIFETIME_MS = 30 * 60 * 1000;
const ID_TOKEN_LIFETIME_S = 36_000; // Auth0's default ID token expiration (10 hours)

interface AuthorizeTx {
  client: OidcClientSpec;
  redirectUri: string;
  state?: string;
  nonce?: string;
  scope: string;
  codeChallenge: string;
  organization: string;
  createdAt: number;
}

interface IssuedCode {
  tx: AuthorizeTx;
  login: Extract<LoginResult, { decision: "allow" }>;
  expiresAt: number;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString("base64url");
const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export class OidcProvider {
  private readonly privateKey: KeyObject;
  private readonly publicJwk: Record<string, unknown>;
  private readonly kid = randomBytes(8).toString("hex");
  private readonly transactions = new Map<string, AuthorizeTx>();
  private readonly codes = new Map<string, IssuedCode>();
  private readonly clients = new Map<string, OidcClientSpec>();

  constructor(
    private readonly state: EmulatorState,
    clients: readonly OidcClientSpec[],
    private readonly roleClaimNamespace: string,
    private readonly login: (request: LoginRequest) => Promise<LoginResult>,
    private readonly baseUrl: () => string,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicJwk = { ...publicKey.export({ format: "jwk" }), kid: this.kid, use: "sig", alg: "RS256" };
    for (const c of clients) this.addClient(c);
  }

  addClient(spec: OidcClientSpec): void {
    this.clients.set(spec.clientId, spec);
  }

  /** Paths this provider answers; everything else stays with the Management API server. */
  handles(method: string, path: string): boolean {
    return (
      (method === "GET" &&
        (path === "/.well-known/openid-configuration" ||
          path === "/.well-known/jwks.json" ||
          path === "/authorize" ||
          path === "/oidc/logout")) ||
      (method === "POST" && path === "/u/login")
    );
  }

  private issuer(): string {
    return `${this.baseUrl()}/`;
  }

  handle(method: string, url: URL, raw: string, res: ServerResponse, _req: IncomingMessage): void {
    const path = url.pathname;
    if (path === "/.well-known/openid-configuration") return json(res, 200, this.discovery());
    if (path === "/.well-known/jwks.json") return json(res, 200, { keys: [this.publicJwk] });
    if (path === "/authorize") return this.authorize(url.searchParams, res);
    if (path === "/u/login" && method === "POST") {
      // A failing login flow (an Action that throws) answers 500 instead of leaving the browser waiting.
      this.submitLogin(new URLSearchParams(raw), res).catch((err: unknown) => {
        if (!res.headersSent) page(res, 500, "Login failed", err instanceof Error ? err.message : String(err));
      });
      return;
    }
    if (path === "/oidc/logout") return this.logout(url.searchParams, res);
  }

  private discovery(): Record<string, unknown> {
    const base = this.baseUrl();
    return {
      issuer: this.issuer(),
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/oauth/token`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      end_session_endpoint: `${base}/oidc/logout`,
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["RS256"],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      code_challenge_methods_supported: ["S256"],
      scopes_supported: ["openid", "profile", "email"],
      claims_supported: ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "name", "org_id", "org_name", "sid"],
    };
  }

  private authorize(q: URLSearchParams, res: ServerResponse): void {
    this.sweep();
    const client = this.clients.get(q.get("client_id") ?? "");
    // Without a known client and an allowed callback there is nowhere safe to redirect: an error page.
    if (!client)
      return page(
        res,
        400,
        "Unknown client",
        `The client_id "${q.get("client_id") ?? ""}" is not an application of this tenant.`,
      );
    const redirectUri = q.get("redirect_uri") ?? "";
    if (!client.callbacks.includes(redirectUri)) {
      return page(
        res,
        400,
        "Callback URL mismatch",
        `The provided redirect_uri is not in the list of allowed callback URLs: ${redirectUri}`,
      );
    }
    const back = (error: string, description: string): void =>
      redirect(
        res,
        withParams(redirectUri, { error, error_description: description, state: q.get("state") ?? undefined }),
      );
    if (q.get("response_type") !== "code")
      return back("unsupported_response_type", "Unsupported response type: only code is enabled for this application");
    if (!(q.get("scope") ?? "").split(" ").includes("openid"))
      return back("invalid_scope", "the openid scope is required");
    const challenge = q.get("code_challenge");
    if (!challenge || q.get("code_challenge_method") !== "S256")
      return back("invalid_request", "code_challenge with code_challenge_method=S256 is required");
    const organization = q.get("organization");
    if (!organization) return back("invalid_request", "parameter organization is required for this application");
    const org = this.state.organizations.get(organization);
    if (!org) return back("invalid_request", "parameter organization is invalid");
    const txId = randomBytes(16).toString("hex");
    this.transactions.set(txId, {
      client,
      redirectUri,
      state: q.get("state") ?? undefined,
      nonce: q.get("nonce") ?? undefined,
      scope: q.get("scope")!,
      codeChallenge: challenge,
      organization: org.id,
      createdAt: Date.now(),
    });
    const connections = this.state
      .enabledConnectionsOf(org.id)
      .flatMap((e) => [...this.state.connections.values()].filter((c) => c.id === e.connection_id))
      .map((c) => `<option value="${escapeHtml(c.name)}">${escapeHtml(c.name)}</option>`)
      .join("");
    const body = `<form method="post" action="/u/login">
<input type="hidden" name="tx" value="${txId}">
<p><label for="email">Email</label><br><input id="email" name="email" type="email" required autocomplete="username"></p>
<p><label for="connection">Sign in with</label><br><select id="connection" name="connection">${connections}</select></p>
<p><button type="submit">Continue</button></p>
</form>`;
    return page(res, 200, `Sign in to ${escapeHtml(org.display_name ?? org.name)}`, body, true);
  }

  private async submitLogin(form: URLSearchParams, res: ServerResponse): Promise<void> {
    const tx = this.transactions.get(form.get("tx") ?? "");
    this.transactions.delete(form.get("tx") ?? "");
    if (!tx || Date.now() - tx.createdAt > TRANSACTION_LIFETIME_MS)
      return page(res, 400, "Invalid state", "This login transaction has expired; start again from the application.");
    const email = form.get("email") ?? "";
    const connection = form.get("connection") ?? "";
    if (!email || !connection) return page(res, 400, "Missing fields", "email and connection are required.");
    const result = await this.login({ email, connection, organization: tx.organization });
    if (result.decision === "deny") {
      // An Action's api.access.deny (and a blocked user) come back to the application as an error (Auth0 "Post-Login Trigger").
      return redirect(
        res,
        withParams(tx.redirectUri, { error: result.error, error_description: result.reason, state: tx.state }),
      );
    }
    const code = randomBytes(24).toString("base64url");
    this.codes.set(code, { tx, login: result, expiresAt: Date.now() + CODE_LIFETIME_MS });
    return redirect(res, withParams(tx.redirectUri, { code, state: tx.state }));
  }

  /** grant_type=authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.6). */
  exchangeCode(params: Record<string, string>, authorization: string | undefined): Reply {
    let clientId = params.client_id;
    let secret = params.client_secret;
    const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? "");
    if (basic) {
      const [id, pw] = Buffer.from(basic[1]!, "base64")
        .toString("utf8")
        .split(":", 2)
        .map((s) => decodeURIComponent(s ?? ""));
      clientId = id;
      secret = pw;
    }
    const client = this.clients.get(clientId ?? "");
    if (!client || client.clientSecret !== secret) return oauthError(401, "access_denied", "Unauthorized");
    const code = params.code ? this.codes.get(params.code) : undefined;
    if (params.code) this.codes.delete(params.code); // single use, even when the rest is wrong
    if (!code || code.expiresAt <= Date.now() || code.tx.client.clientId !== client.clientId)
      return oauthError(403, "invalid_grant", "Invalid authorization code");
    if (params.redirect_uri !== code.tx.redirectUri) return oauthError(403, "invalid_grant", "Invalid redirect_uri");
    const verifier = params.code_verifier ?? "";
    if (b64url(createHash("sha256").update(verifier).digest()) !== code.tx.codeChallenge)
      return oauthError(403, "invalid_grant", "Failed to verify code verifier");
    const now = Math.floor(Date.now() / 1000);
    const user = code.login.user;
    const claims: Record<string, unknown> = {
      iss: this.issuer(),
      sub: user.user_id,
      aud: client.clientId,
      iat: now,
      exp: now + ID_TOKEN_LIFETIME_S,
      sid: code.login.session_id,
      ...(code.tx.nonce ? { nonce: code.tx.nonce } : {}),
      ...(user.email ? { email: user.email, email_verified: user.email_verified } : {}),
      ...(user.name ? { name: user.name } : {}),
      org_id: code.login.organization.id,
      org_name: code.login.organization.name,
      [`${this.roleClaimNamespace}/roles`]: code.login.roles,
    };
    return {
      status: 200,
      body: {
        access_token: `emu.${randomBytes(24).toString("base64url")}`,
        id_token: this.signJwt(claims),
        token_type: "Bearer",
        expires_in: 86400,
        scope: code.tx.scope,
      },
    };
  }

  private logout(q: URLSearchParams, res: ServerResponse): void {
    const hint = q.get("id_token_hint");
    const claims = hint ? this.verifyJwt(hint) : undefined;
    if (hint && !claims)
      return page(res, 400, "Invalid id_token_hint", "The id_token_hint is not a token this tenant issued.");
    const client = this.clients.get((claims?.aud as string | undefined) ?? q.get("client_id") ?? "");
    const target = q.get("post_logout_redirect_uri");
    if (typeof claims?.sid === "string") this.state.sessions.delete(claims.sid);
    if (!target) return page(res, 200, "Signed out", "You are signed out.");
    // Allowed Logout URLs are per application; without a client there is no list to match (stricter than the tenant-level list).
    if (!client || !(client.logoutUrls ?? []).includes(target))
      return page(res, 400, "Invalid logout URL", `${target} is not an Allowed Logout URL of this application.`);
    return redirect(res, withParams(target, { state: q.get("state") ?? undefined }));
  }

  private signJwt(claims: Record<string, unknown>): string {
    const input = `${b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: this.kid }))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign("sha256", Buffer.from(input), this.privateKey))}`;
  }

  private verifyJwt(token: string): Record<string, unknown> | undefined {
    const [h, p, s] = token.split(".");
    if (!h || !p || !s) return undefined;
    const publicKey = { key: this.publicJwk as never, format: "jwk" as const };
    if (!verify("sha256", Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, "base64url"))) return undefined;
    try {
      return JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, tx] of this.transactions)
      if (now - tx.createdAt > TRANSACTION_LIFETIME_MS) this.transactions.delete(k);
    for (const [k, c] of this.codes) if (c.expiresAt <= now) this.codes.delete(k);
  }
}

const oauthError = (status: number, error: string, description: string): Reply => ({
  status,
  body: { error, error_description: description },
});

function withParams(base: string, params: Record<string, string | undefined>): string {
  const u = new URL(base);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.toString();
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res
    .writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": String(Buffer.byteLength(payload)),
      "cache-control": "no-store",
    })
    .end(payload);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, "cache-control": "no-store" }).end();
}

function page(res: ServerResponse, status: number, title: string, bodyHtml: string, trustedBody = false): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title></head>
<body><main><h1>${title}</h1>${trustedBody ? bodyHtml : `<p>${escapeHtml(bodyHtml)}</p>`}<p><small>Auth0 emulator: simulated Universal Login</small></p></main></body></html>`;
  res
    .writeHead(status, {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": "default-src 'none'; form-action *; style-src 'unsafe-inline'",
      "cache-control": "no-store",
    })
    .end(html);
}
