/**
 * Streaming readers for migration files: one record at a time, whatever the file's size, so memory
 * stays flat. JSON Lines (one object per line, as Auth0's own user export writes), a JSON array
 * (as the import endpoint takes), and CSV with a header row (as spreadsheets and many legacy
 * databases export); CSV cells holding objects (custom_password_hash, app_metadata, …) are JSON.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";

export type ImportFormat = "jsonl" | "json" | "csv";
export const importFormats: readonly ImportFormat[] = ["jsonl", "json", "csv"];

/** One record of the file, numbered from 1 in file order; `error` when it could not be read at all. */
export type FileRecord =
  { record: number; value: unknown; error?: undefined } | { record: number; value?: undefined; error: string };

/** The format a file name suggests (.jsonl/.ndjson, .json, .csv). */
export function formatOf(fileName: string): ImportFormat | undefined {
  const lower = fileName.toLowerCase();
  if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) return "jsonl";
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".csv")) return "csv";
  return undefined;
}

/** Tracks the SHA-256 of everything read, so a resumed import can recognise the same file. */
export class Digest {
  private readonly hash = createHash("sha256");
  update(chunk: Buffer | string): void {
    this.hash.update(chunk);
  }
  hex(): string {
    return this.hash.digest("hex");
  }
}

async function* text(stream: Readable, digest?: Digest): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: false });
  for await (const chunk of stream) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    digest?.update(buf);
    yield decoder.decode(buf, { stream: true });
  }
  const rest = decoder.decode();
  if (rest) yield rest;
}

async function* jsonLines(stream: Readable, digest?: Digest): AsyncGenerator<FileRecord> {
  let buffer = "";
  let record = 0;
  const parse = (line: string): FileRecord | undefined => {
    if (line.trim() === "") return undefined;
    record++;
    try {
      return { record, value: JSON.parse(line) as unknown };
    } catch (err) {
      return { record, error: `not valid JSON (${(err as Error).message})` };
    }
  };
  for await (const piece of text(stream, digest)) {
    buffer += piece;
    // Scan by offset and cut the buffer once per piece: slicing it per line would copy it per line.
    let start = 0;
    let nl: number;
    while ((nl = buffer.indexOf("\n", start)) >= 0) {
      const out = parse(buffer.slice(start, nl).replace(/\r$/, ""));
      start = nl + 1;
      if (out) yield out;
    }
    buffer = buffer.slice(start);
  }
  const out = parse(buffer);
  if (out) yield out;
}

/**
 * A top-level JSON array, element by element: a small scanner finds where each element ends
 * (tracking strings, escapes and nesting), and only that element is parsed.
 */
async function* jsonArray(stream: Readable, digest?: Digest): AsyncGenerator<FileRecord> {
  let state: "start" | "between" | "element" | "end" = "start";
  let depth = 0;
  let inString = false;
  let escaped = false;
  let current = "";
  let record = 0;
  let expectValue = true;
  for await (const piece of text(stream, digest)) {
    for (let i = 0; i < piece.length; i++) {
      const c = piece[i]!;
      if (state === "start") {
        if (/\s/.test(c) || c === "\uFEFF") continue;
        if (c !== "[") {
          yield { record: 1, error: "the file is not a JSON array (it must start with '[')" };
          return;
        }
        state = "between";
        continue;
      }
      if (state === "end") {
        if (!/\s/.test(c)) {
          yield { record: record + 1, error: "unexpected text after the end of the JSON array" };
          return;
        }
        continue;
      }
      if (state === "between") {
        if (/\s/.test(c)) continue;
        if (c === "]") {
          state = "end";
          continue;
        }
        if (c === ",") {
          if (expectValue) {
            yield { record: record + 1, error: "not valid JSON (an empty element in the array)" };
            return;
          }
          expectValue = true;
          continue;
        }
        if (!expectValue) {
          yield { record: record + 1, error: "not valid JSON (a ',' is missing between array elements)" };
          return;
        }
        state = "element";
        current = "";
        depth = 0;
        inString = false;
        escaped = false;
      }
      // state === "element"
      if (inString) {
        current += c;
        if (escaped) escaped = false;
        else if (c === "\\") escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (depth === 0 && (c === "," || c === "]" || /\s/.test(c)) && current !== "") {
        record++;
        try {
          yield { record, value: JSON.parse(current) as unknown };
        } catch (err) {
          yield { record, error: `not valid JSON (${(err as Error).message})` };
          return;
        }
        current = "";
        state = "between";
        expectValue = c === ",";
        if (c === "]") state = "end";
        continue;
      }
      current += c;
      if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") depth--;
      if (depth < 0) {
        yield { record: record + 1, error: "not valid JSON (unbalanced brackets)" };
        return;
      }
    }
  }
  if (state === "element" && current.trim() !== "") {
    yield { record: record + 1, error: "not valid JSON (the array is not closed)" };
  } else if (state !== "end") {
    yield {
      record: record + 1,
      error: state === "start" ? "the file is empty" : "not valid JSON (the array is not closed with ']')",
    };
  }
}

/** RFC 4180 CSV (quoted fields may hold commas, quotes as "" and line breaks). */
async function* csvRows(stream: Readable, digest?: Digest): AsyncGenerator<string[] | { unclosed: true }> {
  let field = "";
  let row: string[] = [];
  let quoted = false;
  let pendingQuote = false;
  let any = false;
  for await (const piece of text(stream, digest)) {
    for (const c of piece) {
      if (quoted) {
        if (pendingQuote) {
          pendingQuote = false;
          if (c === '"') {
            field += '"';
            continue;
          }
          quoted = false;
        } else if (c === '"') {
          pendingQuote = true;
          continue;
        } else {
          field += c;
          continue;
        }
      }
      if (c === '"' && field === "") {
        quoted = true;
        any = true;
      } else if (c === ",") {
        row.push(field);
        field = "";
        any = true;
      } else if (c === "\n") {
        row.push(field.replace(/\r$/, ""));
        if (any || row.some((f) => f !== "")) yield row;
        row = [];
        field = "";
        any = false;
      } else {
        field += c;
        any = true;
      }
    }
  }
  if (quoted && !pendingQuote) {
    yield { unclosed: true };
    return;
  }
  if (any || field !== "") {
    row.push(field.replace(/\r$/, ""));
    yield row;
  }
}

/** CSV columns whose cells hold JSON objects, and those holding booleans. */
const CSV_JSON = new Set(["custom_password_hash", "app_metadata", "user_metadata", "mfa_factors"]);
const CSV_BOOLEAN = new Set(["email_verified", "blocked", "phone_verified"]);

async function* csvRecords(stream: Readable, digest?: Digest): AsyncGenerator<FileRecord> {
  let header: string[] | undefined;
  let record = 0;
  for await (const row of csvRows(stream, digest)) {
    if (!Array.isArray(row)) {
      yield { record: record + 1, error: 'a quoted field is never closed (a " is missing)' };
      return;
    }
    if (!header) {
      header = row.map((h) => h.trim().replace(/^\uFEFF/, ""));
      continue;
    }
    record++;
    if (row.length !== header.length) {
      yield { record, error: `has ${row.length} columns where the header has ${header.length}` };
      continue;
    }
    const value: Record<string, unknown> = {};
    let error: string | undefined;
    header.forEach((name, i) => {
      const cell = row[i]!;
      if (cell === "") return; // an empty cell is an absent field
      if (CSV_JSON.has(name)) {
        try {
          value[name] = JSON.parse(cell) as unknown;
        } catch {
          error ??= `column ${name} is not valid JSON`;
        }
      } else if (CSV_BOOLEAN.has(name)) {
        value[name] = cell === "true" ? true : cell === "false" ? false : cell;
      } else {
        value[name] = cell;
      }
    });
    yield error ? { record, error } : { record, value };
  }
}

/** The records of a file in the given format, one at a time. */
export function readRecords(stream: Readable, format: ImportFormat, digest?: Digest): AsyncGenerator<FileRecord> {
  if (format === "jsonl") return jsonLines(stream, digest);
  if (format === "json") return jsonArray(stream, digest);
  return csvRecords(stream, digest);
}
