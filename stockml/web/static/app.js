// Draw every chart whose figure the page carries as JSON data, and submit the signals
// filters when a choice changes. No inline script: the page's CSP forbids it.
(function () {
  "use strict";
  if (window.Plotly) {
    document.querySelectorAll("script.plotly-figure").forEach(function (el) {
      var figure = JSON.parse(el.textContent);
      var target = document.getElementById(el.dataset.target);
      if (target) {
        window.Plotly.newPlot(target, figure.data, figure.layout, {
          responsive: true,
          displaylogo: false,
        });
      }
    });
  }
  document.querySelectorAll("form.filters select").forEach(function (select) {
    select.addEventListener("change", function () {
      select.form.submit();
    });
  });
})();
