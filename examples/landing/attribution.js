/*
 * Ad click attribution for every landing page: <script src="/attribution.js"></script>
 *
 * Keeps the click ids of the landing URL in first-party cookies for 30 days, where the checkout
 * backend reads them into the Checkout Session's metadata (docs/configuration.md: "Checkout Session metadata"):
 *   ?ttclid=...  -> cookie ttclid                           (metadata ttclid)
 *   ?fbclid=...  -> cookie _fbc = fb.1.<ms timestamp>.<fbclid>  (metadata fbc)
 * _fbc is written as Meta's Pixel writes it (the fbclid's case kept), and only for a new fbclid:
 * the same fbclid again keeps the existing cookie and its timestamp (when the click happened).
 * If your consent rules forbid these cookies before the visitor agrees, load this once they do.
 *
 * window.checkoutAttribution.read() gives the values to post with the checkout request, named
 * as the metadata keys (a backend on another origin does not get the cookies).
 */
(function () {
  "use strict";
  var MAX_AGE = 30 * 24 * 60 * 60; // seconds
  // Characters a cookie value may hold unquoted (RFC 6265); click ids have no others.
  var COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{1,500}$/;
  var secure = location.protocol === "https:" ? "; Secure" : "";
  var domain = cookieDomain();

  var query = new URLSearchParams(location.search);
  var ttclid = query.get("ttclid");
  if (ttclid && COOKIE_VALUE.test(ttclid)) setCookie("ttclid", ttclid);

  var fbclid = query.get("fbclid");
  if (fbclid && COOKIE_VALUE.test(fbclid)) {
    var fbc = getCookie("_fbc");
    // fb.<subdomain index>.<creation time, ms>.<fbclid>; the fbclid may itself contain dots.
    var known = fbc && fbc.split(".").slice(3).join(".");
    if (known !== fbclid) setCookie("_fbc", "fb.1." + Date.now() + "." + fbclid);
  }

  function setCookie(name, value) {
    document.cookie = name + "=" + value + "; Max-Age=" + MAX_AGE + "; Path=/" + domain +
      "; SameSite=Lax" + secure;
  }

  function getCookie(name) {
    var pairs = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < pairs.length; i++) {
      var at = pairs[i].indexOf("=");
      if (pairs[i].slice(0, at) === name) return pairs[i].slice(at + 1);
    }
    return null;
  }

  function cookieDomain() {
    // Meta's Pixel sets _fbc on the registrable domain (example.com, not www.example.com): writing
    // ours there too replaces its cookie instead of adding a second _fbc beside it. The shortest
    // domain the browser accepts is it (the browser refuses public suffixes such as co.uk).
    var host = location.hostname;
    if (!host || host.indexOf(".") < 0 || /^[\d.]+$/.test(host) || host.indexOf(":") >= 0) return "";
    var labels = host.split(".");
    var probe = "_attribution_probe";
    for (var i = labels.length - 2; i >= 0; i--) {
      var candidate = "; Domain=" + labels.slice(i).join(".");
      document.cookie = probe + "=1; Path=/" + candidate + "; SameSite=Lax" + secure;
      if (getCookie(probe) === "1") {
        document.cookie = probe + "=; Max-Age=0; Path=/" + candidate + "; SameSite=Lax" + secure;
        return candidate;
      }
    }
    return ""; // host-only
  }

  window.checkoutAttribution = {
    read: function () {
      var values = {
        ttclid: getCookie("ttclid"),
        ttp: getCookie("_ttp"), // set by the TikTok Pixel
        fbp: getCookie("_fbp"), // set by the Meta Pixel
        fbc: getCookie("_fbc"),
        page_url: location.href,
        page_referrer: document.referrer,
        locale: navigator.language
      };
      var present = {};
      for (var key in values) if (values[key]) present[key] = values[key];
      return present;
    }
  };
})();
