/**
 * Server-side HTML for the console: a tagged template that escapes every interpolated value unless
 * it is already Html, and the page layout. No inline script or style anywhere, so the
 * Content-Security-Policy can forbid both.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function render(p: Part): string {
  if (p === null || p === undefined || p === false) return "";
  if (p instanceof Html) return p.value;
  if (Array.isArray(p)) return p.map(render).join("");
  return escapeHtml(String(p));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new Html(out);
}

export interface NavItem {
  href: string;
  label: string;
}

export interface PageOptions {
  title: string;
  /** Who is signed in, shown in the header; undefined on public pages. */
  who?: string;
  nav?: NavItem[];
  /** Current path, to mark the nav item. */
  path?: string;
  csrf?: string;
  /** A notice at the top of the page (result of the last action). */
  notice?: { kind: "ok" | "error"; text: string };
  body: Html;
}

export function page(o: PageOptions): string {
  const nav = o.nav?.length
    ? html`<nav aria-label="Console">
        <ul>
          ${o.nav.map((n) => html`<li><a href="${n.href}" ${o.path === n.href ? html` aria-current="page"` : ""}>${n.label}</a></li>`)}
        </ul>
      </nav>`
    : "";
  const signOut =
    o.who && o.csrf
      ? html`<form method="post" action="/console/logout" class="inline">
          <input type="hidden" name="_csrf" value="${o.csrf}" /><button type="submit" class="link">Sign out</button>
        </form>`
      : "";
  return (
    "<!doctype html>\n" +
    html`<html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${o.title} · scim-bridge console</title>
        <link rel="stylesheet" href="/console/assets/console.css" />
        <script src="/console/assets/console.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <span class="brand">scim-bridge console</span
          >${o.who ? html`<span class="who">${o.who}</span>` : ""}${signOut}
        </header>
        ${nav}
        <main id="main" tabindex="-1">
          <h1>${o.title}</h1>
          ${o.notice ? html`<p class="notice ${o.notice.kind}" role="${o.notice.kind === "error" ? "alert" : "status"}">${o.notice.text}</p>` : ""}
          ${o.body}
        </main>
      </body>
    </html>`.value
  );
}

/** A form that posts to `action` with the session's CSRF token. */
export const csrfField = (csrf: string): Html => html`<input type="hidden" name="_csrf" value="${csrf}" />`;

export const formatTime = (iso: string | null | undefined): string =>
  iso ? iso.replace("T", " ").replace(/\.\d+Z$/, " UTC") : "—";

/** CSV with RFC 4180 quoting; cells that a spreadsheet would run as a formula are prefixed with ' (OWASP "CSV Injection"). */
export function toCsv(header: string[], rows: unknown[][]): string {
  const cell = (v: unknown): string => {
    let s = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header, ...rows].map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}
