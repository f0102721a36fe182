/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. from `bench/shipped.ts --cpu-prof DIR`): the
 * share of sampled time by package or source area (self time) and the functions with the most self
 * time, so that a before/after pair fits in a commit message.
 *
 *   npx tsx bench/profile-summary.ts DIR/CPU.….cpuprofile [top=25] [skip-seconds=0]
 *
 * skip-seconds leaves out the start of the profile (module loading, migrations) so that the summary
 * is about serving requests.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** node_modules package, our source folder (src/http, src/scim, …), node internals, or a V8 pseudo-frame. */
function areaOf(url: string, name: string): string {
  if (url === "") return name.startsWith("(") ? name : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const ours = /\/(?:dist\/)?(src\/[^/]+|db)\//.exec(url);
  if (ours) return ours[1]!;
  if (url.startsWith("node:")) return url.replace(/^node:internal\/([^/]+).*/, "node:$1");
  return url.split("/").slice(-2).join("/");
}

export function summarise(profile: Profile, top = 25, skipSeconds = 0): string {
  const self = new Map<number, number>();
  let elapsed = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    elapsed += profile.timeDeltas[i] ?? 0;
    if (elapsed < skipSeconds * 1e6) continue;
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const t = self.get(node.id) ?? 0;
    if (t === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const area = areaOf(url, functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + t);
    const key = `${functionName || "(anonymous)"} ${area}${url ? `:${lineNumber + 1}` : ""}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + t);
  }
  const pct = (t: number) => `${((t / total) * 100).toFixed(1).padStart(5)}%`;
  const rows = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, t]) => `${pct(t)}  ${k}`);
  return [
    `total sampled ${(total / 1e6).toFixed(1)} s`,
    "self time by area:",
    ...rows(byArea, 20),
    "",
    "top functions (self):",
    ...rows(byFunction, top),
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(
    summarise(
      JSON.parse(readFileSync(process.argv[2]!, "utf8")) as Profile,
      Number(process.argv[3] ?? 25),
      Number(process.argv[4] ?? 0),
    ),
  );
}
