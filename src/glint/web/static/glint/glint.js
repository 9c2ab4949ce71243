// Small behaviours that need no inline script (the CSP forbids inline script).
document.addEventListener("change", function (event) {
  var target = event.target;
  if (target.matches && target.matches("[data-autosubmit]")) {
    target.form.submit();
  }
});

// Live parts (hx-trigger="every ...") pause while the server says it is busy (429 over the
// per-person limit, 503 when every worker is taken): for its Retry-After, doubled for each refusal
// in a row up to a minute, so a room full of open pages sheds load instead of adding to it.
var busyUntil = 0;
var busyRefusals = 0;

function isLivePart(element) {
  var trigger = element && element.getAttribute && element.getAttribute("hx-trigger");
  return !!trigger && trigger.indexOf("every ") === 0;
}

document.addEventListener("htmx:beforeRequest", function (event) {
  if (isLivePart(event.detail.elt) && Date.now() < busyUntil) {
    event.preventDefault();
  }
});

document.addEventListener("htmx:afterRequest", function (event) {
  var xhr = event.detail.xhr;
  if (!xhr || !isLivePart(event.detail.elt)) {
    return;
  }
  if (xhr.status === 429 || xhr.status === 503) {
    var asked = parseInt(xhr.getResponseHeader("Retry-After"), 10);
    var seconds = Math.max(isNaN(asked) ? 2 : asked, 2) * Math.pow(2, busyRefusals);
    busyRefusals += 1;
    busyUntil = Date.now() + Math.min(seconds, 60) * 1000;
  } else if (xhr.status > 0 && xhr.status < 400) {
    busyRefusals = 0;
  }
});
