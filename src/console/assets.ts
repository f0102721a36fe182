/**
 * The console's only stylesheet and script, served from /console/assets/ (same origin, so the CSP
 * needs no 'unsafe-inline'). Kept as strings so that the compiled bridge needs no asset copy step.
 * Everything works without the script: it only adds copy buttons and the live "first request" check.
 */
export const consoleCss = `
:root{--fg:#1a1a1a;--muted:#4a4a4a;--bg:#fff;--line:#c8c8c8;--accent:#0b4fa8;--ok:#0f5c2e;--okbg:#e6f4ea;--err:#8a1414;--errbg:#fbe9e9;--focus:#c25e00}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible,main:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-9999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px 8px;z-index:10}
header{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;padding:8px 16px;background:#10243e;color:#fff}
header .brand{font-weight:700;margin-right:auto}
header .who{color:#fff}
header button.link{color:#fff}
nav ul{display:flex;flex-wrap:wrap;gap:4px 16px;list-style:none;margin:0;padding:8px 16px;border-bottom:1px solid var(--line)}
nav a[aria-current=page]{font-weight:700;text-decoration:none;border-bottom:3px solid var(--accent)}
main{padding:16px;max-width:1200px}
h1{font-size:1.6rem;margin:.2em 0 .6em}h2{font-size:1.25rem;margin-top:1.6em}
table{border-collapse:collapse;width:100%;min-width:560px}
.scroll{overflow-x:auto;max-width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f1f3f6}
label{display:block;font-weight:600;margin-top:8px}
input,select,textarea{font:inherit;padding:6px 8px;border:1px solid #6b6b6b;border-radius:4px;max-width:100%}
textarea{width:100%;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:14px}
button,.button{font:inherit;padding:6px 14px;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer;margin-top:8px;display:inline-block;text-decoration:none}
button.secondary{background:#fff;color:var(--accent)}
button.danger{background:var(--err);border-color:var(--err)}
button.link{background:none;border:none;color:var(--accent);text-decoration:underline;padding:0;margin:0}
form.inline{display:inline}
.filters{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:flex-end}
.filters label{margin-top:0}
.notice{padding:8px 12px;border-radius:4px}
.notice.ok,.badge.ok{background:var(--okbg);color:var(--ok)}
.notice.error,.badge.error{background:var(--errbg);color:var(--err)}
.badge{display:inline-block;padding:0 8px;border-radius:10px;background:#eceff3;color:#222;font-size:.875rem}
.secret{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all;background:#fff8d6;padding:8px;border:1px solid #b59b00;display:block}
code{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.muted{color:var(--muted)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}dl.facts dt{font-weight:600}dl.facts dd{margin:0}
ol.steps li{margin-bottom:6px}
.checklist li{list-style:none}
.diff-add{color:var(--ok)}.diff-del{color:var(--err)}
.issues li{color:var(--err)}
@media (max-width:600px){main{padding:12px}dl.facts{grid-template-columns:1fr}h1{font-size:1.35rem}}
`;

export const consoleJs = `
"use strict";
document.addEventListener("click", function (e) {
  var b = e.target.closest("button[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) return;
  navigator.clipboard.writeText(el.textContent.trim()).then(function () { b.textContent = "Copied"; });
});
document.querySelectorAll("[data-copy]").forEach(function (b) { b.hidden = false; });
document.querySelectorAll("[data-poll]").forEach(function (el) {
  var url = el.getAttribute("data-poll");
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        el.textContent = s.text;
        el.className = "badge " + (s.received ? "ok" : "");
        if (!s.received) setTimeout(tick, 5000);
      })
      .catch(function () { setTimeout(tick, 10000); });
  }
  setTimeout(tick, 3000);
});
`;
