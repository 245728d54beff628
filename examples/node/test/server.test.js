// node --test test/*.test.js: the Express routes with a fake Stripe client, on loopback only.
"use strict";
const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");
const { createApp } = require("../server");

const SETTINGS = {
  priceId: "price_123", baseUrl: "https://shop.example.com", trustedProxies: 1, requireAdConsent: false,
  tiktokPixelId: "TTPIXEL", tiktokEventName: "CompletePayment", metaPixelId: "1234", metaEventName: "Purchase",
  stubPixels: true,
};
const created = [];
const stripe = {
  checkout: {
    sessions: {
      create: async (params) => { created.push(params); return { id: "cs_test_1", url: "https://checkout.stripe.com/c/pay/cs_test_1" }; },
      retrieve: async (id) => ({ id, amount_total: 12345, currency: "kwd", payment_status: "paid", client_reference_id: null, customer: "cus_1", metadata: {} }),
    },
  },
};
let server;
let base;

before(async () => {
  server = createApp({ stripe, settings: SETTINGS, currentUserId: () => "user_42" }).listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

test("POST /create-checkout-session creates the session and redirects to it", async () => {
  const response = await fetch(`${base}/create-checkout-session`, {
    method: "POST", redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: "ttclid=abc; _fbc=fb.1.1.IwAR-Case_Kept", "x-forwarded-for": "6.6.6.6, 203.0.113.7", "user-agent": "UA/1" },
    body: "ad_consent=granted&page_url=https%3A%2F%2Fshop.example.com%2F&locale=en-US",
  });
  assert.equal(response.status, 303);
  assert.equal(response.headers.get("location"), "https://checkout.stripe.com/c/pay/cs_test_1");
  assert.deepEqual(created.at(-1).metadata, {
    ttclid: "abc", fbc: "fb.1.1.IwAR-Case_Kept", client_ip: "203.0.113.7", user_agent: "UA/1",
    page_url: "https://shop.example.com/", locale: "en-US", ad_consent: "granted",
  });
  assert.equal(created.at(-1).client_reference_id, "user_42");
});

test("a JSON request gets the URL back", async () => {
  const response = await fetch(`${base}/create-checkout-session`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ locale: "de-DE" }),
  });
  assert.deepEqual(await response.json(), { url: "https://checkout.stripe.com/c/pay/cs_test_1" });
  assert.equal(created.at(-1).metadata.locale, "de-DE");
});

test("GET /success renders the purchase into the page", async () => {
  const response = await fetch(`${base}/success?session_id=cs_test_1`);
  assert.equal(response.status, 200);
  const html = await response.text();
  const data = JSON.parse(html.match(/<script type="application\/json" id="purchase">(.*?)<\/script>/s)[1]);
  assert.equal(data.value, 12.345);
  assert.equal(data.currency, "KWD");
  assert.equal(data.sessionId, "cs_test_1");
  assert.equal((await fetch(`${base}/success?session_id=nope`)).status, 400);
});
