// The public API, exactly as any client calls it: the key goes in the Authorization header.

const KEY = "veil-key";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${apiKey()}` }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = response.statusText || "request failed";
    try {
      const body = await response.json();
      code = body.error.code;
      message = body.error.message;
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, code, message);
  }
  return response;
}

export async function json(path, options = {}) {
  return (await api(path, options)).json();
}

export function postJson(path, body) {
  return json(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

export const TERMINAL = ["succeeded", "failed", "canceled"];

export async function submitJob(spec, file = null) {
  const form = new FormData();
  if (file) form.append("file", file);
  form.append("spec", JSON.stringify(spec));
  return json("/v1/jobs", { method: "POST", body: form });
}

export async function link(jobId, file) {
  return postJson(`/v1/jobs/${encodeURIComponent(jobId)}/links`, { file });
}

export async function thumbnailUrl(jobId, trackId) {
  const blob = await (await api(`/v1/jobs/${encodeURIComponent(jobId)}/tracks/${trackId}/thumbnail`)).blob();
  return URL.createObjectURL(blob);
}
