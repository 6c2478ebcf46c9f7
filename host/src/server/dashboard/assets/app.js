// Powernode's dashboard: the live parts. Served as a file (the Content-Security-Policy
// allows no inline script); every page works without it, only less live.
"use strict";

// Runs list: when the server says the runs changed, fetch the rows again.
function liveRuns(table) {
  const source = new EventSource("/runs/live" + location.search);
  source.addEventListener("changed", async () => {
    const url = new URL(location.href);
    url.searchParams.set("partial", "rows");
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.ok) table.tBodies[0].innerHTML = await response.text();
  });
}

// Run page: log lines as they are written, the steps as they change, a reload at the end.
function liveRun(page) {
  const log = document.getElementById("log");
  const steps = document.getElementById("steps");
  const id = page.dataset.run;
  const after = log.dataset.after;
  const source = new EventSource("/runs/" + encodeURIComponent(id) + "/live" + (after ? "?after=" + after : ""));
  const chunkSize = 1000;
  let chunk = log.lastElementChild;
  let count = chunk ? chunk.childElementCount : 0;
  source.addEventListener("line", (event) => {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    if (!chunk || count >= chunkSize) {
      chunk = document.createElement("div");
      chunk.className = "chunk";
      log.appendChild(chunk);
      count = 0;
    }
    const line = document.createElement("div");
    line.className = "l";
    // Rendered and escaped by the server (its colours as classed spans), as the page's own lines.
    line.innerHTML = event.data;
    chunk.appendChild(line);
    count += 1;
    log.hidden = false;
    if (atBottom) log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("steps", (event) => {
    // Rendered and escaped by the server.
    steps.innerHTML = event.data;
  });
  source.addEventListener("end", () => {
    source.close();
    setTimeout(() => location.reload(), 300);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const runs = document.getElementById("runs");
  if (runs && runs.dataset.live !== undefined) liveRuns(runs);
  const run = document.querySelector("[data-run]");
  if (run && run.dataset.live !== undefined) liveRun(run);
});
