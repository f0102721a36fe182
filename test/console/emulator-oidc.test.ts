/**
 * The emulator's OIDC sign-in over plain HTTP, held to Auth0's documented behaviour and to RFC 6749 /
 * RFC 7636 where Auth0 is silent: PKCE S256 is required, a code works once, redirect and logout URLs
 * must be registered, and the RS256 ID token carries org_id, org_name and the namespaced roles claim.
 */
import { createHash, createPublicKey, randomBytes, verify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type RunningEmulator } from "../../src/emulator/index.js";

const callback = "http://127.0.0.1:9/console/callback";
const client = {
  clientId: "app-1",
  clientSecret: "s3cret-app-1",
  callbacks: [callback],
  logoutUrls: ["http://127.0.0.1:9/console"],
};
const ns = "https://console.example.test";
let emu: RunningEmulator;
let orgId: string;

async function api(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const t = await fetch(`${emu.url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      grant_type: "client_credentials",
      client_id: "m2m",
      client_secret: "x",
      audience: "https://tenant.example.test/api/v2/",
    }),
  });
  const { access_token } = (await t.json()) as { access_token: string };
  const res = await fetch(`${emu.url}/api/v2${path}`, {
    method,
    headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(res.status, `${method} ${path}`).toBeLessThan(300);
  return res.status === 204 ? {} : ((await res.json()) as Record<string, unknown>);
}

const b64url = (b: Buffer) => b.toString("base64url");

function authorizeUrl(over: Record<string, string | undefined> = {}, verifier = "v".repeat(50)): string {
  const u = new URL(`${emu.url}/authorize`);
  const params: Record<string, string | undefined> = {
    response_type: "code",
    client_id: client.clientId,
    redirect_uri: callback,
    scope: "openid profile email",
    state: "st-1",
    nonce: "n-1",
    code_challenge: b64url(createHash("sha256").update(verifier).digest()),
    code_challenge_method: "S256",
    organization: orgId,
    ...over,
  };
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.toString();
}

/** Through the simulated login page: the redirect back to the application. */
async function login(email: string, verifier = "v".repeat(50)): Promise<URL> {
  const page = await fetch(authorizeUrl({}, verifier));
  expect(page.status).toBe(200);
  const html = await page.text();
  const tx = /name="tx" value="([^"]+)"/.exec(html)![1]!;
  const res = await fetch(`${emu.url}/u/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ tx, email, connection: "Username-Password-Authentication" }).toString(),
  });
  expect(res.status).toBe(302);
  return new URL(res.headers.get("location")!);
}

const exchange = (code: string, verifier: string, over: Record<string, string> = {}) =>
  fetch(`${emu.url}/oauth/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString("base64")}`,
    },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: callback,
      ...over,
    }).toString(),
  });

beforeAll(async () => {
  emu = await startEmulator({ rateLimits: false, oidcClients: [client], roleClaimNamespace: ns });
  const connections = (await api("GET", "/connections")) as unknown as { id: string; name: string }[];
  const db = connections.find((c) => c.name === "Username-Password-Authentication")!;
  const org = await api("POST", "/organizations", {
    name: "acme",
    enabled_connections: [{ connection_id: db.id, assign_membership_on_login: false }],
  });
  orgId = org.id as string;
  const user = await api("POST", "/users", {
    connection: "Username-Password-Authentication",
    email: "admin@acme.test",
    password: "Correct-Horse-9!",
  });
  await api("POST", `/organizations/${orgId}/members`, { members: [user.user_id] });
  const role = await api("POST", "/roles", { name: "org_admin" });
  await api("POST", `/organizations/${orgId}/members/${encodeURIComponent(user.user_id as string)}/roles`, {
    roles: [role.id],
  });
});
afterAll(async () => {
  await emu?.close();
});

describe("emulated Auth0 OIDC sign-in", () => {
  it("publishes discovery with Auth0's trailing-slash issuer, S256 only, and a JWKS", async () => {
    const d = (await (await fetch(`${emu.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(d.issuer).toBe(`${emu.url}/`);
    expect(d).toMatchObject({
      authorization_endpoint: `${emu.url}/authorize`,
      token_endpoint: `${emu.url}/oauth/token`,
      end_session_endpoint: `${emu.url}/oidc/logout`,
      code_challenge_methods_supported: ["S256"],
    });
    const jwks = (await (await fetch(d.jwks_uri as string)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys[0]).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig" });
    expect(jwks.keys[0]).not.toHaveProperty("d");
  });

  it("refuses unknown clients and unregistered callbacks with an error page, and a missing PKCE challenge or organization back at the app", async () => {
    expect((await fetch(authorizeUrl({ client_id: "nope" }))).status).toBe(400);
    const mismatch = await fetch(authorizeUrl({ redirect_uri: "http://127.0.0.1:9/evil" }), { redirect: "manual" });
    expect(mismatch.status).toBe(400);
    expect(await mismatch.text()).toContain("Callback URL mismatch");
    for (const [over, needle] of [
      [{ code_challenge: undefined }, "code_challenge"],
      [{ code_challenge_method: "plain" }, "S256"],
      [{ organization: undefined }, "organization"],
      [{ organization: "org_doesnotexist" }, "organization is invalid"],
    ] as const) {
      const res = await fetch(authorizeUrl(over), { redirect: "manual" });
      expect(res.status).toBe(302);
      const back = new URL(res.headers.get("location")!);
      expect(back.origin + back.pathname).toBe(callback);
      expect(back.searchParams.get("error")).toBe("invalid_request");
      expect(back.searchParams.get("error_description")).toContain(needle);
      expect(back.searchParams.get("state")).toBe("st-1");
    }
  });

  it("issues an RS256 ID token with org_id, org_name, nonce and the namespaced roles for the right verifier, once", async () => {
    const verifier = b64url(randomBytes(32));
    const back = await login("admin@acme.test", verifier);
    const code = back.searchParams.get("code")!;
    expect(back.searchParams.get("state")).toBe("st-1");
    const res = await exchange(code, verifier);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id_token: string };
    const [h, p, s] = body.id_token.split(".") as [string, string, string];
    const jwks = (await (await fetch(`${emu.url}/.well-known/jwks.json`)).json()) as {
      keys: Record<string, unknown>[];
    };
    const key = createPublicKey({ key: jwks.keys[0] as never, format: "jwk" });
    expect(verify("sha256", Buffer.from(`${h}.${p}`), key, Buffer.from(s, "base64url"))).toBe(true);
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    expect(claims).toMatchObject({
      iss: `${emu.url}/`,
      aud: client.clientId,
      nonce: "n-1",
      org_id: orgId,
      org_name: "acme",
      email: "admin@acme.test",
      [`${ns}/roles`]: ["org_admin"],
    });
    // A code is single use (RFC 6749 §4.1.2).
    const again = await exchange(code, verifier);
    expect(again.status).toBe(403);
    expect(await again.json()).toEqual({ error: "invalid_grant", error_description: "Invalid authorization code" });
  });

  it("refuses a wrong code_verifier, a wrong redirect_uri and a wrong client secret", async () => {
    const verifier = b64url(randomBytes(32));
    const wrongVerifier = await exchange(
      (await login("admin@acme.test", verifier)).searchParams.get("code")!,
      b64url(randomBytes(32)),
    );
    expect(wrongVerifier.status).toBe(403);
    expect(((await wrongVerifier.json()) as { error_description: string }).error_description).toBe(
      "Failed to verify code verifier",
    );
    const wrongRedirect = await exchange(
      (await login("admin@acme.test", verifier)).searchParams.get("code")!,
      verifier,
      { redirect_uri: "http://127.0.0.1:9/other" },
    );
    expect(wrongRedirect.status).toBe(403);
    const code = (await login("admin@acme.test", verifier)).searchParams.get("code")!;
    const badSecret = await fetch(`${emu.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        code_verifier: verifier,
        redirect_uri: callback,
        client_id: client.clientId,
        client_secret: "wrong",
      }).toString(),
    });
    expect(badSecret.status).toBe(401);
  });

  it("sends a refused login back to the app as an error (unknown user), and logs out only to an Allowed Logout URL", async () => {
    const back = await login("nobody@acme.test");
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(back.searchParams.get("code")).toBeNull();

    const verifier = b64url(randomBytes(32));
    const tokens = (await (
      await exchange((await login("admin@acme.test", verifier)).searchParams.get("code")!, verifier)
    ).json()) as { id_token: string };
    const sid = JSON.parse(Buffer.from(tokens.id_token.split(".")[1]!, "base64url").toString()).sid as string;
    expect(emu.state.sessions.has(sid)).toBe(true);
    const bad = await fetch(
      `${emu.url}/oidc/logout?${new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: "https://evil.example" })}`,
      { redirect: "manual" },
    );
    expect(bad.status).toBe(400);
    const ok = await fetch(
      `${emu.url}/oidc/logout?${new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: client.logoutUrls[0]! })}`,
      { redirect: "manual" },
    );
    expect(ok.status).toBe(302);
    expect(ok.headers.get("location")).toBe(client.logoutUrls[0]);
    expect(emu.state.sessions.has(sid)).toBe(false);
  });
});
