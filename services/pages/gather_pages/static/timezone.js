// Progressive enhancement only: preselect the browser's time zone in the registration form. Without
// JavaScript the event's own time zone stays selected, and everything else works the same.
(function () {
  "use strict";
  var select = document.querySelector("select[data-browser-timezone]");
  if (!select || select.hasAttribute("data-chosen") || !window.Intl || !Intl.DateTimeFormat) {
    return; // after an error the person's own choice stands
  }
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === zone) {
      select.value = zone;
      return;
    }
  }
})();
