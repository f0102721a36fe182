import { describe, expect, it } from "vitest";
import express from "express";
import request from "supertest";
import { createLogger, requestLogger } from "../../src/logging.js";
import { requestId } from "../../src/http/request-id.js";

/** A pino destination that keeps every line, parsed. */
function capture() {
  const raw: string[] = [];
  return {
    stream: { write: (line: string) => void raw.push(line) },
    text: () => raw.join(""),
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function appWith(out: ReturnType<typeof capture>) {
  const log = createLogger({ level: "info", destination: out.stream });
  const app = express();
  app.use(requestId());
  app.use(requestLogger(log));
  app.use(express.json());
  const scim = express.Router({ mergeParams: true });
  scim.post("/Users", (req, res) => {
    // A careless debug line that dumps headers and body must still not leak anything.
    log.info({ req: { headers: req.headers }, body: req.body as unknown }, "received user");
    res.status(201).json({ id: "2819c223-7f76-453a-919d-413861904646" });
  });
  scim.get("/Users/:id", (_req, res) => void res.json({}));
  scim.get("/Users", (_req, res) => void res.json({ totalResults: 0 }));
  app.use("/scim/v2/:directory", scim);
  return { app, log };
}

describe("logging", () => {
  it("never writes a bearer token or a password sent in a SCIM request", async () => {
    const out = capture();
    const { app } = appWith(out);
    await request(app)
      .post("/scim/v2/dir-abc2def3/Users")
      .set("Authorization", "Bearer secret123")
      .set("Cookie", "session=cookie-secret-456")
      .send({ userName: "ann@acme.test", password: "hunter2-password", name: { givenName: "Ann" } })
      .expect(201);

    const text = out.text();
    expect(text).not.toContain("secret123");
    expect(text).not.toContain("cookie-secret-456");
    expect(text).not.toContain("hunter2-password");
    const dump = out.lines().find((l) => l.msg === "received user") as {
      req: { headers: Record<string, string> };
      body: Record<string, unknown>;
    };
    expect(dump.req.headers.authorization).toBe("[redacted]");
    expect(dump.req.headers.cookie).toBe("[redacted]");
    expect(dump.body.password).toBe("[redacted]");
    // Non-secret fields of the same objects stay readable.
    expect(dump.body.name).toEqual({ givenName: "Ann" });
  });

  it("logs one line per request with method, route template, status, duration and request id, without query values or bodies", async () => {
    const out = capture();
    const { app } = appWith(out);
    const res = await request(app)
      .get("/scim/v2/dir-abc2def3/Users?filter=userName%20eq%20%22ann%40acme.test%22&startIndex=1")
      .set("X-Request-Id", "req-42")
      .expect(200);
    expect(res.headers["x-request-id"]).toBe("req-42");

    const line = out.lines().find((l) => l.msg === "request")!;
    expect(line).toMatchObject({
      requestId: "req-42",
      method: "GET",
      route: "/scim/v2/:directory/Users",
      query: ["filter", "startIndex"],
      status: 200,
      level: "info",
    });
    expect(typeof line.durationMs).toBe("number");
    expect(out.text()).not.toContain("acme.test");
    expect(out.text()).not.toContain("dir-abc2def3");
  });

  it("uses the id placeholder for resource ids and the path for requests that matched no route", async () => {
    const out = capture();
    const { app } = appWith(out);
    await request(app).get("/scim/v2/dir-abc2def3/Users/2819c223-7f76-453a-919d-413861904646").expect(200);
    await request(app).get("/scim/v2/dir-abc2def3/Userz?x=ann%40acme.test").expect(404);
    const [found, missing] = out.lines().filter((l) => l.msg === "request");
    expect(found).toMatchObject({ route: "/scim/v2/:directory/Users/:id", status: 200 });
    expect(missing).toMatchObject({ route: "(unmatched)", path: "/scim/v2/dir-abc2def3/Userz", status: 404 });
    expect(out.text()).not.toContain("2819c223");
    expect(out.text()).not.toContain("acme.test");
  });

  it("redacts secrets at any of the usual places: config objects, nested tokens, the hook signature", () => {
    const out = capture();
    const log = createLogger({ level: "debug", destination: out.stream });
    log.info(
      {
        config: {
          auth0: { domain: "t.auth0.com", clientId: "cid", clientSecret: "cs-XYZ" },
          adminToken: "adm-XYZ",
          hookSecret: "hook-XYZ",
        },
      },
      "config",
    );
    log.info({ issued: { token: "scimb_tok-XYZ", hint: "XYZ" } }, "token issued");
    log.info(
      {
        headers: { "x-scim-bridge-signature": "t=1,v1=sig-XYZ" },
        form: { client_secret: "cs2-XYZ", grant_type: "client_credentials" },
      },
      "hook",
    );
    log.info({ tokens: [{ access_token: "at-XYZ", refresh_token: "rt-XYZ" }] }, "list");
    const text = out.text();
    for (const secret of ["cs-XYZ", "adm-XYZ", "hook-XYZ", "scimb_tok-XYZ", "sig-XYZ", "cs2-XYZ", "at-XYZ", "rt-XYZ"])
      expect(text).not.toContain(secret);
    expect(text).toContain("t.auth0.com");
    expect(text).toContain("client_credentials");
  });

  it("respects the level: debug lines are dropped at info, and silent writes nothing", () => {
    const out = capture();
    createLogger({ level: "info", destination: out.stream }).debug("hidden");
    createLogger({ level: "silent", destination: out.stream }).error("hidden too");
    expect(out.text()).toBe("");
  });
});
