/**
 * The whole product for console tests: the bridge (SCIM, admin API, console, post-login hook) on an
 * ephemeral port, the real sync engine against the Auth0 emulator, whose OIDC login the console signs
 * in through, and Debian's Chromium driven by playwright-core. The console's clock can be moved
 * forward to test session and link expiry.
 */
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AxeBuilder } from "@axe-core/playwright";
import type { RequestHandler } from "express";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { pino } from "pino";
import { expect } from "vitest";
import { adminService, type AdminDeps } from "../../src/admin/router.js";
import { adminRouter } from "../../src/http/admin-router.js";
import { consoleRouter } from "../../src/console/router.js";
import { postLoginHookRouter } from "../../src/http/post-login-hook.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { scimRequestLog } from "../../src/http/scim-request-log.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const bootstrapToken = "console-tests-bootstrap-operator-token-0123456789";
export const roleNamespace = "https://console.scim-bridge.test";
const hookSecret = "console-tests-post-login-hook-secret-0123456789";
const clientSecret = "console-tests-client-secret";

/** Whether the browser suite can run here; under CI a missing browser is a failure, never a skip. */
export function browserAvailable(): boolean {
  if (existsSync(chromiumPath)) return true;
  if (process.env.CI === "true")
    throw new Error(
      `Chromium is missing at ${chromiumPath}: CI must run the browser suite (.ci/run installs Debian's chromium)`,
    );
  console.warn(
    `\n*** SKIPPING the console browser suite: no Chromium at ${chromiumPath}. Install it with: apt-get install -y chromium ***\n`,
  );
  return false;
}

export interface ConsoleWorld {
  bridge: TestBridge;
  sync: SyncHarness;
  browser: Browser;
  /** Moves the console's clock forward (sessions, setup links). */
  advance(ms: number): void;
  newContext(width?: number): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function startConsoleWorld(): Promise<ConsoleWorld> {
  let admin: RequestHandler | undefined;
  let consoleApp: RequestHandler | undefined;
  let hook: RequestHandler | undefined;
  let requestLog: RequestHandler | undefined;
  const bridge = await createTestBridge({
    scimMiddleware: [(req, res, next) => requestLog!(req, res, next)],
    extraRouters: [
      { path: "/admin/v1", router: (req, res, next) => admin!(req, res, next) },
      { path: "/console", router: (req, res, next) => consoleApp!(req, res, next) },
      { path: "/hooks/auth0/post-login", router: (req, res, next) => hook!(req, res, next) },
    ],
  });
  const sync = await startSyncHarness(bridge.store, {
    oidcClients: [
      {
        clientId: "console-test",
        clientSecret,
        callbacks: [`${bridge.origin}/console/callback`],
        logoutUrls: [`${bridge.origin}/console`],
      },
    ],
    roleClaimNamespace: roleNamespace,
    postLoginHook: { url: `${bridge.origin}/hooks/auth0/post-login`, secret: hookSecret },
  });
  let offset = 0;
  const now = () => Date.now() + offset;
  const log = pino({ level: "silent" });
  const adminDeps: AdminDeps = {
    store: sqliteStore(bridge.sqlite),
    publicUrl: bridge.origin,
    bootstrapOperatorToken: bootstrapToken,
    log,
    signOut: (userId) => sync.engine.signOut(userId),
    notifyWorker: () => sync.engine.worker.notify(),
    now,
    rateLimit: false,
  };
  admin = adminRouter(adminDeps);
  hook = postLoginHookRouter(bridge.store, hookSecret);
  const scimLog = scimRequestLog(bridge.bookkeeping, { log });
  requestLog = scimLog;
  consoleApp = consoleRouter({
    store: sqliteStore(bridge.sqlite),
    publicUrl: bridge.origin,
    log,
    admin: adminService(adminDeps),
    oidc: {
      issuer: `${sync.emulator.url}/`,
      clientId: "console-test",
      clientSecret,
      roleClaimNamespace: roleNamespace,
      adminRole: "org_admin",
    },
    bootstrapOperatorToken: bootstrapToken,
    sessionSecret: "console-tests-session-secret-0123456789abcdef",
    now,
  });
  // playwright-core launches with a fresh temporary profile of its own (it refuses --user-data-dir here).
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    bridge,
    sync,
    browser,
    advance: (ms) => void (offset += ms),
    newContext: (width = 1280) =>
      browser.newContext({ viewport: { width, height: 800 }, colorScheme: "light", reducedMotion: "reduce" }),
    async close() {
      await browser.close();
      await scimLog.close();
      await sync.close();
      await bridge.close();
    },
  };
}

// The docs' screenshots are rewritten only when asked (UPDATE_SCREENSHOTS=1): a test run must not change
// tracked files. Otherwise they still are taken (masking included), into a temporary folder.
const shotsDir =
  process.env.UPDATE_SCREENSHOTS === "1"
    ? join(import.meta.dirname, "../../docs/console")
    : join(tmpdir(), "scim-bridge-console-shots");

/**
 * Every page a test visits goes through here: no serious or critical axe violation (WCAG 2 A/AA),
 * and a screenshot for the docs when `shot` is given (secrets masked).
 */
export async function checkPage(page: Page, shot?: string): Promise<void> {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(
    serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    `accessibility of ${page.url()}`,
  ).toEqual([]);
  if (shot) {
    mkdirSync(shotsDir, { recursive: true });
    await page.screenshot({
      path: join(shotsDir, `${shot}.png`),
      fullPage: true,
      animations: "disabled",
      caret: "hide",
      mask: [page.locator(".secret")],
    });
  }
}

export const scimUser = (userName: string, extra: Record<string, unknown> = {}) => ({
  schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
  userName,
  name: { givenName: userName.split("@")[0], familyName: "Tester" },
  emails: [{ value: userName, type: "work", primary: true }],
  active: true,
  ...extra,
});

/** Signs in through the console's "Customer administrators" form and the emulator's login page. */
export async function signInThroughAuth0(page: Page, origin: string, orgSlug: string, email: string): Promise<void> {
  await page.goto(`${origin}/console`);
  await page.getByLabel("Organization").fill(orgSlug);
  await page.getByRole("button", { name: "Continue to sign-in" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForLoadState("load");
}
