// Service desk keyboard shortcuts (queues and the ticket page). No framework; the help
// overlay (#shortcuts, a <dialog> in the page) carries the translated key list.
(function () {
  "use strict";
  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr"));
  }
  var current = -1;
  function select(i) {
    var list = rows();
    if (!list.length) return;
    current = Math.max(0, Math.min(list.length - 1, i));
    list.forEach(function (r, n) { r.classList.toggle("selected", n === current); });
    list[current].scrollIntoView({ block: "nearest" });
  }
  function openAction(name) {
    var s = document.querySelector('summary[data-action="' + name + '"]');
    if (s) { s.parentElement.open = true; var f = s.parentElement.querySelector("select, input, textarea"); if (f) f.focus(); return; }
    var b = document.querySelector('button[data-action="' + name + '"]');
    if (b) b.focus();
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    var help = document.getElementById("shortcuts");
    switch (e.key) {
      case "?": if (help) { help.open ? help.close() : help.showModal(); } break;
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "Enter": { var r = rows()[current]; if (r) { var a = r.querySelector("a"); if (a) a.click(); } else return; break; }
      case "/": { var s = document.querySelector('input[type="search"]'); if (s) s.focus(); else return; break; }
      case "r": { var body = document.querySelector('[data-testid="reply"] textarea'); if (body) body.focus(); else return; break; }
      case "a": openAction("assign"); break;
      case "s": openAction("start"); break;
      case "v": openAction("resolve"); break;
      case "u": { var up = document.querySelector('[data-testid="attach"] input[type="file"]'); if (up) up.click(); else return; break; }
      case "g": window.location.href = "/incidents"; break;
      case "n": window.location.href = "/incidents/new"; break;
      default: return;
    }
    e.preventDefault();
  });
})();
