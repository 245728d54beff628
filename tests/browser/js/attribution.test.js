// examples/landing/attribution.js in a fake page (node:vm): the cookies it writes, with every
// attribute. Run by tests/browser/test_node.py; no dependencies.
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { test } = require("node:test");
const vm = require("node:vm");

const SCRIPT = fs.readFileSync(path.join(__dirname, "..", "..", "..", "examples", "landing", "attribution.js"), "utf8");
const PUBLIC_SUFFIXES = new Set(["com", "co.uk", "example"]); // a browser refuses cookies for these

// Runs the script on `href` with these cookies; returns what it wrote and its window.
function land(href, cookies = {}) {
  const url = new URL(href);
  const jar = new Map(Object.entries(cookies));
  const writes = [];
  const document = {
    referrer: "https://www.tiktok.com/",
    get cookie() { return [...jar].map(([name, value]) => `${name}=${value}`).join("; "); },
    set cookie(text) {
      const [pair, ...attributes] = text.split("; ");
      const domain = attributes.find((a) => a.startsWith("Domain="));
      if (domain && PUBLIC_SUFFIXES.has(domain.slice(7))) return;
      const at = pair.indexOf("=");
      if (attributes.includes("Max-Age=0")) jar.delete(pair.slice(0, at));
      else jar.set(pair.slice(0, at), pair.slice(at + 1));
      if (!pair.startsWith("_attribution_probe")) writes.push(text);
    },
  };
  const window = {};
  const location = { href: url.href, protocol: url.protocol, hostname: url.hostname, search: url.search };
  vm.runInNewContext(SCRIPT, { window, document, location, navigator: { language: "en-US" }, URLSearchParams, Date });
  return { writes, jar, window };
}

test("click ids go into 30-day first-party cookies on the registrable domain, Secure on https", () => {
  const before = Date.now();
  const { writes, jar } = land("https://www.shop.example.com/p?ttclid=E.C.P.abc&fbclid=IwAR-Case_Kept");
  const attributes = "; Max-Age=2592000; Path=/; Domain=example.com; SameSite=Lax; Secure";
  assert.equal(writes[0], `ttclid=E.C.P.abc${attributes}`);
  const match = writes[1].match(/^_fbc=fb\.1\.(\d+)\.IwAR-Case_Kept(; .*)$/);
  assert.ok(match, writes[1]);
  assert.ok(Number(match[1]) >= before && Number(match[1]) <= Date.now());
  assert.equal(match[2], attributes);
  assert.equal(jar.has("_attribution_probe"), false);
});

test("plain http has no Secure; a public suffix is skipped; an IP address or localhost gets host-only cookies", () => {
  assert.deepEqual(land("http://shop.co.uk/?ttclid=t1").writes, ["ttclid=t1; Max-Age=2592000; Path=/; Domain=shop.co.uk; SameSite=Lax"]);
  assert.deepEqual(land("http://127.0.0.1:8000/?ttclid=t1").writes, ["ttclid=t1; Max-Age=2592000; Path=/; SameSite=Lax"]);
  assert.deepEqual(land("http://localhost/?ttclid=t1").writes, ["ttclid=t1; Max-Age=2592000; Path=/; SameSite=Lax"]);
});

test("the same fbclid keeps the existing _fbc and its click time; a new one replaces it", () => {
  const existing = { _fbc: "fb.1.1700000000000.IwAR-Case_Kept" };
  assert.deepEqual(land("https://example.com/?fbclid=IwAR-Case_Kept", existing).writes, []);
  const { jar } = land("https://example.com/?fbclid=IwAR-New", existing);
  assert.match(jar.get("_fbc"), /^fb\.1\.\d{13}\.IwAR-New$/);
  assert.deepEqual(land("https://example.com/?fbclid=a.b", { _fbc: "fb.2.1700000000000.a.b" }).writes, []);
});

test("nothing is written without click ids, nor for a value a cookie cannot hold", () => {
  assert.deepEqual(land("https://example.com/?utm_source=x").writes, []);
  assert.deepEqual(land("https://example.com/?ttclid=a%3Bb&fbclid=" + "x".repeat(501)).writes, []);
});

test("read() gives the values for the checkout request, named as the metadata keys", () => {
  const { window } = land("https://example.com/p?ttclid=abc", { _ttp: "ttp1", _fbp: "fb.1.1.2" });
  assert.deepEqual({ ...window.checkoutAttribution.read() }, {
    ttclid: "abc", ttp: "ttp1", fbp: "fb.1.1.2",
    page_url: "https://example.com/p?ttclid=abc", page_referrer: "https://www.tiktok.com/", locale: "en-US",
  });
});
