import * as client from "openid-client";

/**
 * The console as an OIDC relying party of Auth0 (a Regular Web Application), through openid-client:
 * authorization code with PKCE (S256), state and nonce, the `organization` parameter, and the
 * checks Auth0's "Use Organizations with Tokens" asks for on the callback: the ID token's `org_id`
 * must be the organization that was requested, and the admin role must be in the namespaced roles
 * claim that the post-login Action adds ("Create Custom Claims").
 */
export interface ConsoleOidcSettings {
  /** The issuer, with Auth0's trailing slash: https://{domain}/ (the emulator's origin in tests). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Namespace of the roles claim: `${namespace}/roles`. */
  roleClaimNamespace: string;
  /** The role that makes a member an administrator (of its organization, or an operator in the operators' organization). */
  adminRole: string;
  /** The Auth0 organization id of the SaaS company's own staff; its admins are operators. */
  operatorOrganization?: string;
}

export interface LoginStart {
  url: string;
  verifier: string;
  state: string;
  nonce: string;
}

export type CallbackOutcome =
  | { ok: true; sub: string; name: string; orgId: string; roles: string[]; idToken: string }
  | { ok: false; reason: string };

export class ConsoleOidc {
  private config: Promise<client.Configuration> | undefined;

  constructor(
    readonly settings: ConsoleOidcSettings,
    private readonly callbackUrl: string,
  ) {}

  /** Discovery runs at the first sign-in, not at start, and is retried after a failure. */
  private configuration(): Promise<client.Configuration> {
    const insecure = this.settings.issuer.startsWith("http:");
    this.config ??= client
      .discovery(
        new URL(this.settings.issuer),
        this.settings.clientId,
        undefined,
        client.ClientSecretBasic(this.settings.clientSecret),
        insecure ? { execute: [client.allowInsecureRequests] } : undefined,
      )
      .catch((err: unknown) => {
        this.config = undefined;
        throw err;
      });
    return this.config;
  }

  /** Origin of the authorization server (the CSP form-action must allow redirects to it). */
  get origin(): string {
    return new URL(this.settings.issuer).origin;
  }

  async start(auth0OrgId: string): Promise<LoginStart> {
    const config = await this.configuration();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.callbackUrl,
      scope: "openid profile email",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
      organization: auth0OrgId,
    });
    return { url: url.href, verifier, state, nonce };
  }

  async finish(
    currentUrl: URL,
    tx: { verifier: string; state: string; nonce: string; auth0OrgId: string },
  ): Promise<CallbackOutcome> {
    const config = await this.configuration();
    const error = currentUrl.searchParams.get("error");
    if (error) return { ok: false, reason: currentUrl.searchParams.get("error_description") ?? error };
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: tx.verifier,
        expectedState: tx.state,
        expectedNonce: tx.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      return {
        ok: false,
        reason: `the sign-in could not be completed (${err instanceof Error ? err.message : String(err)})`,
      };
    }
    const claims = tokens.claims();
    if (!claims || !tokens.id_token) return { ok: false, reason: "no ID token was returned" };
    // Auth0: validate org_id "in the same way that other claims like exp and nonce are validated".
    if (claims.org_id !== tx.auth0OrgId)
      return { ok: false, reason: "the ID token is for another organization than the one requested" };
    const rolesClaim = claims[`${this.settings.roleClaimNamespace}/roles`];
    const roles = Array.isArray(rolesClaim) ? rolesClaim.filter((r): r is string => typeof r === "string") : [];
    const name =
      typeof claims.email === "string" ? claims.email : typeof claims.name === "string" ? claims.name : claims.sub;
    return { ok: true, sub: claims.sub, name, orgId: claims.org_id as string, roles, idToken: tokens.id_token };
  }

  async logoutUrl(idToken: string, returnTo: string): Promise<string | undefined> {
    try {
      const config = await this.configuration();
      return client.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: returnTo }).href;
    } catch {
      return undefined;
    }
  }
}
