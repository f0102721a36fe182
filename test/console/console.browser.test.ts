/**
 * The console in a real browser (Debian's Chromium through playwright-core): customer admins sign in
 * through the emulated Auth0 organization login, operators onboard and map, IT admins use setup
 * links, and one organization's admin can reach nothing of another's. Every page visited is checked
 * with axe (no serious or critical violation); the screenshots under docs/console/ come from here.
 */
import { eq } from "drizzle-orm";
import type { Page } from "playwright-core";
import supertest from "supertest";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { holds } from "../../db/schema.js";
import { getOrganization } from "../../src/directory/organizations.js";
import { applyDatabaseMapping } from "../helpers/sync-harness.js";
import {
  bootstrapToken,
  browserAvailable,
  checkPage,
  scimUser,
  signInThroughAuth0,
  startConsoleWorld,
  type ConsoleWorld,
} from "./harness.js";
import { runSync } from "../../src/directory/store-op.js";

const describeBrowser = browserAvailable() ? describe : describe.skip;
// Each test walks many pages, each checked by axe: minutes, not seconds, on a shared 2-core machine.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

describeBrowser("the web console in Chromium", () => {
  let w: ConsoleWorld;
  let slug: string;
  let aliceId: string;
  let other: { slug: string; userId: string; directoryId: string };

  const h1 = (page: Page) => page.locator("h1").innerText();

  async function signInWithToken(page: Page, token = bootstrapToken): Promise<void> {
    await page.goto(`${w.bridge.origin}/console`);
    await page.getByLabel("Admin API token").fill(token);
    await page.getByRole("button", { name: "Sign in with the token" }).click();
    await page.waitForLoadState("load");
  }

  beforeAll(async () => {
    w = await startConsoleWorld();
    await applyDatabaseMapping(w.bridge.store, w.bridge.organizationId, {
      roles: { rules: [{ when: { group: "Admins" }, grant: ["org_admin"], stop: true }], default: ["member"] },
    });
    const adminId = (await w.bridge.scim.post("/Users", scimUser("admin@acme.test")).expect(201)).body.id as string;
    aliceId = (
      await w.bridge.scim.post("/Users", scimUser("alice@acme.test", { displayName: "Alice Liddell" })).expect(201)
    ).body.id as string;
    await w.bridge.scim.post("/Users", scimUser("bob@acme.test", { displayName: "Bob Builder" })).expect(201);
    await w.bridge.scim
      .post("/Groups", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        displayName: "Admins",
        members: [{ value: adminId }],
      })
      .expect(201);
    // A second customer in the same bridge, for the isolation checks.
    const otherDir = await w.bridge.newDirectory();
    await applyDatabaseMapping(w.bridge.store, otherDir.organizationId);
    const otherUser = (await otherDir.scim.post("/Users", scimUser("carol@globex-secret.test")).expect(201)).body
      .id as string;
    await w.sync.drain();
    slug = runSync(w.bridge.db, getOrganization(w.bridge.organizationId))!.slug;
    other = {
      slug: runSync(w.bridge.db, getOrganization(otherDir.organizationId))!.slug,
      userId: otherUser,
      directoryId: otherDir.directoryId,
    };
  });

  afterAll(async () => {
    await w?.close();
  });

  it("a customer admin signs in through the organization's Auth0 login, blocks a user, and Auth0 then has the user blocked and refuses the next login", async () => {
    const context = await w.newContext();
    const page = await context.newPage();
    await page.goto(`${w.bridge.origin}/console`);
    await checkPage(page, "sign-in");
    await page.getByLabel("Organization").fill(slug);
    await page.getByRole("button", { name: "Continue to sign-in" }).click();
    expect(page.url()).toContain(`${w.sync.emulator.url}/authorize`);
    expect(new URL(page.url()).searchParams.get("code_challenge_method")).toBe("S256");
    await checkPage(page, "auth0-login");
    await page.getByLabel("Email").fill("admin@acme.test");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForLoadState("load");
    expect(await h1(page)).toContain("Users of");
    expect(await page.locator("header .who").innerText()).toContain("admin@acme.test (organization admin)");
    await checkPage(page, "users");

    await page.getByLabel("Search").fill("alice");
    await page.getByRole("button", { name: "Apply filters" }).click();
    const rows = page.locator("tbody tr");
    expect(await rows.count()).toBe(1);
    await page.getByRole("link", { name: "Alice Liddell" }).click();
    expect(await h1(page)).toBe("Alice Liddell");
    await checkPage(page, "user");

    await page.getByLabel(/Reason for blocking/).fill("left the company");
    await page.getByRole("button", { name: "Block user" }).click();
    expect(await page.getByRole("status").first().innerText()).toContain("The user is blocked");
    expect(await page.locator("dl.facts").first().innerText()).toContain("blocked (hold)");
    await w.sync.drain();
    const alice = w.sync.emulator.state.usersByEmail("alice@acme.test")[0]!;
    expect(alice.blocked).toBe(true);
    await page.reload();
    expect(await page.locator("dl.facts").nth(1).innerText()).toMatch(/Blocked in Auth0\s*yes/);
    await checkPage(page, "user-blocked");

    // The blocked user's next login is refused by Auth0 itself.
    const other = await w.newContext();
    const alicePage = await other.newPage();
    await signInThroughAuth0(alicePage, w.bridge.origin, slug, "alice@acme.test");
    expect(await h1(alicePage)).toBe("Access refused");
    expect(await alicePage.locator("main").innerText()).toContain("user is blocked");
    await checkPage(alicePage, "access-refused");

    // A member without the admin role signs in fine at Auth0 but gets no console.
    const bobPage = await (await w.newContext()).newPage();
    await signInThroughAuth0(bobPage, w.bridge.origin, slug, "bob@acme.test");
    expect(await h1(bobPage)).toBe("Access refused");
    expect(await bobPage.locator("main").innerText()).toContain("not an administrator");

    // Unblock, and the narrow phone layout.
    await page.getByRole("button", { name: "Unblock" }).click();
    expect(await page.getByRole("status").first().innerText()).toContain("hold is released");
    const phone = await (await w.newContext(360)).newPage();
    await signInThroughAuth0(phone, w.bridge.origin, slug, "admin@acme.test");
    await checkPage(phone, "users-360px");
  });

  it("shows the directory's SCIM URL and tokens, rotates a token shown once, and exports the audit trail and request log as CSV", async () => {
    const page = await (await w.newContext()).newPage();
    await signInThroughAuth0(page, w.bridge.origin, slug, "admin@acme.test");
    await page.getByRole("link", { name: "Directories & SCIM" }).click();
    expect(await page.locator("main").innerText()).toContain(w.bridge.baseUrl);
    expect(await page.locator("main").innerText()).toContain("used last");
    expect(await page.locator("[data-poll]").first().innerText()).toContain("Requests arriving");
    await checkPage(page, "directories");
    await page.getByRole("button", { name: "Rotate: issue a new token" }).click();
    const token = (await page.locator("#scim-token").innerText()).trim();
    expect(token).toMatch(/^scimb_/);
    await checkPage(page, "token-rotated");
    // The new token works at once; the page never shows it again.
    await supertest(w.bridge.origin)
      .get(`/scim/v2/${w.bridge.directoryId}/Users?count=1`)
      .set("Authorization", `Bearer ${token}`)
      .expect(200);
    await page.goto(`${w.bridge.origin}/console/orgs/${slug}/directories`);
    expect(await page.content()).not.toContain(token);

    await page.getByRole("link", { name: "Audit trail" }).click();
    await page.getByLabel("Action").fill("hold.");
    await page.getByRole("button", { name: "Apply filters" }).click();
    expect(await page.locator("tbody").innerText()).toContain("hold.place");
    await checkPage(page, "audit");
    const csv = await page.request.get(`${w.bridge.origin}/console/orgs/${slug}/audit?action=hold.&format=csv`);
    expect(csv.headers()["content-type"]).toContain("text/csv");
    const lines = (await csv.text()).trim().split("\r\n");
    expect(lines[0]).toBe("id,at,actorType,actorId,action,targetType,targetId,directoryId,before,after,requestId");
    expect(lines.some((l) => l.includes("hold.place") && l.includes(aliceId))).toBe(true);

    await page.goto(`${w.bridge.origin}/console/orgs/${slug}/directories/${w.bridge.directoryId}/requests`);
    expect(await page.locator("tbody").innerText()).toContain("POST /Users");
    await checkPage(page, "scim-requests");
    const log = await page.request.get(
      `${w.bridge.origin}/console/orgs/${slug}/directories/${w.bridge.directoryId}/requests?format=csv`,
    );
    expect((await log.text()).split("\r\n")[0]).toBe("at,method,path,status,scimType,detail,requestId,durationMs");
  });

  it("an operator onboards an organization, watches the checklist, and applies a mapping after fixing it and previewing the diff", async () => {
    const page = await (await w.newContext()).newPage();
    await signInWithToken(page);
    expect(await h1(page)).toBe("Organizations");
    await checkPage(page, "organizations");
    await page.getByLabel("Slug (Auth0 organization name)").fill("initech");
    await page.getByLabel("Display name").fill("Initech");
    await page.getByRole("button", { name: "Create organization" }).click();
    expect(await h1(page)).toBe("Organization initech created");
    const token = (await page.locator("#scim-token").innerText()).trim();
    const baseUrl = (await page.locator("#scim-url-new").innerText()).trim();
    await checkPage(page, "organization-created");

    // The IdP's first push, then the live Auth0 changes show on the checklist.
    const path = new URL(baseUrl).pathname;
    await supertest(w.bridge.origin)
      .post(`${path}/Users`)
      .set("Authorization", `Bearer ${token}`)
      .set("Content-Type", "application/scim+json")
      .send(JSON.stringify(scimUser("peter@initech.test")))
      .expect(201);
    await w.sync.drain();
    await page.getByRole("link", { name: "Open the onboarding checklist" }).click();
    const checklist = await page.locator("ul.checklist").innerText();
    const auth0OrgId = runSync(w.bridge.db, getOrganization("initech"))!.auth0OrgId!;
    expect(auth0OrgId).toMatch(/^org_/);
    expect(checklist).toContain(auth0OrgId);
    expect(checklist).toMatch(/done\s+First push received/);
    expect(checklist).toMatch(/to do\s+Mapping applied/);
    await checkPage(page, "organization-checklist");

    await page.getByRole("link", { name: "Mapping" }).click();
    await checkPage(page, "mapping");
    const editor = page.getByLabel("Mapping (YAML or JSON)");
    await editor.fill(
      "connection:\n  name: Username-Password-Authentication\n  type: database\nuserModel: isolatd\nprofile:\n  email: userName\n",
    );
    await page.getByRole("button", { name: "Check and preview" }).click();
    const problems = await page.locator("ul.issues").innerText();
    expect(problems).toMatch(/line 4, column \d+ \(userModel\)/);
    await checkPage(page, "mapping-problems");

    await editor.fill(
      "connection:\n  name: Username-Password-Authentication\n  type: database\nuserModel: isolated\nprofile:\n  email: userName\nroles:\n  default: [member]\n",
    );
    await page.getByRole("button", { name: "Check and preview" }).click();
    expect(await page.locator("#preview ~ p, section[aria-labelledby=preview] p").first().innerText()).toMatch(
      /1 of 1 user\(s\) would change: .*roles 1/,
    );
    expect(await page.locator("section[aria-labelledby=preview] tbody").innerText()).toContain("+ member");
    expect(runSync(w.bridge.db, getOrganization("initech"))!.activeMappingVersion).toBeNull(); // a preview changes nothing
    await checkPage(page, "mapping-preview");
    await page.getByLabel("Comment for the history").fill("members get the member role");
    await page.getByRole("button", { name: "Apply" }).click();
    expect(await page.getByRole("status").first().innerText()).toContain("mapping is applied");
    expect(runSync(w.bridge.db, getOrganization("initech"))!.activeMappingVersion).toBe(1);
    expect(await page.locator("table").last().innerText()).toMatch(/1\s+active/);
    await w.sync.drain();
    const peter = w.sync.emulator.state.usersByEmail("peter@initech.test")[0]!;
    expect(
      w.sync.emulator.state
        .memberRolesOf(auth0OrgId, peter.user_id)
        .map((id) => w.sync.emulator.state.roles.get(id)?.name),
    ).toEqual(["member"]);

    for (const [link, shot] of [
      ["Jobs", "jobs"],
      ["Guard approvals", "guard"],
      ["Budget & latency", "health"],
    ] as const) {
      await page.goto(`${w.bridge.origin}/console/orgs`);
      await page.getByRole("link", { name: link }).click();
      await checkPage(page, shot);
    }
  });

  it("a customer admin of one organization reaches nothing of another's, by any URL", async () => {
    const context = await w.newContext();
    const page = await context.newPage();
    await signInThroughAuth0(page, w.bridge.origin, slug, "admin@acme.test");
    const otherOrg = runSync(w.bridge.db, getOrganization(other.slug))!;
    const notFound = [
      `/console/orgs/${other.slug}/users`,
      `/console/orgs/${otherOrg.id}/users`,
      `/console/orgs/${other.slug}/users/${other.userId}`,
      `/console/orgs/${slug}/users/${other.userId}`,
      `/console/orgs/${other.slug}/directories`,
      `/console/orgs/${other.slug}/audit?format=csv`,
      `/console/orgs/${other.slug}/directories/${other.directoryId}/requests?format=csv`,
      `/console/orgs/${slug}/directories/${other.directoryId}/requests`,
      `/console/orgs/${slug}/directories/${other.directoryId}/status.json`,
      `/console/orgs/${slug}/users?directory=${other.directoryId}`,
    ];
    for (const url of notFound) {
      const res = await page.request.get(`${w.bridge.origin}${url}`);
      expect(res.status(), url).toBe(404);
      expect(await res.text(), url).not.toContain("carol@globex-secret.test");
    }
    for (const url of [
      "/console/orgs",
      "/console/jobs",
      "/console/guard",
      "/console/health",
      `/console/orgs/${slug}/mapping`,
      `/console/orgs/${slug}/setup-links`,
      `/console/orgs/${other.slug}`,
    ]) {
      const res = await page.request.get(`${w.bridge.origin}${url}`);
      expect(res.status(), url).toBe(403);
    }
    // A change aimed at the other organization, with a valid CSRF token, changes nothing.
    await page.goto(`${w.bridge.origin}/console/orgs/${slug}/users/${aliceId}`);
    const csrf = await page.locator("input[name=_csrf]").first().getAttribute("value");
    const res = await page.request.post(`${w.bridge.origin}/console/orgs/${other.slug}/users/${other.userId}/block`, {
      form: { _csrf: csrf!, reason: "not yours" },
    });
    expect(res.status()).toBe(404);
    expect(w.bridge.db.select().from(holds).where(eq(holds.userId, other.userId)).all()).toEqual([]);
    const forbidden = await page.request.post(`${w.bridge.origin}/console/orgs`, {
      form: { _csrf: csrf!, slug: "sneaky" },
    });
    expect(forbidden.status()).toBe(403);
    expect(runSync(w.bridge.db, getOrganization("sneaky"))).toBeUndefined();
    await page.goto(`${w.bridge.origin}/console/orgs/${other.slug}/users`);
    await checkPage(page, "not-found");
  });

  it("refuses state changes without the session's CSRF token or from another origin, and ends sessions at sign-out and after the idle timeout", async () => {
    const context = await w.newContext();
    const page = await context.newPage();
    await signInThroughAuth0(page, w.bridge.origin, slug, "admin@acme.test");
    const blockUrl = `${w.bridge.origin}/console/orgs/${slug}/users/${aliceId}/block`;
    await page.goto(`${w.bridge.origin}/console/orgs/${slug}/users/${aliceId}`);
    const csrf = (await page.locator("input[name=_csrf]").first().getAttribute("value"))!;
    const heldBefore = w.bridge.db.select().from(holds).where(eq(holds.userId, aliceId)).all().length;
    expect((await page.request.post(blockUrl, { form: { reason: "no token" } })).status()).toBe(403);
    expect(
      (
        await page.request.post(blockUrl, { form: { reason: "wrong token", _csrf: `${csrf.slice(0, -2)}xx` } })
      ).status(),
    ).toBe(403);
    expect(
      (
        await page.request.post(blockUrl, {
          form: { reason: "cross-site", _csrf: csrf },
          headers: { origin: "https://evil.example" },
        })
      ).status(),
    ).toBe(403);
    expect(w.bridge.db.select().from(holds).where(eq(holds.userId, aliceId)).all().length).toBe(heldBefore);

    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "scim-console")!;
    expect(session.httpOnly).toBe(true);
    expect(session.sameSite).toBe("Lax");
    // Nothing kept in browser storage (the test's tsconfig has no DOM types, hence the string).
    expect(await page.evaluate("JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })")).toBe(
      "{}{}",
    );
    const headers = (await page.request.get(`${w.bridge.origin}/console/orgs/${slug}/users`)).headers();
    expect(headers["content-security-policy"]).toContain("script-src 'self'");
    expect(headers["content-security-policy"]).not.toContain("unsafe-inline");

    // Sign-out ends the session server-side: the old cookie no longer opens anything.
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.waitForLoadState("load");
    expect(await h1(page)).toBe("Sign in");
    await context.addCookies([session]);
    await page.goto(`${w.bridge.origin}/console/orgs/${slug}/users`);
    expect(await h1(page)).toBe("Sign in");

    // Idle timeout (8 hours).
    const again = await (await w.newContext()).newPage();
    await signInThroughAuth0(again, w.bridge.origin, slug, "admin@acme.test");
    expect(await h1(again)).toContain("Users of");
    w.advance(8 * 3_600_000 + 60_000);
    await again.reload();
    expect(await h1(again)).toBe("Sign in");
  });

  it("a setup link lets an IT admin without an account generate a SCIM token that authenticates pushes, and stops working once revoked or expired", async () => {
    const operator = await (await w.newContext()).newPage();
    await signInWithToken(operator);
    await operator.goto(`${w.bridge.origin}/console/orgs/${slug}/setup-links`);
    await operator.getByLabel("Expires after").selectOption("24h");
    await operator.getByRole("button", { name: "Create a setup link" }).click();
    const url = (await operator.locator("#setup-url").innerText()).trim();
    expect(url).toMatch(new RegExp(`^${w.bridge.origin}/console/setup/sbs_`));
    await checkPage(operator, "setup-links");

    const itAdmin = await (await w.newContext()).newPage();
    await itAdmin.goto(url);
    expect(new URL(itAdmin.url()).pathname).toBe("/console/setup"); // the token leaves the address bar
    expect(await h1(itAdmin)).toContain("Connect your identity provider");
    expect(await itAdmin.locator("main").innerText()).toContain("Okta: step by step");
    await checkPage(itAdmin, "setup");
    await itAdmin.getByRole("button", { name: "Generate a SCIM token" }).click();
    const token = (await itAdmin.locator("#scim-token").innerText()).trim();
    await checkPage(itAdmin, "setup-token");
    await supertest(w.bridge.origin)
      .post(`/scim/v2/${w.bridge.directoryId}/Users`)
      .set("Authorization", `Bearer ${token}`)
      .set("Content-Type", "application/scim+json")
      .send(JSON.stringify(scimUser("dave@acme.test")))
      .expect(201);
    await itAdmin.goto(`${w.bridge.origin}/console/setup`);
    expect(await itAdmin.locator("main").innerText()).toContain("POST /Users");
    // The link reaches directory setup only: users and audit stay closed.
    expect((await itAdmin.request.get(`${w.bridge.origin}/console/orgs/${slug}/users`)).status()).toBe(403);
    expect((await itAdmin.request.get(`${w.bridge.origin}/console/orgs/${slug}/audit`)).status()).toBe(403);
    expect((await itAdmin.request.get(`${w.bridge.origin}/console/orgs/${other.slug}/directories`)).status()).toBe(404);

    // Revoked: the open page stops working at once, and the link no longer opens.
    await operator.goto(`${w.bridge.origin}/console/orgs/${slug}/setup-links`);
    await operator
      .getByRole("button", { name: /^Revoke link/ })
      .first()
      .click();
    expect(await operator.getByRole("status").first().innerText()).toContain("setup link is revoked");
    await itAdmin.reload();
    expect(await h1(itAdmin)).toBe("Access ended");
    await itAdmin.goto(url);
    expect(await h1(itAdmin)).toBe("This setup link does not work");
    expect(await itAdmin.locator("main").innerText()).toContain("been revoked");
    await checkPage(itAdmin, "setup-link-revoked");

    // Expired: a 30-minute link (made through the admin API) stops working once its time is over.
    const made = await supertest(w.bridge.origin)
      .post(`/admin/v1/organizations/${slug}/setup-links`)
      .set("Authorization", `Bearer ${bootstrapToken}`)
      .send({ expires: "30m" })
      .expect(201);
    const second = made.body.url as string;
    const it2 = await (await w.newContext()).newPage();
    await it2.goto(second);
    expect(await h1(it2)).toContain("Connect your identity provider");
    w.advance(31 * 60_000);
    await it2.reload();
    expect(await h1(it2)).toBe("Access ended");
    await it2.goto(second);
    expect(await it2.locator("main").innerText()).toContain("has expired");
    const audit = await supertest(w.bridge.origin)
      .get(`/admin/v1/organizations/${slug}/audit?action=setup_link.`)
      .set("Authorization", `Bearer ${bootstrapToken}`)
      .expect(200);
    const actions = (audit.body.entries as { action: string }[]).map((e) => e.action);
    expect(actions.filter((a) => a === "setup_link.open")).toHaveLength(2);
    expect(actions).toContain("setup_link.revoke");
    expect(actions.filter((a) => a === "setup_link.create")).toHaveLength(2);
  });
});
