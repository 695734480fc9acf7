// The draft editor: a "line N" link of an error puts the cursor on that line of the
// document and scrolls to it. Works without it: the link only jumps to the editor.
(function () {
  "use strict";
  var editor = document.getElementById("f-document");
  if (!editor) return;
  document.querySelectorAll(".line-ref[data-line]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var line = parseInt(link.getAttribute("data-line"), 10) || 1;
      var lines = editor.value.split("\n");
      var start = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
      var end = start + (lines[line - 1] || "").length;
      editor.focus();
      editor.setSelectionRange(start, end);
      var height = editor.scrollHeight / Math.max(lines.length, 1);
      editor.scrollTop = Math.max(0, (line - 5) * height);
    });
  });
})();
