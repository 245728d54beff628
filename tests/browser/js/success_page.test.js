// examples/success/success.html's script with the real Pixel loaders (not stubbed), in a fake
// page (node:vm): the calls queue up for TikTok's and Meta's scripts, which are only appended,
// never fetched. Run by tests/browser/test_node.py.
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { test } = require("node:test");
const vm = require("node:vm");

const TEMPLATE = fs.readFileSync(path.join(__dirname, "..", "..", "..", "examples", "success", "success.html"), "utf8");
const SCRIPT = TEMPLATE.match(/<script>([\s\S]*?)<\/script>/)[1];
const PURCHASE = {
  sessionId: "cs_test_1", value: 1500, currency: "JPY", externalId: "a".repeat(64), report: true,
  tiktok: { pixelId: "CTT", eventName: "CompletePayment" }, meta: { pixelId: "42", eventName: "Purchase" }, stubPixels: false,
};

function run(purchase) {
  const elements = { purchase: { textContent: JSON.stringify(purchase) }, summary: { textContent: "" }, "pixel-calls": { textContent: "" } };
  const appended = [];
  const context = {
    document: { getElementById: (id) => elements[id], createElement: () => ({}), head: { appendChild: (e) => appended.push(e.src) } },
  };
  context.window = context; // the page's globals are window's properties
  vm.runInNewContext(SCRIPT, context);
  return { context, appended, elements };
}

test("the real loaders queue identify and track for the Pixels' scripts", () => {
  const { context, appended, elements } = run(PURCHASE);
  assert.deepEqual(appended, [
    "https://analytics.tiktok.com/i18n/pixel/events.js?sdkid=CTT&lib=ttq",
    "https://connect.facebook.net/en_US/fbevents.js",
  ]);
  assert.deepEqual(JSON.parse(JSON.stringify([...context.ttq])), [
    ["page"],
    ["identify", { external_id: "a".repeat(64) }],
    ["track", "CompletePayment", { content_type: "product", value: 1500, currency: "JPY" }, { event_id: "cs_test_1" }],
  ]);
  assert.deepEqual(JSON.parse(JSON.stringify(context.fbq.queue.map((args) => [...args]))), [
    ["init", "42", { external_id: "a".repeat(64) }],
    ["track", "PageView"],
    ["track", "Purchase", { value: 1500, currency: "JPY" }, { eventID: "cs_test_1" }],
  ]);
  assert.equal(elements.summary.textContent, "Paid 1500 JPY (order cs_test_1)");
});

test("a custom Meta event name goes through trackCustom", () => {
  const { context } = run({ ...PURCHASE, tiktok: null, meta: { pixelId: "42", eventName: "PaidOrder" } });
  assert.equal(context.ttq, undefined);
  assert.deepEqual(JSON.parse(JSON.stringify([...context.fbq.queue.at(-1)].slice(0, 2))), ["trackCustom", "PaidOrder"]);
});

test("nothing is fired or loaded when the server does not report the purchase", () => {
  const { context, appended } = run({ ...PURCHASE, report: false });
  assert.deepEqual(appended, []);
  assert.equal(context.ttq, undefined);
  assert.equal(context.fbq, undefined);
});
