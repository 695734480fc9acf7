// Kopilka's pages work without this file; it only adds comfort. No inline scripts: the
// Content-Security-Policy allows scripts from this site's files only.
(function () {
  "use strict";

  function csrfToken() {
    var field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  // The console's menu on small screens.
  document.querySelectorAll(".menu-toggle").forEach(function (button) {
    button.addEventListener("click", function () {
      var nav = document.getElementById(button.getAttribute("aria-controls"));
      if (!nav) return;
      var open = nav.classList.toggle("open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  });

  // Forms that change something irreversible ask first: <form data-confirm="Sure?">.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // A live answer while a form is being filled: <form data-live="/url" data-live-target="id">
  // POSTs the form (with the CSRF header) as the user types and puts the answer's text in
  // the target. The form still works by its own submit button without this.
  document.querySelectorAll("form[data-live]").forEach(function (form) {
    var target = document.getElementById(form.getAttribute("data-live-target"));
    var timer = null;
    function ask() {
      var body = new URLSearchParams(new FormData(form));
      fetch(form.getAttribute("data-live"), {
        method: "POST",
        body: body,
        headers: { "X-CSRF-Token": csrfToken() },
        credentials: "same-origin",
      })
        .then(function (answer) { return answer.text(); })
        .then(function (text) { if (target) target.textContent = text; })
        .catch(function () {});
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 300);
    });
  });

  // Where am I: <button data-locate data-lat="lat-input-id" data-lon="lon-input-id"> fills
  // the two fields from the browser's position and submits their form.
  document.querySelectorAll("[data-locate]").forEach(function (button) {
    if (!("geolocation" in navigator)) { button.hidden = true; return; }
    button.hidden = false;
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var status = document.getElementById(button.getAttribute("data-status") || "");
      if (status) status.textContent = button.getAttribute("data-waiting") || "";
      navigator.geolocation.getCurrentPosition(function (position) {
        var lat = document.getElementById(button.getAttribute("data-lat"));
        var lon = document.getElementById(button.getAttribute("data-lon"));
        lat.value = position.coords.latitude.toFixed(6);
        lon.value = position.coords.longitude.toFixed(6);
        lat.form.submit();
      }, function () {
        if (status) status.textContent = button.getAttribute("data-failed") || "";
      }, { timeout: 10000, maximumAge: 60000 });
    });
  });

  // The app's service worker: the card opens offline.
  var worker = document.querySelector('meta[name="kopilka-service-worker"]');
  if (worker && "serviceWorker" in navigator) {
    navigator.serviceWorker
      .register(worker.getAttribute("content"), { scope: worker.getAttribute("data-scope") })
      .catch(function () {});
  }
})();
