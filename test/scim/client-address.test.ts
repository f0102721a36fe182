/**
 * Behind a load balancer or reverse proxy every request arrives from the proxy's address. With
 * TRUST_PROXY naming the proxy, per-address limits key on the client that X-Forwarded-For names, so
 * one client guessing tokens cannot lock every other client out; without it, a forged header moves
 * nothing.
 */
import { sqliteStore } from "../../src/directory/sql.js";
import supertest from "supertest";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { createApp } from "../../src/http/app.js";

let opened: OpenDatabase | undefined;
afterEach(() => opened?.close());

function app(trustProxy: false | number | string[]) {
  opened = openDatabase("sqlite::memory:");
  const http = supertest(
    createApp({
      store: sqliteStore(opened.sqlite),
      publicUrl: "http://localhost",
      unauthenticatedLimit: { ratePerSecond: 0.001, burst: 2 },
      trustProxy,
    }),
  );
  let n = 0;
  return (from: string) =>
    http
      .get("/scim/v2/dir_unknown/Users")
      .set("Authorization", `Bearer guess-${n++}-${"x".repeat(30)}`)
      .set("X-Forwarded-For", from)
      .then((r) => r.status);
}

describe("client address behind a proxy", () => {
  it("limits failed authentications per forwarded client when the proxy is trusted", async () => {
    const guess = app(["loopback"]);
    expect([await guess("203.0.113.5"), await guess("203.0.113.5"), await guess("203.0.113.5")]).toEqual([
      401, 401, 429,
    ]);
    // Another client behind the same proxy has its own budget.
    expect(await guess("198.51.100.7")).toBe(401);
  });

  it("ignores X-Forwarded-For from an untrusted peer: a forged header cannot buy a fresh budget", async () => {
    const guess = app(false);
    expect([await guess("203.0.113.5"), await guess("203.0.113.5")]).toEqual([401, 401]);
    expect(await guess("198.51.100.7")).toBe(429);
  });
});

describe("TRUST_PROXY", () => {
  it("takes hops, addresses, subnets and named ranges, and trusts nothing by default", () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: "1" }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: "loopback, 10.0.0.0/8,fd00::/8, 192.0.2.1" }).trustProxy).toEqual([
      "loopback",
      "10.0.0.0/8",
      "fd00::/8",
      "192.0.2.1",
    ]);
  });

  it.each(["true", "10.0.0.0/33", "proxy.internal", "11", "loopback,"])(
    "refuses %j with the variable named",
    (value) => {
      expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(ConfigError);
      expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY must be/);
    },
  );
});
