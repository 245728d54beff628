// The checkout backend's logic, with no dependencies: what server.js gives Stripe and the success
// page. The same rules as examples/python/checkout_backend.py (docs/configuration.md: "Checkout Session metadata").
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");

const SUCCESS_TEMPLATE = path.join(__dirname, "..", "success", "success.html");
const PURCHASE_PLACEHOLDER = "__PURCHASE_JSON__";
// Stripe's own table of currency exponents (it is not ISO 4217's: ISK and UGX have two decimals).
const ZERO_DECIMAL = new Set("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split(" "));
const THREE_DECIMAL = new Set("BHD JOD KWD OMR TND".split(" "));
const PAID = ["paid", "no_payment_required"]; // what the webhook reports; "unpaid" waits
const METADATA_LIMIT = 500; // Stripe refuses a longer metadata value, and with it the session
const LOCALE = /^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

function settingsFromEnv(env = process.env) {
  const flag = (name) => ["true", "1", "yes", "on"].includes((env[name] || "").trim().toLowerCase());
  return {
    priceId: env.STRIPE_PRICE_ID || "",
    baseUrl: (env.PUBLIC_BASE_URL || "http://127.0.0.1:3000").replace(/\/+$/, ""),
    // How many proxies you run in front of this app; see clientIp().
    trustedProxies: Number.parseInt(env.TRUSTED_PROXIES || "1", 10),
    // The same names as the webhook's settings, so one .env serves both.
    requireAdConsent: flag("REQUIRE_AD_CONSENT"),
    tiktokPixelId: env.TIKTOK_PIXEL_ID || "",
    tiktokEventName: env.TIKTOK_EVENT_NAME || "CompletePayment",
    metaPixelId: env.META_PIXEL_ID || "",
    metaEventName: env.META_EVENT_NAME || "Purchase",
    // Record the Pixel calls on the page instead of loading TikTok's and Meta's scripts.
    stubPixels: flag("STUB_PIXELS"),
  };
}

// The arguments of stripe.checkout.sessions.create for one buyer's request. `req` needs only
// headers (lower-case names, as Node gives them), body, socket.remoteAddress and, optionally,
// userId (the merchant's; none for a guest).
function sessionParams(req, settings = settingsFromEnv()) {
  const params = {
    mode: "payment",
    line_items: [{ price: settings.priceId, quantity: 1 }], // your cart here
    success_url: `${settings.baseUrl}/success?session_id={CHECKOUT_SESSION_ID}`,
    cancel_url: `${settings.baseUrl}/`,
    billing_address_collection: "required", // zip, city, state, country: more match keys
    phone_number_collection: { enabled: true },
    metadata: checkoutMetadata(req, settings.trustedProxies),
  };
  const userId = value(req.userId, 200);
  if (userId) params.client_reference_id = userId; // the webhook hashes it into external_id
  else params.customer_creation = "always"; // a guest's Stripe customer id serves as external id
  return params;
}

function checkoutMetadata(req, trustedProxies = 1) {
  const headers = req.headers || {};
  const cookies = parseCookies(headers.cookie);
  const form = req.body && typeof req.body === "object" ? req.body : {};
  const consent = choice(form.ad_consent || cookies.ad_consent, ["granted", "denied"]);
  // The webhook reports nothing then; nothing of the buyer's browser need reach Stripe either.
  if (consent === "denied") return { ad_consent: "denied" };
  const fbc = value(cookies._fbc || form.fbc);
  const metadata = {
    ttclid: value(cookies.ttclid || form.ttclid),
    ttp: value(cookies._ttp || form.ttp),
    fbp: value(cookies._fbp || form.fbp),
    fbc,
    // Only for a landing page that kept the bare fbclid; the webhook builds fbc from it.
    fbclid: fbc ? null : value(cookies.fbclid || form.fbclid),
    client_ip: clientIp(headers["x-forwarded-for"], req.socket && req.socket.remoteAddress, trustedProxies),
    user_agent: cut(headers["user-agent"]),
    // The page posts its full URL; the Referer may have lost its query to the page's policy.
    page_url: url(form.page_url) || url(headers.referer),
    page_referrer: url(form.page_referrer),
    locale: LOCALE.test(String(form.locale || "").trim()) ? String(form.locale).trim() : null,
    ad_consent: consent, // without a choice the webhook's REQUIRE_AD_CONSENT decides
    limited_data_use: choice(form.limited_data_use, ["true", "1", "on"]) ? "true" : null,
  };
  return Object.fromEntries(Object.entries(metadata).filter(([, v]) => v));
}

// The buyer's address. Each proxy appends to X-Forwarded-For the address it got the request from,
// and the browser can send the header with anything in it: only the entries your own proxies
// appended are true. With N proxies in front of this app the Nth entry from the right is the one
// the outermost proxy saw: the buyer. The leftmost entry, which naive code takes, is whatever the
// client claimed. 0 proxies: the connection's own address is the buyer's. (Express's own
// `trust proxy` = N and req.ip give the same answer.)
function clientIp(forwardedFor, remoteAddress, trustedProxies = 1) {
  const list = Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor || "";
  const hops = list.split(",").map((hop) => hop.trim()).filter(Boolean);
  if (trustedProxies <= 0 || hops.length === 0) return ip(remoteAddress);
  return ip(hops[Math.max(hops.length - trustedProxies, 0)]);
}

function ip(raw) {
  let text = String(raw || "").trim();
  if (text.startsWith("[")) text = text.slice(1).split("]")[0]; // [2001:db8::1]:443
  else if ((text.match(/:/g) || []).length === 1) text = text.split(":")[0]; // 203.0.113.7:443
  if (text.startsWith("::ffff:") && net.isIPv4(text.slice(7))) text = text.slice(7); // Node's IPv4 on a dual stack
  return net.isIP(text) ? text : null;
}

function parseCookies(header) {
  const cookies = {};
  for (const pair of String(header || "").split(";")) {
    const at = pair.indexOf("=");
    if (at < 0) continue;
    const name = pair.slice(0, at).trim();
    if (name && !(name in cookies)) cookies[name] = pair.slice(at + 1).trim();
  }
  return cookies;
}

// An id or cookie value: never cut (a cut id matches nothing), dropped when too long.
function value(raw, limit = METADATA_LIMIT) {
  const text = raw === undefined || raw === null ? "" : String(raw).trim();
  return text && text.length <= limit ? text : null;
}

function cut(raw) {
  return raw ? value(String(raw).trim().slice(0, METADATA_LIMIT)) : null;
}

function url(raw) {
  const text = String(raw || "").trim();
  return /^https?:\/\//.test(text) ? cut(text) : null;
}

function choice(raw, choices) {
  const text = String(raw || "").trim().toLowerCase();
  return choices.includes(text) ? text : null;
}

// Stripe's amount in minor units as the decimal value, as a string (1999 USD -> "19.99",
// 1500 JPY -> "1500", 12345 KWD -> "12.345"): no floating point on the way.
function decimalAmount(minorUnits, currency) {
  const code = currency.toUpperCase();
  const exponent = ZERO_DECIMAL.has(code) ? 0 : THREE_DECIMAL.has(code) ? 3 : 2;
  const digits = String(minorUnits).padStart(exponent + 1, "0");
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent).replace(/0+$/, "");
  return fraction ? `${whole}.${fraction}` : whole;
}

// The external id exactly as the webhook sends it: SHA-256 (lower-case hex) of the trimmed
// client_reference_id, else of the Stripe customer id. Given hashed, both Pixels pass it on.
function hashedExternalId(session) {
  const customer = session.customer && typeof session.customer === "object" ? session.customer.id : session.customer;
  const raw = String(session.client_reference_id || "").trim() || String(customer || "").trim();
  if (!raw) return null;
  if (SHA256_HEX.test(raw)) return raw.toLowerCase(); // already a digest: the webhook passes it through
  return crypto.createHash("sha256").update(raw, "utf8").digest("hex");
}

// What the success page's script needs, from the retrieved Checkout Session.
function successPageData(session, settings = settingsFromEnv()) {
  const currency = session.currency ? String(session.currency).toUpperCase() : null;
  const amount = session.amount_total;
  const value = Number.isInteger(amount) && currency ? Number(decimalAmount(amount, currency)) : null;
  const consent = choice((session.metadata || {}).ad_consent, ["granted", "denied"]);
  // Fire the Pixels exactly when the webhook reports the purchase: paid, and not refused.
  const report = PAID.includes(session.payment_status) &&
    (consent === "granted" || (consent === null && !settings.requireAdConsent));
  return {
    sessionId: session.id,
    value,
    currency,
    externalId: hashedExternalId(session),
    report,
    tiktok: settings.tiktokPixelId ? { pixelId: settings.tiktokPixelId, eventName: settings.tiktokEventName } : null,
    meta: settings.metaPixelId ? { pixelId: settings.metaPixelId, eventName: settings.metaEventName } : null,
    stubPixels: settings.stubPixels,
  };
}

function renderSuccessPage(data) {
  // JSON inside <script type="application/json">: escaping "<" keeps "</script>" out of it.
  const payload = JSON.stringify(data).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026");
  return fs.readFileSync(SUCCESS_TEMPLATE, "utf8").replace(PURCHASE_PLACEHOLDER, () => payload);
}

module.exports = {
  settingsFromEnv,
  sessionParams,
  checkoutMetadata,
  clientIp,
  parseCookies,
  decimalAmount,
  hashedExternalId,
  successPageData,
  renderSuccessPage,
};
