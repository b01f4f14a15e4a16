// The admin's own behaviour, served as a file: the Content-Security-Policy allows no
// inline script (script-src 'self'). A <select data-autosubmit> submits its form.
"use strict";
document.addEventListener("change", function (event) {
  var field = event.target;
  if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) {
    field.form.submit();
  }
});
