// node --test test/*.test.js: the pure logic, no network and no dependencies.
"use strict";
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { test } = require("node:test");
const { clientIp, decimalAmount, hashedExternalId, renderSuccessPage, sessionParams, successPageData } = require("../checkout");

const SETTINGS = {
  priceId: "price_123", baseUrl: "https://shop.example.com", trustedProxies: 1, requireAdConsent: false,
  tiktokPixelId: "TTPIXEL", tiktokEventName: "CompletePayment", metaPixelId: "1234", metaEventName: "Purchase",
  stubPixels: false,
};

function request({ cookie = "", headers = {}, body = {}, remoteAddress = "10.0.0.2", userId = null } = {}) {
  return { headers: { cookie, ...headers }, body, socket: { remoteAddress }, userId };
}

test("the metadata comes from the cookies, the headers and the posted fields", () => {
  const params = sessionParams(request({
    cookie: "ttclid=E.C.P.abc; _ttp=ttp-1; _fbp=fb.1.1700000000000.42; _fbc=fb.1.1700000000001.IwAR-Case_Kept",
    headers: { "x-forwarded-for": "198.51.100.9, 203.0.113.7", "user-agent": "Mozilla/5.0 Test", referer: "https://shop.example.com/p?x=1" },
    body: { ad_consent: "granted", locale: "en-US", page_referrer: "https://www.tiktok.com/" },
    userId: "user_42",
  }), SETTINGS);
  assert.deepEqual(params.metadata, {
    ttclid: "E.C.P.abc", ttp: "ttp-1", fbp: "fb.1.1700000000000.42", fbc: "fb.1.1700000000001.IwAR-Case_Kept",
    client_ip: "203.0.113.7", user_agent: "Mozilla/5.0 Test", page_url: "https://shop.example.com/p?x=1",
    page_referrer: "https://www.tiktok.com/", locale: "en-US", ad_consent: "granted",
  });
  assert.equal(params.client_reference_id, "user_42");
  assert.equal(params.customer_creation, undefined);
  assert.equal(params.success_url, "https://shop.example.com/success?session_id={CHECKOUT_SESSION_ID}");
  assert.deepEqual(params.line_items, [{ price: "price_123", quantity: 1 }]);
});

test("a guest gets a Stripe customer; an fbclid cookie counts only without _fbc; too long ids are dropped", () => {
  const params = sessionParams(request({ cookie: `fbclid=IwAR1; ttclid=${"x".repeat(501)}`, body: { page_url: "javascript:alert(1)" } }), SETTINGS);
  assert.equal(params.customer_creation, "always");
  assert.equal(params.client_reference_id, undefined);
  assert.deepEqual(params.metadata, { fbclid: "IwAR1", client_ip: "10.0.0.2" });
});

test("denied consent passes nothing of the browser on", () => {
  const params = sessionParams(request({ cookie: "ttclid=abc; ad_consent=granted", headers: { "user-agent": "UA" }, body: { ad_consent: "denied" } }), SETTINGS);
  assert.deepEqual(params.metadata, { ad_consent: "denied" });
});

test("X-Forwarded-For: the hop the trusted proxies wrote, never the client's claim", () => {
  assert.equal(clientIp("6.6.6.6, 198.51.100.9, 203.0.113.7", "10.0.0.2", 1), "203.0.113.7");
  assert.equal(clientIp("6.6.6.6, 198.51.100.9, 203.0.113.7", "10.0.0.2", 2), "198.51.100.9");
  assert.equal(clientIp("203.0.113.7", "10.0.0.2", 3), "203.0.113.7");
  assert.equal(clientIp("203.0.113.7", "::ffff:10.0.0.2", 0), "10.0.0.2");
  assert.equal(clientIp(undefined, "10.0.0.2", 1), "10.0.0.2");
  assert.equal(clientIp("[2001:db8::1]:443", null, 1), "2001:db8::1");
  assert.equal(clientIp("203.0.113.7:5555", null, 1), "203.0.113.7");
  assert.equal(clientIp("not-an-ip", null, 1), null);
});

test("amounts with Stripe's currency exponents", () => {
  assert.equal(decimalAmount(1999, "usd"), "19.99");
  assert.equal(decimalAmount(1500, "JPY"), "1500");
  assert.equal(decimalAmount(12345, "kwd"), "12.345");
  assert.equal(decimalAmount(12340, "KWD"), "12.34");
  assert.equal(decimalAmount(5, "usd"), "0.05");
  assert.equal(decimalAmount(1000, "ISK"), "10");
});

test("the success page: value, currency, event id and the hashed external id", () => {
  const session = { id: "cs_test_1", amount_total: 1500, currency: "jpy", payment_status: "paid", client_reference_id: " user_42 ", customer: "cus_1", metadata: {} };
  const data = successPageData(session, SETTINGS);
  assert.equal(data.value, 1500);
  assert.equal(data.currency, "JPY");
  assert.equal(data.sessionId, "cs_test_1");
  assert.equal(data.externalId, crypto.createHash("sha256").update("user_42").digest("hex"));
  assert.equal(data.report, true);
  assert.deepEqual(data.tiktok, { pixelId: "TTPIXEL", eventName: "CompletePayment" });
  assert.equal(hashedExternalId({ customer: { id: "cus_9" } }), crypto.createHash("sha256").update("cus_9").digest("hex"));
  assert.equal(successPageData({ ...session, payment_status: "unpaid" }, SETTINGS).report, false);
  assert.equal(successPageData({ ...session, metadata: { ad_consent: "denied" } }, SETTINGS).report, false);
  assert.equal(successPageData(session, { ...SETTINGS, requireAdConsent: true }).report, false);
  const html = renderSuccessPage({ ...data, sessionId: "cs_</script>" });
  assert.ok(html.includes('"sessionId":"cs_\\u003c/script\\u003e"'));
  assert.ok(!html.includes("__PURCHASE_JSON__"));
});
