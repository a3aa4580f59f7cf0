/* Findings table: sort by clicking a header, filter by text / severity / rule, open a finding's records. */
(function () {
  "use strict";
  var table = document.getElementById("findings");
  if (!table) { return; }
  var text = document.getElementById("filter-text");
  var severity = document.getElementById("filter-severity");
  var rule = document.getElementById("filter-rule");
  var counter = document.getElementById("shown-count");

  function cellValue(body, index, numeric) {
    var cell = body.rows[0].cells[index];
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    return numeric ? parseFloat(raw) : raw.trim().toLowerCase();
  }

  function sortBy(th) {
    var index = parseInt(th.getAttribute("data-key"), 10);
    var numeric = th.getAttribute("data-type") === "number";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var bodies = Array.prototype.slice.call(table.tBodies);
    bodies.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      var order = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? order : -order;
    });
    bodies.forEach(function (body) { table.appendChild(body); });
  }

  function applyFilters() {
    var needle = text.value.trim().toLowerCase();
    var sev = severity.value, ruleId = rule.value, shown = 0;
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var visible = (!sev || body.getAttribute("data-severity") === sev) &&
        (!ruleId || body.getAttribute("data-rule") === ruleId) &&
        (!needle || body.getAttribute("data-search").indexOf(needle) !== -1);
      body.hidden = !visible;
      if (visible) { shown += 1; }
    });
    counter.textContent = shown.toLocaleString("en-GB") + " shown";
  }

  Array.prototype.forEach.call(table.tHead.querySelectorAll("th[data-key]"), function (th) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(th); } });
  });
  table.addEventListener("click", function (e) {
    var button = e.target.closest("button.toggle");
    if (!button) { return; }
    var drill = button.closest("tbody").rows[1];
    drill.hidden = !drill.hidden;
    button.setAttribute("aria-expanded", drill.hidden ? "false" : "true");
  });
  [text, severity, rule].forEach(function (control) {
    control.addEventListener("input", applyFilters);
    control.addEventListener("change", applyFilters);
  });
})();
