// Veil review page: vanilla JS against the public API (the same calls any client makes).
"use strict";

const $ = (id) => document.getElementById(id);
let currentJob = null;

function apiKey() {
  const key = $("key").value.trim();
  sessionStorage.setItem("veil-key", key);
  return key;
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${apiKey()}` }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      const body = await response.json();
      message = `${body.error.code}: ${body.error.message}`;
    } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function say(element, text, isError = false) {
  element.textContent = text;
  element.className = isError ? "error" : "";
}

async function waitFor(jobId, element) {
  for (;;) {
    const job = await (await api(`/v1/jobs/${encodeURIComponent(jobId)}`)).json();
    say(element, `${job.id}: ${job.state} ${Math.round(job.progress)} %`);
    if (["succeeded", "failed", "canceled"].includes(job.state)) return job;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function submit(form, element) {
  const response = await api("/v1/jobs?wait=5", { method: "POST", body: form });
  const job = await response.json();
  return ["succeeded", "failed", "canceled"].includes(job.state) ? job : waitFor(job.id, element);
}

async function detect() {
  const file = $("file").files[0];
  if (!file) return say($("status"), "choose a file first", true);
  const form = new FormData();
  form.append("file", file);
  form.append("spec", JSON.stringify({ mode: "detect" }));
  try {
    say($("status"), "uploading…");
    const job = await submit(form, $("status"));
    if (job.state !== "succeeded") throw new Error(job.error ? job.error.message : job.state);
    $("job").value = job.id;
    await load();
  } catch (error) {
    say($("status"), error.message, true);
  }
}

function trackItem(jobId, track) {
  const item = document.createElement("li");
  const image = document.createElement("img");
  image.alt = `track ${track.id}`;
  api(`/v1/jobs/${encodeURIComponent(jobId)}/tracks/${track.id}/thumbnail`)
    .then((r) => r.blob())
    .then((blob) => { image.src = URL.createObjectURL(blob); })
    .catch(() => { image.alt = "no thumbnail"; });
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = true;
  box.value = String(track.id);
  box.addEventListener("change", () => item.classList.toggle("off", !box.checked));
  label.append(box, document.createTextNode(` #${track.id} ${track.category}`));
  const frames = track.frames.map((f) => f.frame);
  const best = Math.max(...track.frames.map((f) => f.score));
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `frames ${Math.min(...frames)}–${Math.max(...frames)} · best score ${best.toFixed(2)}`;
  item.append(image, label, meta);
  return item;
}

async function load() {
  const jobId = $("job").value.trim();
  if (!jobId) return say($("status"), "enter a job id", true);
  try {
    const job = await (await api(`/v1/jobs/${encodeURIComponent(jobId)}`)).json();
    if (job.mode !== "detect") throw new Error("this is not a detect job");
    if (job.state !== "succeeded") throw new Error(`the job is ${job.state}`);
    const report = await (await api(`/v1/jobs/${encodeURIComponent(jobId)}/report`)).json();
    currentJob = jobId;
    const list = $("tracks");
    list.replaceChildren(...report.tracks.map((t) => trackItem(jobId, t)));
    say($("status"), `${report.tracks.length} tracks in ${jobId}`);
    $("review").hidden = false;
    history.replaceState(null, "", `?job=${encodeURIComponent(jobId)}`);
  } catch (error) {
    say($("status"), error.message, true);
  }
}

function tickAll(checked) {
  for (const box of document.querySelectorAll("#tracks input[type=checkbox]")) {
    box.checked = checked;
    box.dispatchEvent(new Event("change"));
  }
}

async function redact() {
  const ticked = [...document.querySelectorAll("#tracks input:checked")].map((b) => Number(b.value));
  let extra = {};
  try {
    extra = $("extra").value.trim() ? JSON.parse($("extra").value) : {};
  } catch (_) {
    return say($("result"), "the JSON is not valid", true);
  }
  const spec = Object.assign({}, extra, {
    mode: "redact",
    source_job: currentJob,
    filter: { track_ids: ticked, scope: "include" },
  });
  const form = new FormData();
  form.append("spec", JSON.stringify(spec));
  try {
    const job = await submit(form, $("result"));
    if (job.state !== "succeeded") throw new Error(job.error ? job.error.message : job.state);
    const link = await (await api(`/v1/jobs/${encodeURIComponent(job.id)}/links`, { method: "POST" })).json();
    const anchor = document.createElement("a");
    anchor.href = link.url;
    anchor.textContent = "Download the result";
    $("result").replaceChildren(anchor, document.createTextNode(` (link valid until ${link.expires_at})`));
  } catch (error) {
    say($("result"), error.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").value = sessionStorage.getItem("veil-key") || "";
  $("detect").addEventListener("click", detect);
  $("load").addEventListener("click", load);
  $("all").addEventListener("click", () => tickAll(true));
  $("none").addEventListener("click", () => tickAll(false));
  $("redact").addEventListener("click", redact);
  const jobId = new URLSearchParams(location.search).get("job");
  if (jobId) {
    $("job").value = jobId;
    if ($("key").value) load();
  }
});
