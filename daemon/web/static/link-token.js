// The links in Bastion's mail carry their token in the URL fragment (#token=...), which browsers never send to a
// server: this moves it into the page's form, and out of the address bar and the history.
(function () {
  "use strict";
  var found = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  var field = document.getElementById("token");
  if (!found || !field) return;
  field.value = decodeURIComponent(found[1]);
  history.replaceState(null, "", window.location.pathname);
  var pasted = document.getElementById("token-pasted");
  if (pasted) pasted.hidden = true;
})();
