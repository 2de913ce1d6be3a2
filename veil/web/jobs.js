// The job list: the key's jobs newest first, live state and progress, and upload by drag and drop.
import { TERMINAL, json, submitJob } from "./api.js";

const $ = (id) => document.getElementById(id);
let timer = null;
let openWhenDone = null;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function row(job) {
  const tr = document.createElement("tr");
  tr.dataset.job = job.id;
  tr.dataset.state = job.state;
  const created = new Date(job.created_at);
  const progress = document.createElement("progress");
  progress.max = 100;
  progress.value = job.progress;
  progress.setAttribute("aria-label", `progress of ${job.id}`);
  const progressCell = document.createElement("td");
  progressCell.append(progress, document.createTextNode(` ${Math.round(job.progress)} %`));
  const action = document.createElement("td");
  if (job.state === "succeeded" && job.mode === "detect") {
    const open = document.createElement("a");
    open.href = `#/job/${encodeURIComponent(job.id)}`;
    open.textContent = "Review";
    open.className = "open";
    action.append(open);
  } else if (job.state === "succeeded" && job.source_job) {
    const open = document.createElement("a");
    open.href = `#/job/${encodeURIComponent(job.source_job)}`;
    open.textContent = "Source review";
    action.append(open);
  } else if (job.error) {
    action.textContent = job.error.message;
    action.className = "error";
  }
  const kind = job.input && job.input.media ? job.input.media.kind : "";
  tr.append(
    cell(created.toLocaleString()), cell(job.id), cell(job.mode), cell(kind), cell(job.state), progressCell, action,
  );
  return tr;
}

export async function refreshJobs() {
  const page = await json("/v1/jobs?limit=50");
  $("job-list").tBodies[0].replaceChildren(...page.data.map(row));
  const done = openWhenDone && page.data.find((j) => j.id === openWhenDone);
  if (done && TERMINAL.includes(done.state)) {
    openWhenDone = null;
    if (done.state === "succeeded") location.hash = `#/job/${encodeURIComponent(done.id)}`;
    else $("jobs-status").textContent = `${done.id} ${done.state}: ${done.error ? done.error.message : ""}`;
  }
  return page.data;
}

async function upload(file) {
  const status = $("jobs-status");
  status.className = "";
  status.textContent = `uploading ${file.name}…`;
  try {
    const job = await submitJob({ mode: "detect" }, file);
    openWhenDone = job.id;
    status.textContent = `${job.id}: detecting in ${file.name}`;
    await refreshJobs();
  } catch (error) {
    status.textContent = error.message;
    status.className = "error";
  }
}

export function showJobs() {
  stopJobs();
  const tick = async () => {
    try {
      const jobs = await refreshJobs();
      const busy = jobs.some((j) => !TERMINAL.includes(j.state));
      timer = setTimeout(tick, busy ? 1000 : 4000);
    } catch (error) {
      $("jobs-status").textContent = error.message;
      $("jobs-status").className = "error";
    }
  };
  tick();
}

export function stopJobs() {
  if (timer) clearTimeout(timer);
  timer = null;
}

export function setupJobs() {
  const drop = $("drop");
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) upload(file);
    $("file").value = "";
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) upload(file);
  });
}
