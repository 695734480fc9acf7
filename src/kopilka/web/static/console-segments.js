// The segment builder without round trips where a script can help: choosing another
// predicate shows its fields at once (the row's "Show its fields" button, pressed for the
// user). Without this file the button does the same. No inline scripts (CSP).
(function () {
  "use strict";
  document.querySelectorAll("select[data-refresh]").forEach(function (select) {
    var button = document.getElementById(select.getAttribute("data-refresh"));
    if (!button || !select.form) return;
    select.addEventListener("change", function () {
      if (select.form.requestSubmit) select.form.requestSubmit(button);
      else button.click();
    });
  });
})();
