/**
 * Operators must see trouble: a reconcile that keeps failing on the same Auth0 error in one
 * organization is logged at warn with the organization, the Auth0 error code and what to do, and
 * every failure reaches the metrics counter.
 */
import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { Auth0CallError } from "../../src/auth0/errors.js";
import { createMetrics } from "../../src/http/metrics.js";
import { auth0FailureSink } from "../../src/sync/failures.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: "info" }, stream), lines };
}

const org = { id: "org-1", slug: "acme" };
const scope = () =>
  new Auth0CallError(
    "fatal",
    403,
    "insufficient_scope",
    "Auth0 403 insufficient_scope: Insufficient scope, expected any of: update:users",
  );

describe("repeated Auth0 failures", () => {
  it("are logged at warn with the organization and the Auth0 error code from the third in a row, and counted on /metrics", async () => {
    const { log, lines } = capture();
    const metrics = createMetrics({
      defaultMetrics: false,
      organizationLabel: (id) => (id === org.id ? org.slug : id),
    });
    const sink = auth0FailureSink(log, (id, code) => metrics.auth0Failure(id, code));
    sink.failed(org, scope());
    sink.failed(org, scope());
    expect(lines).toEqual([]);
    sink.failed(org, scope());
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      organization: "acme",
      auth0ErrorCode: "insufficient_scope",
      auth0Status: 403,
      failures: 3,
    });
    expect(String(lines[0]!.action)).toMatch(/scope/);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/scim_bridge_auth0_failures_total\{organization="acme",error_code="insufficient_scope"\} 3/);
  });

  it("starts counting again after a success", async () => {
    const { log, lines } = capture();
    const sink = auth0FailureSink(log);
    sink.failed(org, scope());
    sink.failed(org, scope());
    sink.succeeded(org.id);
    sink.failed(org, scope());
    sink.failed(org, scope());
    await new Promise((r) => setImmediate(r));
    expect(lines).toEqual([]);
  });
});
