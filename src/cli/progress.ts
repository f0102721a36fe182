/**
 * A tiny progress display for long CLI work (reconcile, mapping preview, bulk operations). On a
 * terminal it redraws one line in place; when stderr is a pipe or a file (CI, `docker logs`) it
 * prints a plain line now and then instead; with --json it stays silent so stdout remains parseable.
 * It always writes to stderr, never stdout.
 */

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  label: string;
  total?: number;
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Pass the command's --json flag: nothing is written. */
  silent?: boolean;
  /** Redraw throttle on a terminal (default 100 ms). */
  redrawMs?: number;
  /** Interval between plain lines when not a terminal (default 5 s). */
  lineEveryMs?: number;
  now?: () => number;
}

export interface Progress {
  /** Sets the count done (and the total, when it becomes known). */
  update(done: number, total?: number): void;
  increment(by?: number): void;
  /** Final state on its own line, with an optional summary after it. */
  finish(summary?: string): void;
}

export interface ProgressState {
  label: string;
  done: number;
  total?: number;
  elapsedMs: number;
}

const count = (n: number): string => Math.round(n).toLocaleString("en-US");

/** "850ms", "42s", "3m05s", "2h07m". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function rateAndEta(state: ProgressState): { rate?: string; eta?: string } {
  if (state.elapsedMs < 1000 || state.done === 0) return {};
  const perSecond = state.done / (state.elapsedMs / 1000);
  const rate = `${perSecond >= 10 ? count(perSecond) : perSecond.toFixed(1)}/s`;
  if (state.total === undefined || state.done >= state.total) return { rate };
  return { rate, eta: `ETA ${formatDuration(((state.total - state.done) / perSecond) * 1000)}` };
}

/** The terminal line: `label [█████░░░░░] 50% 500/1,000 12/s ETA 42s`, fitted to `columns`. */
export function renderBar(state: ProgressState, columns = 80): string {
  const { rate, eta } = rateAndEta(state);
  if (state.total === undefined || state.total <= 0) {
    return [state.label, `${count(state.done)} done`, rate, `${formatDuration(state.elapsedMs)}`]
      .filter(Boolean)
      .join("  ");
  }
  const ratio = Math.min(1, Math.max(0, state.done / state.total));
  const tail = [
    `${String(Math.floor(ratio * 100)).padStart(3)}%`,
    `${count(state.done)}/${count(state.total)}`,
    rate,
    eta,
  ]
    .filter(Boolean)
    .join("  ");
  const room = columns - state.label.length - tail.length - 6;
  const width = Math.max(10, Math.min(30, room));
  const filled = Math.round(ratio * width);
  return `${state.label}  [${"█".repeat(filled)}${"░".repeat(width - filled)}]  ${tail}`;
}

/** The plain line for logs and pipes: `label: 500/1,000 (50%), 12/s, ETA 42s`. */
export function renderLine(state: ProgressState): string {
  const { rate, eta } = rateAndEta(state);
  const amount =
    state.total === undefined || state.total <= 0
      ? `${count(state.done)} done`
      : `${count(state.done)}/${count(state.total)} (${Math.floor(Math.min(1, state.done / state.total) * 100)}%)`;
  return `${state.label}: ${[amount, rate, eta].filter(Boolean).join(", ")}`;
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const tty = stream.isTTY === true;
  const started = now();
  let done = 0;
  let total = options.total;
  let lastDraw = -Infinity;
  let finished = false;

  const state = (): ProgressState => ({ label: options.label, done, total, elapsedMs: now() - started });
  // Erase to the end of the line after redrawing, in case the new line is shorter.
  const draw = (): void => void stream.write(`\r${renderBar(state(), stream.columns ?? 80)}\x1b[K`);

  const maybeDraw = (): void => {
    if (options.silent || finished) return;
    const t = now();
    if (tty) {
      if (t - lastDraw >= (options.redrawMs ?? 100)) {
        lastDraw = t;
        draw();
      }
    } else if (t - lastDraw >= (options.lineEveryMs ?? 5000)) {
      lastDraw = t;
      stream.write(`${renderLine(state())}\n`);
    }
  };

  return {
    update(value, newTotal) {
      done = value;
      if (newTotal !== undefined) total = newTotal;
      maybeDraw();
    },
    increment(by = 1) {
      done += by;
      maybeDraw();
    },
    finish(summary) {
      if (finished) return;
      finished = true;
      if (options.silent) return;
      const suffix = summary ? ` — ${summary}` : "";
      if (tty) stream.write(`\r${renderBar(state(), stream.columns ?? 80)}\x1b[K${suffix}\n`);
      else stream.write(`${renderLine(state())}${suffix}\n`);
    },
  };
}
