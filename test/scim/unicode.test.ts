import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { foldCase } from "../../src/directory/fold.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { storedUser } from "../helpers/store.js";

/**
 * Unicode-aware case-insensitive matching (RFC 7643 §2.2 caseExact=false, RFC 7644 §7.8): NFC plus
 * case folding, the same in SQL filters, in PATCH value filters and in userName uniqueness.
 */
const patchOp = (Operations: unknown[]) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });
const nfd = (s: string) => s.normalize("NFD");

let bridge: TestBridge;
const ids: Record<string, string> = {};
beforeAll(async () => {
  bridge = await createTestBridge();
  const people = [
    {
      key: "elodie",
      userName: "Élodie.Durand@Exemple.fr",
      displayName: "Élodie Durand",
      title: "Ingénieure",
      emails: [{ value: "ÉLODIE@EXEMPLE.FR", type: "work" }],
    },
    {
      key: "odysseus",
      userName: "ΟΔΥΣΣΕΥΣ@ithaca.gr",
      displayName: "ΟΔΥΣΣΕΥΣ",
      emails: [{ value: "Οδυσσευς@ithaca.gr", type: "work" }],
    },
    { key: "ascii", userName: "plain@example.com", displayName: "Plain Person" },
  ];
  for (const { key, ...user } of people) ids[key] = (await bridge.scim.post("/Users", user).expect(201)).body.id;
});
afterAll(async () => bridge.close());

const find = async (filter: string, resource = "Users") => {
  const res = await bridge.scim.get(`/${resource}?filter=${encodeURIComponent(filter)}`).expect(200);
  return (res.body.Resources as { id: string }[]).map((r) => r.id).sort();
};

describe("foldCase", () => {
  it("equates case and composition variants, folds final sigma, and keeps ß distinct from ss", () => {
    expect(foldCase("ÉLODIE")).toBe(foldCase("élodie"));
    expect(foldCase(nfd("Élodie"))).toBe(foldCase("élodie"));
    expect(foldCase("ΟΔΟΣ")).toBe(foldCase("οδοσ"));
    expect(foldCase("οδος")).toBe(foldCase("ΟΔΟΣ"));
    expect(foldCase("straße")).not.toBe(foldCase("strasse"));
  });
});

describe("filters", () => {
  it("matches non-ASCII letters in any case on folded columns (userName, emails.value)", async () => {
    expect(await find('userName eq "élodie.durand@exemple.fr"')).toEqual([ids.elodie]);
    expect(await find('userName eq "ΟΔΥΣΣΕΥΣ@ITHACA.GR"')).toEqual([ids.odysseus]);
    expect(await find('userName eq "οδυσσευς@ithaca.gr"')).toEqual([ids.odysseus]);
    expect(await find('emails.value eq "élodie@exemple.fr"')).toEqual([ids.elodie]);
    expect(await find('emails[type eq "work" and value eq "ΟΔΥΣΣΕΥΣ@ITHACA.GR"]')).toEqual([ids.odysseus]);
  });

  it("matches on attributes read in SQL without a folded column (displayName, title), which lower() folded ASCII-only", async () => {
    expect(await find('displayName eq "élodie durand"')).toEqual([ids.elodie]);
    expect(await find('displayName sw "ÉLO"')).toEqual([ids.elodie]);
    expect(await find('title eq "INGÉNIEURE"')).toEqual([ids.elodie]);
    expect(await find('displayName co "δυσσ"')).toEqual([ids.odysseus]);
  });

  it("treats a decomposed (NFD) filter value like the composed one", async () => {
    expect(await find(`userName eq "${nfd("élodie.durand@exemple.fr")}"`)).toEqual([ids.elodie]);
    expect(await find(`displayName eq "${nfd("ÉLODIE DURAND")}"`)).toEqual([ids.elodie]);
  });

  it("folds Group displayName the same way", async () => {
    const id = (await bridge.scim.post("/Groups", { displayName: "Équipe Ωmega" }).expect(201)).body.id;
    expect(await find('displayName eq "ÉQUIPE ωMEGA"', "Groups")).toEqual([id]);
    await bridge.scim.post("/Groups", { displayName: "équipe ΩMEGA" }).expect(409);
  });
});

describe("userName uniqueness", () => {
  it("refuses a userName that differs only in case or composition, with 409 uniqueness", async () => {
    for (const userName of ["ÉLODIE.DURAND@EXEMPLE.FR", nfd("élodie.durand@exemple.fr"), "οδυσσευς@ithaca.gr"]) {
      const res = await bridge.scim.post("/Users", { userName }).expect(409);
      expect(res.body.scimType).toBe("uniqueness");
    }
  });

  it("refuses a rename onto another user's folded userName", async () => {
    const res = await bridge.scim
      .patch(`/Users/${ids.ascii}`, patchOp([{ op: "replace", path: "userName", value: "ÉLODIE.durand@exemple.FR" }]))
      .expect(409);
    expect(res.body.scimType).toBe("uniqueness");
    expect((await storedUser(bridge.store, ids.ascii!))!.userName).toBe("plain@example.com");
  });
});

describe("PATCH value filters and value lists", () => {
  it("finds a value through a filter in another case and composition", async () => {
    await bridge.scim
      .patch(
        `/Users/${ids.elodie}`,
        patchOp([{ op: "replace", path: `emails[value eq "${nfd("élodie@exemple.fr")}"].type`, value: "home" }]),
      )
      .expect(204);
    expect((await storedUser(bridge.store, ids.elodie!))!.document.emails).toEqual([
      { value: "ÉLODIE@EXEMPLE.FR", type: "home" },
    ]);
  });

  it("adds no duplicate of a value that differs only in case, and removes a listed value in any case", async () => {
    await bridge.scim
      .patch(
        `/Users/${ids.odysseus}`,
        patchOp([{ op: "add", path: "emails", value: [{ value: "οδυσσευσ@ITHACA.GR", type: "work" }] }]),
      )
      .expect(204);
    expect((await storedUser(bridge.store, ids.odysseus!))!.document.emails).toHaveLength(1);
    await bridge.scim
      .patch(
        `/Users/${ids.odysseus}`,
        patchOp([{ op: "remove", path: "emails", value: [{ value: "ΟΔΥΣΣΕΥΣ@ithaca.GR" }] }]),
      )
      .expect(204);
    expect((await storedUser(bridge.store, ids.odysseus!))!.document.emails).toBeUndefined();
  });
});
