// The checkout backend in Express: POST /create-checkout-session, GET /success.
//   npm ci
//   STRIPE_SECRET_KEY=sk_test_... STRIPE_PRICE_ID=price_... PUBLIC_BASE_URL=http://127.0.0.1:3000 \
//   TIKTOK_PIXEL_ID=... META_PIXEL_ID=... node server.js
"use strict";
const express = require("express");
const { renderSuccessPage, sessionParams, settingsFromEnv, successPageData } = require("./checkout");

const SESSION_ID = /^cs_[A-Za-z0-9_]{1,250}$/;

// `stripe` is a Stripe client (require("stripe")(key)); `currentUserId(req)` your login's user id.
function createApp({ stripe, settings = settingsFromEnv(), currentUserId = () => null }) {
  const app = express();
  app.use(express.urlencoded({ extended: false }), express.json());

  app.post("/create-checkout-session", async (req, res, next) => {
    try {
      const params = sessionParams({ headers: req.headers, body: req.body, socket: req.socket, userId: currentUserId(req) }, settings);
      const session = await stripe.checkout.sessions.create(params);
      if (req.is("application/json") || req.accepts(["html", "json"]) === "json") return res.json({ url: session.url });
      res.redirect(303, session.url);
    } catch (error) {
      next(error);
    }
  });

  app.get("/success", async (req, res, next) => {
    const sessionId = String(req.query.session_id || "");
    if (!SESSION_ID.test(sessionId)) return res.status(400).send("Bad session_id");
    try {
      const session = await stripe.checkout.sessions.retrieve(sessionId);
      res.set("Cache-Control", "no-store").type("html").send(renderSuccessPage(successPageData(session, settings)));
    } catch (error) {
      next(error);
    }
  });

  return app;
}

module.exports = { createApp };

if (require.main === module) {
  const stripe = require("stripe")(process.env.STRIPE_SECRET_KEY); // a key that may create sessions
  const port = Number(process.env.PORT || 3000);
  createApp({ stripe }).listen(port, "127.0.0.1", () => console.log(`http://127.0.0.1:${port}/`));
}
