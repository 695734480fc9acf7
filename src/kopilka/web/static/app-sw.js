// The members' app's service worker: the card opens without a connection, at the till.
// Served at /app/<program>/sw.js with SCOPE filled in (the program's app, "/app/<program>/").
//
// - The card page (the scope itself) goes to the network first; each good answer is kept,
//   and when the network fails the kept card is shown (its QR code is an image inside it).
// - The shipped assets (/static/…, their addresses carry their content's hash) are kept as
//   they are fetched and served from what is kept.
// - Nothing else is kept: no other page of the member's, and nothing of anyone else's.
// - Signing out, or signing in (perhaps as someone else), empties what is kept; so does
//   opening the goodbye page (where deleting the account leads: the card is no one's now)
//   and a card page answered with a redirect (the session ended elsewhere).
"use strict";

var SCOPE = "__KOPILKA_SCOPE__";
var CACHE = "kopilka-app " + SCOPE;
var CARD = SCOPE;

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

function forget() {
  return caches.delete(CACHE);
}

function ours(url) {
  return url.origin === self.location.origin;
}

function changesWhoIsSignedIn(request, url) {
  if (!ours(url)) return false;
  if (request.method === "GET") return url.pathname === SCOPE + "goodbye";
  return (
    request.method === "POST" &&
    (url.pathname === SCOPE + "sign-out" || url.pathname === SCOPE + "sign-in/code")
  );
}

function card(event) {
  return fetch(event.request)
    .then(function (response) {
      if (response.ok && response.type === "basic" && !response.redirected) {
        var copy = response.clone();
        event.waitUntil(
          caches.open(CACHE).then(function (cache) {
            return cache.put(CARD, copy);
          })
        );
      } else if (response.type === "opaqueredirect" || response.redirected) {
        event.waitUntil(forget());
      }
      return response;
    })
    .catch(function () {
      return caches
        .open(CACHE)
        .then(function (cache) {
          return cache.match(CARD);
        })
        .then(function (kept) {
          return kept || Response.error();
        });
    });
}

function asset(event) {
  return caches.open(CACHE).then(function (cache) {
    return cache.match(event.request).then(function (kept) {
      if (kept) return kept;
      return fetch(event.request).then(function (response) {
        if (response.ok && response.type === "basic") {
          var copy = response.clone();
          event.waitUntil(cache.put(event.request, copy));
        }
        return response;
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (changesWhoIsSignedIn(request, url)) {
    event.waitUntil(forget()); // the request itself goes to the network as usual
    return;
  }
  if (request.method !== "GET" || !ours(url)) return;
  if (url.pathname === CARD) {
    event.respondWith(card(event));
  } else if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(asset(event));
  }
});
