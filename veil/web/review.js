// Veil review page: log-in, job list, job page. Plain JavaScript modules, no build step.
import { apiKey, json, setKey } from "./api.js";
import { closeJob, openJob, setupEditor } from "./editor.js";
import { setupJobs, showJobs, stopJobs } from "./jobs.js";

const $ = (id) => document.getElementById(id);

function loggedIn(on) {
  $("logout").hidden = !on;
  $("login-button").hidden = on;
  $("key").hidden = on;
  $("key").closest("label").hidden = on;
}

async function route() {
  if (!apiKey()) {
    loggedIn(false);
    $("jobs-view").hidden = true;
    $("job-view").hidden = true;
    $("key").focus();
    return;
  }
  loggedIn(true);
  const match = location.hash.match(/^#\/job\/([A-Za-z0-9_-]+)$/);
  if (match) {
    stopJobs();
    $("jobs-view").hidden = true;
    $("job-view").hidden = false;
    const status = $("job-status");
    status.textContent = "loading…";
    status.className = "";
    try {
      await openJob(decodeURIComponent(match[1]));
    } catch (error) {
      status.textContent = error.message;
      status.className = "error";
    }
  } else {
    closeJob();
    $("job-view").hidden = true;
    $("jobs-view").hidden = false;
    showJobs();
  }
}

async function login(event) {
  event.preventDefault();
  const status = $("login-status");
  setKey($("key").value.trim());
  try {
    await json("/v1/account");
    status.textContent = "";
    status.className = "";
    $("key").value = "";
    if (!location.hash) location.hash = "#/jobs";
    await route();
  } catch (error) {
    setKey("");
    status.textContent = error.message;
    status.className = "error";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupJobs();
  setupEditor();
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", () => {
    setKey("");
    closeJob();
    stopJobs();
    route();
  });
  window.addEventListener("hashchange", route);
  route();
});
