import { describe, expect, it } from "vitest";
import { createProgress, formatDuration, renderBar, renderLine } from "../../src/cli/progress.js";

function fakeStream(isTTY: boolean, columns = 80) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns, write: (s: string) => void writes.push(s) } };
}

describe("progress rendering", () => {
  it("draws a bar with percentage, counts, rate and time left", () => {
    const line = renderBar({ label: "Reconciling acme", done: 500, total: 1000, elapsedMs: 10_000 }, 100);
    expect(line).toBe("Reconciling acme  [███████████████░░░░░░░░░░░░░░░]   50%  500/1,000  50/s  ETA 10s");
  });

  it("fits the bar to narrow terminals and caps it on wide ones", () => {
    const narrow = renderBar({ label: "Preview", done: 1, total: 4, elapsedMs: 0 }, 40);
    const tiny = renderBar({ label: "Preview", done: 1, total: 4, elapsedMs: 0 }, 20);
    const wide = renderBar({ label: "Preview", done: 1, total: 4, elapsedMs: 0 }, 300);
    const barOf = (s: string) => /\[(.*)\]/.exec(s)![1]!;
    expect(narrow.length).toBeLessThanOrEqual(40);
    expect(barOf(narrow).length).toBeGreaterThan(10);
    expect(barOf(tiny)).toHaveLength(10);
    expect(barOf(wide)).toHaveLength(30);
    expect(barOf(wide)).toBe("████████░░░░░░░░░░░░░░░░░░░░░░");
  });

  it("shows a count without a bar when the total is unknown, and clamps overshoot at 100%", () => {
    expect(renderBar({ label: "Scanning", done: 12_345, elapsedMs: 5_000 })).toBe("Scanning  12,345 done  2,469/s  5s");
    expect(renderBar({ label: "x", done: 12, total: 10, elapsedMs: 2000 })).toContain("100%");
  });

  it("writes plain lines for logs and pipes", () => {
    expect(renderLine({ label: "Reconciling acme", done: 250, total: 1000, elapsedMs: 5000 })).toBe(
      "Reconciling acme: 250/1,000 (25%), 50/s, ETA 15s",
    );
    expect(renderLine({ label: "Scanning", done: 3, elapsedMs: 100 })).toBe("Scanning: 3 done");
  });

  it("formats durations the way people read them", () => {
    expect([formatDuration(850), formatDuration(42_000), formatDuration(185_000), formatDuration(7_620_000)]).toEqual([
      "850ms",
      "42s",
      "3m05s",
      "2h07m",
    ]);
  });
});

describe("createProgress", () => {
  it("redraws one line in place on a terminal, throttled, and ends it with a newline and summary", () => {
    let now = 0;
    const { writes, stream } = fakeStream(true);
    const bar = createProgress({ label: "Reconciling", total: 100, stream, now: () => now });
    for (let i = 1; i <= 100; i++) {
      now += 10; // 100 updates over 1 s; redraws at most every 100 ms
      bar.update(i);
    }
    bar.finish("100 users reconciled");
    expect(writes.length).toBeGreaterThanOrEqual(10);
    expect(writes.length).toBeLessThanOrEqual(12);
    expect(writes.every((w) => w.startsWith("\r"))).toBe(true);
    expect(writes.slice(0, -1).every((w) => !w.includes("\n"))).toBe(true);
    expect(writes.at(-1)).toMatch(/100%.*100\/100.*— 100 users reconciled\n$/);
  });

  it("prints a line now and then when stderr is not a terminal", () => {
    let now = 0;
    const { writes, stream } = fakeStream(false);
    const bar = createProgress({ label: "Preview", stream, now: () => now, lineEveryMs: 5000 });
    bar.update(0, 3000);
    for (let i = 1; i <= 3000; i++) {
      now += 4; // 12 s in all
      bar.increment();
    }
    bar.finish();
    expect(writes).toEqual([
      "Preview: 0/3,000 (0%)\n",
      "Preview: 1,250/3,000 (41%), 250/s, ETA 7s\n",
      "Preview: 2,500/3,000 (83%), 250/s, ETA 2s\n",
      "Preview: 3,000/3,000 (100%), 250/s\n",
    ]);
    expect(writes.join("")).not.toContain("\r");
  });

  it("writes nothing at all with --json", () => {
    const { writes, stream } = fakeStream(true);
    const bar = createProgress({ label: "x", total: 2, stream, silent: true });
    bar.update(1);
    bar.finish("done");
    expect(writes).toEqual([]);
  });
});
