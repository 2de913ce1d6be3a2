// The job page: player, boxes of the current frame, timeline, drawn regions, render.
// Everything goes through the public API; the spec it renders with is a plain RedactionSpec.
import { TERMINAL, json, link, postJson, submitJob, thumbnailUrl } from "./api.js";

const $ = (id) => document.getElementById(id);
const METHODS = ["blur", "pixelate", "black"];
const LEVELS = { low: 20, medium: 50, high: 80 };

let S = null; // the state of the open job page
let regionSeq = 0;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
}

function say(id, text, isError = false) {
  $(id).textContent = text;
  $(id).className = isError ? "error" : "";
}

// --- geometry ------------------------------------------------------------------------------------------

function trackBox(track, frame) {
  return track.byFrame.get(frame) || null;
}

function regionBox(region, frame) {
  const keys = region.keyframes;
  if (!keys.length || frame < keys[0].frame || frame > keys[keys.length - 1].frame) return null;
  let i = 0;
  while (i + 1 < keys.length && keys[i + 1].frame <= frame) i += 1;
  const a = keys[i];
  if (a.frame === frame || i + 1 >= keys.length) return a.box.slice();
  const b = keys[i + 1];
  const t = (frame - a.frame) / (b.frame - a.frame);
  return a.box.map((v, k) => v + t * (b.box[k] - v));
}

function spanOf(region) {
  return [region.keyframes[0].frame, region.keyframes[region.keyframes.length - 1].frame];
}

function runs(frames) {
  // Contiguous spans [first, last] of sorted frame numbers.
  const out = [];
  for (const f of frames) {
    const last = out[out.length - 1];
    if (last && f === last[1] + 1) last[1] = f;
    else out.push([f, f]);
  }
  return out;
}

function setKeyframe(region, frame, box) {
  const rounded = box.map((v) => Math.round(v * 10) / 10);
  const keys = region.keyframes.filter((k) => k.frame !== frame);
  keys.push({ frame, box: rounded });
  keys.sort((a, b) => a.frame - b.frame);
  region.keyframes = keys;
}

// --- player -------------------------------------------------------------------------------------------

function isVideo() {
  return S.kind === "video";
}

function frameTime(frame) {
  return (frame + 0.5) / S.fps;
}

function seek(frame) {
  if (!isVideo()) return;
  frame = Math.max(0, Math.min(S.frameCount - 1, Math.round(frame)));
  S.frame = frame;
  const video = $("video");
  if (!video.paused) video.pause();
  video.currentTime = frameTime(frame);
  draw();
}

function togglePlay() {
  if (!isVideo()) return;
  const video = $("video");
  if (video.paused) video.play();
  else {
    video.pause();
    seek(S.frame);
  }
}

function followPlayback() {
  const video = $("video");
  const onFrame = (_now, meta) => {
    if (!S || S.video !== video) return;
    if (!video.paused) {
      S.frame = Math.max(0, Math.min(S.frameCount - 1, Math.round(meta.mediaTime * S.fps)));
      draw();
    }
    video.requestVideoFrameCallback(onFrame);
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
  video.addEventListener("play", () => { $("play").textContent = "Pause"; });
  video.addEventListener("pause", () => { $("play").textContent = "Play"; });
  video.addEventListener("seeked", () => {
    if (video.paused) {
      video.dataset.frame = String(S.frame);
      draw();
    }
  });
}

// --- overlay ------------------------------------------------------------------------------------------

function scale() {
  const media = isVideo() ? $("video") : $("still");
  return media.clientWidth / S.width;
}

function boxDiv(box, cls, label, key) {
  const k = scale();
  const div = el("div", { class: `box ${cls}`, "data-key": key });
  Object.assign(div.style, {
    left: `${box[0] * k}px`,
    top: `${box[1] * k}px`,
    width: `${(box[2] - box[0]) * k}px`,
    height: `${(box[3] - box[1]) * k}px`,
  });
  div.append(el("span", { class: "label", text: label }));
  return div;
}

function isSelected(type, id) {
  return S.selected && S.selected.type === type && S.selected.id === id;
}

function draw() {
  if (!S) return;
  const overlay = $("overlay");
  const boxes = [];
  for (const track of S.tracks) {
    if (!S.categories[track.category].visible) continue;
    const box = trackBox(track, S.frame);
    if (!box) continue;
    const cls = `track ${track.masked ? "masked" : "kept"}${isSelected("track", track.id) ? " selected" : ""}`;
    const div = boxDiv(box, cls, `#${track.id} ${track.category}`, `track:${track.id}`);
    div.dataset.track = String(track.id);
    boxes.push(div);
  }
  for (const region of S.regions) {
    const box = regionBox(region, S.frame);
    if (!box) continue;
    const selected = isSelected("region", region.id);
    const cls = `region ${region.kind}${selected ? " selected" : ""}`;
    const div = boxDiv(box, cls, `${region.name} ${region.kind === "zone" ? "zone" : region.method}`, `region:${region.id}`);
    div.dataset.region = region.id;
    if (selected) div.append(el("span", { class: "handle", title: "Drag to resize" }));
    boxes.push(div);
  }
  if (S.drag && S.drag.kind === "new") {
    boxes.push(boxDiv(S.drag.box, "drawing", "new", "new"));
  } else if (S.pending) {
    boxes.push(boxDiv(S.pending.box, "drawing", "new", "new"));
  }
  overlay.replaceChildren(...boxes);
  overlay.classList.toggle("drawing-mode", S.drawing);
  if (isVideo()) {
    $("seek").value = String(S.frame);
    $("frame-label").textContent =
      `frame ${S.frame} / ${S.frameCount - 1} · ${(S.frame / S.fps).toFixed(2)} s`;
    const pct = (S.frame + 0.5) / S.frameCount;
    const lanes = $("lanes");
    const bar = lanes.querySelector(".lane-bar");
    if (bar) {
      const left = bar.offsetLeft + pct * bar.clientWidth;
      $("playhead").style.left = `${left}px`;
      $("playhead").style.height = `${lanes.scrollHeight}px`;
    }
  }
  $("view-toggle").checked = S.view === "redacted";
}

function toImage(event) {
  const rect = $("overlay").getBoundingClientRect();
  const k = scale();
  const x = Math.max(0, Math.min(S.width, (event.clientX - rect.left) / k));
  const y = Math.max(0, Math.min(S.height, (event.clientY - rect.top) / k));
  return [x, y];
}

function normal(a, b) {
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
}

function setupOverlay() {
  const overlay = $("overlay");
  overlay.addEventListener("pointerdown", (event) => {
    if (!S) return;
    const start = toImage(event);
    const target = event.target.closest(".box");
    if (S.drawing && !(target && target.classList.contains("handle"))) {
      S.drag = { kind: "new", start, box: [start[0], start[1], start[0] + 1, start[1] + 1] };
    } else if (event.target.classList.contains("handle") || (target && target.dataset.region)) {
      const region = S.regions.find((r) => r.id === target.dataset.region);
      if (!isSelected("region", region.id)) {
        select("region", region.id);
        return;
      }
      if (isVideo() && !$("video").paused) $("video").pause();
      const box = regionBox(region, S.frame);
      S.drag = { kind: event.target.classList.contains("handle") ? "resize" : "move", start, region, box, orig: box.slice() };
    } else if (target && target.dataset.track) {
      select("track", Number(target.dataset.track));
      return;
    } else {
      return;
    }
    overlay.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  overlay.addEventListener("pointermove", (event) => {
    if (!S || !S.drag) return;
    const at = toImage(event);
    const d = S.drag;
    if (d.kind === "new") d.box = normal(d.start, at);
    else if (d.kind === "move") {
      const dx = at[0] - d.start[0];
      const dy = at[1] - d.start[1];
      d.box = [d.orig[0] + dx, d.orig[1] + dy, d.orig[2] + dx, d.orig[3] + dy];
      setKeyframe(d.region, S.frame, d.box);
    } else {
      d.box = [d.orig[0], d.orig[1], Math.max(d.orig[0] + 2, at[0]), Math.max(d.orig[1] + 2, at[1])];
      setKeyframe(d.region, S.frame, d.box);
    }
    draw();
  });
  overlay.addEventListener("pointerup", () => {
    if (!S || !S.drag) return;
    const d = S.drag;
    S.drag = null;
    if (d.kind === "new") {
      S.drawing = false;
      if (d.box[2] - d.box[0] >= 2 && d.box[3] - d.box[1] >= 2) openPending(d.box);
    } else {
      renderLanes();
      renderInspector();
    }
    draw();
  });
}

// --- drawing a new box --------------------------------------------------------------------------------

function startDrawing() {
  if (!S) return;
  if (isVideo() && !$("video").paused) togglePlay();
  S.drawing = true;
  S.pending = null;
  $("pending").hidden = true;
  say("job-status", "Drag on the picture to draw a box.");
  draw();
}

function openPending(box) {
  S.pending = { frame: S.frame, box: box.map((v) => Math.round(v)) };
  $("pending").hidden = false;
  $("pending-box").textContent =
    `[${S.pending.box.join(", ")}] on ${isVideo() ? `frame ${S.frame}` : "the photo"}`;
  $("pending-end").value = isVideo() ? Math.min((S.frameCount - 1) / S.fps, S.frame / S.fps + 1).toFixed(2) : "";
  for (const id of ["pending-until", "pending-track", "pending-end"]) $(id).disabled = !isVideo();
  say("pending-status", "");
  say("job-status", "");
  $("pending-frame").focus();
}

function closePending() {
  S.pending = null;
  $("pending").hidden = true;
  draw();
}

function addRegion(keyframes, extra = {}) {
  regionSeq += 1;
  const kind = $("pending-kind").value;
  const region = Object.assign({
    id: `r${regionSeq}`,
    name: kind === "zone" ? `Z${regionSeq}` : `R${regionSeq}`,
    kind,
    keyframes,
    method: "blur",
    strength: 50,
  }, extra);
  S.regions.push(region);
  closePending();
  select("region", region.id);
  renderLanes();
  return region;
}

function pendingThisFrame() {
  const { frame, box } = S.pending;
  addRegion([{ frame, box }]);
}

function pendingUntil() {
  const { frame, box } = S.pending;
  const end = Math.max(frame, Math.min(S.frameCount - 1, Math.round(Number($("pending-end").value) * S.fps)));
  addRegion(end === frame ? [{ frame, box }] : [{ frame, box }, { frame: end, box: box.slice() }]);
}

async function pendingTrack() {
  const { frame, box } = S.pending;
  say("pending-status", "Following the box through the video…");
  for (const id of ["pending-frame", "pending-until", "pending-track"]) $(id).disabled = true;
  try {
    const found = await postJson(`/v1/jobs/${encodeURIComponent(S.job.id)}/track`, { frame, box });
    const region = addRegion(found.keyframes.map((k) => ({ frame: k.frame, box: k.box })), { tracked: found });
    say("job-status",
      `${region.name}: followed from frame ${found.first_frame} to ${found.last_frame} ` +
      `(backward: ${found.stopped.backward}, forward: ${found.stopped.forward}).`);
  } catch (error) {
    say("pending-status", error.message, true);
  } finally {
    for (const id of ["pending-frame", "pending-until", "pending-track"]) $(id).disabled = !isVideo() && id !== "pending-frame";
  }
}

// --- selection ----------------------------------------------------------------------------------------

function selectedItem() {
  if (!S || !S.selected) return null;
  if (S.selected.type === "track") return S.tracks.find((t) => t.id === S.selected.id) || null;
  return S.regions.find((r) => r.id === S.selected.id) || null;
}

function select(type, id, { seekTo = false } = {}) {
  S.selected = { type, id };
  const item = selectedItem();
  if (seekTo && item && isVideo()) {
    const first = type === "track" ? item.first : spanOf(item)[0];
    const last = type === "track" ? item.last : spanOf(item)[1];
    if (S.frame < first || S.frame > last) seek(first);
  }
  renderInspector();
  renderLanes();
  draw();
}

function toggleSelected() {
  const item = selectedItem();
  if (!item) return;
  if (S.selected.type === "track") item.masked = !item.masked;
  else item.enabled = item.enabled === false;
  renderInspector();
  renderLanes();
  draw();
}

function deleteSelected() {
  if (!S || !S.selected || S.selected.type !== "region") return;
  S.regions = S.regions.filter((r) => r.id !== S.selected.id);
  S.selected = null;
  renderInspector();
  renderLanes();
  draw();
}

function trim(which) {
  const region = selectedItem();
  if (!region || S.selected.type !== "region") return;
  const box = regionBox(region, S.frame);
  const [first, last] = spanOf(region);
  const keep = region.keyframes.filter((k) => (which === "start" ? k.frame > S.frame : k.frame < S.frame));
  const anchor = box || (which === "start" ? region.keyframes[0].box : region.keyframes[region.keyframes.length - 1].box);
  if (which === "start" && S.frame > last) return say("job-status", "That is after the region ends.", true);
  if (which === "end" && S.frame < first) return say("job-status", "That is before the region starts.", true);
  region.keyframes = which === "start" ? [{ frame: S.frame, box: anchor }, ...keep] : [...keep, { frame: S.frame, box: anchor }];
  renderInspector();
  renderLanes();
  draw();
}

function renderInspector() {
  const item = selectedItem();
  $("inspector-empty").hidden = !!item;
  $("inspector-body").hidden = !item;
  if (!item) return;
  const isTrack = S.selected.type === "track";
  if (isTrack) {
    $("sel-name").textContent = `Track #${item.id} · ${item.category} · frames ${item.first}–${item.last}`;
    $("sel-mask").textContent = item.masked ? "Masked: keep it visible (m)" : "Kept visible: mask it (m)";
    $("sel-mask").setAttribute("aria-pressed", String(item.masked));
  } else {
    const [first, last] = spanOf(item);
    const span = isVideo() ? ` · frames ${first}–${last} · ${item.keyframes.length} keyframes` : "";
    $("sel-name").textContent = `${item.kind === "zone" ? "Exclusion zone" : "Region"} ${item.name}${span}`;
    const on = item.enabled !== false;
    $("sel-mask").textContent = on ? "On: switch off (m)" : "Off: switch on (m)";
    $("sel-mask").setAttribute("aria-pressed", String(on));
  }
  $("sel-start").hidden = isTrack || !isVideo();
  $("sel-end").hidden = isTrack || !isVideo();
  $("sel-delete").hidden = isTrack;
  const methodRow = isTrack || item.kind === "mask";
  $("sel-method-row").hidden = !methodRow;
  if (methodRow) {
    const inherit = $("sel-method").querySelector('option[value=""]');
    inherit.hidden = !isTrack;
    inherit.disabled = !isTrack;
    const cat = isTrack ? S.categories[item.category] : null;
    if (isTrack) inherit.textContent = `as ${item.category} (${cat.method})`;
    $("sel-method").value = item.method || "";
    const strength = item.strength || (cat ? cat.strength : 50);
    $("sel-strength").value = String(strength);
    $("sel-strength").disabled = (item.method || (cat && cat.method)) === "black";
    $("sel-strength-value").textContent = strengthText(strength) + (isTrack && !item.strength ? " (category)" : "");
  }
}

function strengthText(value) {
  const name = Object.entries(LEVELS).find(([, v]) => v === Number(value));
  return name ? `${value} (${name[0]})` : String(value);
}

// --- timeline -----------------------------------------------------------------------------------------

function spanDiv(first, last, cls) {
  const total = Math.max(1, S.frameCount);
  const div = el("div", { class: `span ${cls}` });
  div.style.left = `${(first / total) * 100}%`;
  div.style.width = `${(Math.max(1, last - first + 1) / total) * 100}%`;
  return div;
}

function lane({ type, id, label, thumb, on, spans, ticks, cls }) {
  const selected = isSelected(type, id);
  const row = el("div", {
    class: `lane ${cls}${on ? "" : " off"}${selected ? " selected" : ""}`,
    tabIndex: 0,
    role: "button",
    "data-type": type,
    "data-id": String(id),
  });
  row.setAttribute("aria-pressed", String(selected));
  row.setAttribute("aria-label", `${label}, ${on ? "masked" : "not masked"}; select`);
  const head = el("div", { class: "lane-head" });
  if (thumb) head.append(thumb);
  head.append(el("span", { class: "lane-label", text: label }));
  const toggle = el("button", {
    type: "button",
    class: "toggle",
    text: type === "track" ? (on ? "mask" : "keep") : (on ? "on" : "off"),
    title: type === "track" ? "Mask or keep this track" : "Switch this region on or off",
  });
  toggle.setAttribute("aria-pressed", String(on));
  toggle.addEventListener("click", (event) => {
    event.stopPropagation();
    S.selected = { type, id };
    toggleSelected();
  });
  head.append(toggle);
  row.append(head);
  if (isVideo()) {
    const bar = el("div", { class: "lane-bar" });
    for (const [a, b] of spans) bar.append(spanDiv(a, b, cls));
    for (const f of ticks || []) {
      const tick = el("div", { class: "tick" });
      tick.style.left = `${((f + 0.5) / S.frameCount) * 100}%`;
      bar.append(tick);
    }
    row.append(bar);
  }
  row.addEventListener("click", () => select(type, id, { seekTo: true }));
  row.addEventListener("keydown", (event) => {
    if (event.key === "Enter") select(type, id, { seekTo: true });
  });
  return row;
}

function renderLanes() {
  const rows = [];
  for (const track of S.tracks) {
    if (!S.categories[track.category].visible) continue;
    rows.push(lane({
      type: "track",
      id: track.id,
      label: `#${track.id} ${track.category}${track.method ? ` · ${track.method}` : ""}`,
      thumb: track.thumb,
      on: track.masked,
      spans: track.spans,
      cls: `track ${track.category}`,
    }));
  }
  for (const region of S.regions) {
    const [first, last] = spanOf(region);
    rows.push(lane({
      type: "region",
      id: region.id,
      label: `${region.name} ${region.kind === "zone" ? "zone" : `${region.method} ${region.tracked ? "tracked" : "drawn"}`}`,
      on: region.enabled !== false,
      spans: [[first, last]],
      ticks: region.keyframes.length <= 40 ? region.keyframes.map((k) => k.frame) : [],
      cls: `region ${region.kind}`,
    }));
  }
  if (S.sound.silences.length && !S.sound.remove) rows.push(silenceLane());
  $("lanes").replaceChildren(...rows);
  $("timeline").hidden = rows.length === 0 && !isVideo();
  draw();
}

// --- sound ---------------------------------------------------------------------------------------------

// Spans of the sound to silence (a spoken name, an address), or the whole sound removed: the spec's `audio`.
// Times are seconds on the clock the player shows, as for drawn regions.

function frameStart(frame) {
  // The time a frame starts at, to the hundredth of a second (what a person types).
  return Math.round((frame / S.fps) * 100) / 100;
}

function silenceLane() {
  const row = el("div", { class: "lane silence", "data-type": "silence" });
  const head = el("div", { class: "lane-head" }, el("span", { class: "lane-label", text: "sound silenced" }));
  const bar = el("div", { class: "lane-bar" });
  for (const s of S.sound.silences) {
    const first = Math.floor(s.start * S.fps);
    bar.append(spanDiv(first, Math.max(first, Math.ceil(s.end * S.fps) - 1), "silence"));
  }
  row.append(head, bar);
  return row;
}

function renderSound() {
  $("sound").hidden = !S.sound.available;
  $("video").muted = !$("sound-listen").checked;
  $("sound-remove").checked = S.sound.remove;
  $("silence-fill").value = S.sound.fill;
  for (const id of ["silence-start", "silence-end", "silence-start-here", "silence-end-here", "silence-add", "silence-fill"]) {
    $(id).disabled = S.sound.remove;
  }
  const items = S.sound.silences.map((s) => {
    const remove = el("button", { type: "button", text: "Delete", title: "Keep this span's sound" });
    remove.addEventListener("click", () => {
      S.sound.silences = S.sound.silences.filter((x) => x !== s);
      renderSound();
      renderLanes();
    });
    const go = el("button", { type: "button", text: `${s.start.toFixed(2)}–${s.end.toFixed(2)} s`, title: "Go to its start" });
    go.addEventListener("click", () => seek(Math.round(s.start * S.fps)));
    return el("li", { "data-start": String(s.start), "data-end": String(s.end) }, go, remove);
  });
  $("silences").replaceChildren(...items);
}

function addSilence() {
  const start = Number($("silence-start").value);
  const end = Number($("silence-end").value);
  const length = S.frameCount / S.fps;
  if ($("silence-start").value === "" || $("silence-end").value === "" || !(end > start) || start < 0) {
    say("sound-status", "Give a start and a later end, in seconds.", true);
    return;
  }
  if (start >= length) {
    say("sound-status", `The video ends at ${length.toFixed(2)} s.`, true);
    return;
  }
  S.sound.silences.push({ start, end: Math.min(end, length) });
  S.sound.silences.sort((a, b) => a.start - b.start);
  say("sound-status", "");
  renderSound();
  renderLanes();
}

function renderCategories() {
  const rows = [];
  for (const [name, cat] of Object.entries(S.categories)) {
    const count = S.tracks.filter((t) => t.category === name).length;
    const show = el("input", { type: "checkbox", checked: cat.visible });
    show.addEventListener("change", () => { cat.visible = show.checked; renderLanes(); });
    const all = el("button", { type: "button", text: "Mask all", class: "mask-all" });
    all.addEventListener("click", () => { setAll(name, true); });
    const none = el("button", { type: "button", text: "Keep all", class: "keep-all" });
    none.addEventListener("click", () => { setAll(name, false); });
    const method = el("select", { "aria-label": `${name} method` });
    method.setAttribute("aria-label", `Method for ${name}`);
    for (const m of METHODS) method.append(el("option", { value: m, text: m }));
    method.value = cat.method;
    const strength = el("input", { type: "range", min: 1, max: 100, step: 1, value: cat.strength });
    strength.setAttribute("aria-label", `Strength for ${name}`);
    const value = el("output", { text: strengthText(cat.strength) });
    method.addEventListener("change", () => { cat.method = method.value; strength.disabled = cat.method === "black"; });
    strength.addEventListener("input", () => { cat.strength = Number(strength.value); value.textContent = strengthText(cat.strength); });
    rows.push(el("div", { class: "category", "data-category": name },
      el("label", {}, show, ` ${name} (${count})`), all, none,
      el("div", { class: "category-style" }, method, strength, value)));
  }
  $("categories").replaceChildren(...rows);
}

function setAll(category, masked) {
  for (const t of S.tracks) if (t.category === category) t.masked = masked;
  renderInspector();
  renderLanes();
}

// --- render -------------------------------------------------------------------------------------------

export function buildSpec() {
  const kept = S.tracks.filter((t) => !t.masked).map((t) => t.id);
  const spec = { mode: "redact", source_job: S.job.id };
  if (kept.length) spec.filter = { track_ids: kept, scope: "exclude" };
  const styled = S.tracks.filter((t) => t.masked && (t.method || t.strength));
  if (styled.length) {
    spec.track_styles = styled.map((t) => {
      const style = { track_id: t.id };
      if (t.method) style.method = t.method;
      if (t.strength) style.strength = t.strength;
      return style;
    });
  }
  spec.categories = {};
  for (const [name, cat] of Object.entries(S.categories)) {
    spec.categories[name] = { method: cat.method, strength: cat.strength };
  }
  const on = S.regions.filter((r) => r.enabled !== false);
  spec.tracked_regions = on.filter((r) => r.kind === "mask").map((r) => ({
    keyframes: r.keyframes.map((k) => ({ frame: k.frame, box: k.box })),
    label: r.name,
    method: r.method,
    strength: r.strength,
  }));
  spec.exclusion_zones = on.filter((r) => r.kind === "zone").map((r) => {
    const [first, last] = spanOf(r);
    const zone = { box: r.keyframes[0].box };
    if (isVideo()) {
      zone.start = Math.max(0, (first - 0.5) / S.fps);
      zone.end = (last + 0.5) / S.fps;
    }
    return zone;
  });
  if (S.sound.remove) spec.audio = { remove: true };
  else if (S.sound.silences.length) {
    spec.audio = { mute: S.sound.silences.map((x) => ({ start: x.start, end: x.end })) };
    if (S.sound.fill !== "silence") spec.audio.fill = S.sound.fill;
  }
  if (!isVideo()) spec.output = { format: "png" };
  return spec;
}

async function render() {
  $("render").disabled = true;
  $("download").hidden = true;
  try {
    let job = await submitJob(buildSpec());
    S.renderJob = job.id;
    while (!TERMINAL.includes(job.state)) {
      say("render-status", `${job.id}: ${job.state} ${Math.round(job.progress)} %`);
      await new Promise((resolve) => setTimeout(resolve, 700));
      job = await json(`/v1/jobs/${encodeURIComponent(job.id)}`);
    }
    if (job.state !== "succeeded") throw new Error(`${job.id} ${job.state}: ${job.error ? job.error.message : ""}`);
    const result = await link(job.id, "result");
    S.resultUrl = result.url;
    say("render-status", `${job.id}: done. Showing the redacted result.`);
    const anchor = $("download");
    anchor.href = result.url;
    anchor.download = "";
    anchor.hidden = false;
    $("view-toggle").disabled = false;
    showView("redacted");
  } catch (error) {
    say("render-status", error.message, true);
  } finally {
    $("render").disabled = false;
  }
}

function showView(view) {
  S.view = view;
  const url = view === "redacted" ? S.resultUrl : S.sourceUrl;
  if (isVideo()) {
    const video = $("video");
    const frame = S.frame;
    video.src = url;
    video.addEventListener("loadedmetadata", () => seek(frame), { once: true });
  } else {
    $("still").src = url;
  }
  $("stage").classList.toggle("redacted", view === "redacted");
  draw();
}

// --- opening a job ------------------------------------------------------------------------------------

export async function openJob(jobId) {
  $("stage").dataset.ready = "false";
  const job = await json(`/v1/jobs/${encodeURIComponent(jobId)}`);
  if (job.mode !== "detect") throw new Error("only detect jobs can be reviewed; open its source job");
  if (job.state !== "succeeded") throw new Error(`the job is ${job.state}`);
  const report = await json(`/v1/jobs/${encodeURIComponent(jobId)}/report`);
  const source = await link(jobId, "source");
  const media = report.input;
  S = {
    job,
    report,
    kind: report.kind,
    width: media.width,
    height: media.height,
    fps: media.fps || 30,
    frameCount: Math.max(1, media.frame_count || 1),
    frame: 0,
    tracks: [],
    categories: {},
    regions: [],
    selected: null,
    drawing: false,
    pending: null,
    drag: null,
    view: "original",
    sourceUrl: source.url,
    resultUrl: null,
    sound: { available: report.kind === "video" && (media.audio || []).length > 0, remove: false, silences: [], fill: "silence" },
  };
  regionSeq = 0;
  for (const t of report.tracks) {
    const frames = t.frames.map((f) => f.frame);
    S.tracks.push({
      id: t.id,
      category: t.category,
      byFrame: new Map(t.frames.map((f) => [f.frame, f.box])),
      first: Math.min(...frames),
      last: Math.max(...frames),
      spans: runs(frames),
      masked: true,
      method: null,
      strength: null,
      thumb: el("img", { alt: `track ${t.id}`, class: "thumb" }),
    });
    S.categories[t.category] = S.categories[t.category] || { visible: true, method: "blur", strength: 50 };
  }
  for (const track of S.tracks) {
    thumbnailUrl(jobId, track.id).then((url) => { track.thumb.src = url; }).catch(() => { track.thumb.alt = "no thumbnail"; });
  }
  $("job-title").textContent = `${jobId} · ${S.kind} ${S.width}×${S.height}` +
    (isVideo() ? ` · ${S.frameCount} frames at ${S.fps.toFixed(2)} fps` : "");
  say("job-status", `${S.tracks.length} tracks. Select a box or lane; b draws a box.`);
  $("video").hidden = !isVideo();
  $("still").hidden = isVideo();
  S.video = $("video");
  for (const id of ["controls"]) $(id).hidden = !isVideo();
  $("seek").max = String(S.frameCount - 1);
  $("view-toggle").disabled = true;
  $("download").hidden = true;
  say("render-status", "");
  $("pending").hidden = true;
  $("timeline").classList.toggle("still", !isVideo());
  renderCategories();
  renderInspector();
  renderSound();
  say("sound-status", "");
  $("silence-start").value = "";
  $("silence-end").value = "";
  renderLanes();
  showView("original");
  whenShown(() => { $("stage").dataset.ready = "true"; draw(); });
  const shown = isVideo() ? $("video") : $("still");
  shown.addEventListener("error", () => unplayableSource(jobId, media.container), { once: true });
}

function whenShown(callback) {
  if (isVideo()) $("video").addEventListener("loadeddata", callback, { once: true });
  else $("still").addEventListener("load", callback, { once: true });
}

// A browser plays MP4, MOV and WebM, not the MPEG-TS, AVI or WMV that cameras and DVRs export, and shows no
// HEIC or TIFF still. For those the detect job made a preview (H.264 MP4 with every frame at its own time, or
// a JPEG), which the page shows instead. Without one, the tracks are still there to review and the render is
// a file it can show: the page says so.
async function unplayableSource(jobId, container) {
  if (!S || S.job.id !== jobId || S.view !== "original") return; // a listener left by a job opened before
  const opened = S;
  let preview = null;
  try {
    preview = await link(jobId, "preview");
  } catch (error) {
    preview = null;
  }
  if (S !== opened) return;
  const what = container || "source";
  if (preview) {
    S.sourceUrl = preview.url;
    whenShown(() => { $("stage").dataset.ready = "true"; draw(); });
    showView("original");
    const how = isVideo() ? "plays here as a preview converted for the browser (the same frames)"
      : "shows here as a preview converted for the browser (the same pixels)";
    say("job-status", `${S.tracks.length} tracks. The ${what} file ${how}. Select a box or lane; b draws a box.`);
    return;
  }
  $("stage").dataset.ready = "true";
  say(
    "job-status",
    `This browser cannot ${isVideo() ? "play" : "show"} the source file (${what} container). ` +
      `Its ${S.tracks.length} tracks are listed below: choose what to mask, then Render, and review the ` +
      "redacted file here, which it can show.",
    true,
  );
}

export function closeJob() {
  if (S && isVideo()) $("video").pause();
  S = null;
}

// --- keyboard and wiring ------------------------------------------------------------------------------

function onKey(event) {
  if (!S || $("job-view").hidden) return;
  const tag = event.target.tagName;
  const typing = (tag === "INPUT" && !["checkbox", "range"].includes(event.target.type)) || tag === "SELECT" || tag === "TEXTAREA";
  if (typing) return;
  const step = event.shiftKey ? 10 : 1;
  if (event.key === " ") {
    event.preventDefault();
    togglePlay();
  } else if (event.key === "ArrowRight" && tag !== "INPUT") {
    event.preventDefault();
    seek(S.frame + step);
  } else if (event.key === "ArrowLeft" && tag !== "INPUT") {
    event.preventDefault();
    seek(S.frame - step);
  } else if (event.key === "m") {
    toggleSelected();
  } else if (event.key === "b") {
    startDrawing();
  } else if (event.key === "Delete" || event.key === "Backspace") {
    deleteSelected();
  } else if (event.key === "Escape") {
    S.drawing = false;
    S.drag = null;
    closePending();
  }
}

export function setupEditor() {
  $("sel-method").append(el("option", { value: "", text: "as category" }));
  for (const m of METHODS) $("sel-method").append(el("option", { value: m, text: m }));
  setupOverlay();
  followPlayback();
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", () => draw());
  $("play").addEventListener("click", togglePlay);
  $("prev").addEventListener("click", () => seek(S.frame - 1));
  $("next").addEventListener("click", () => seek(S.frame + 1));
  $("seek").addEventListener("input", () => seek(Number($("seek").value)));
  $("draw").addEventListener("click", startDrawing);
  $("pending-frame").addEventListener("click", pendingThisFrame);
  $("pending-until").addEventListener("click", pendingUntil);
  $("pending-track").addEventListener("click", pendingTrack);
  $("pending-cancel").addEventListener("click", closePending);
  $("pending-kind").addEventListener("change", () => {
    $("pending-track").disabled = !isVideo() || $("pending-kind").value === "zone";
  });
  $("sel-mask").addEventListener("click", toggleSelected);
  $("sel-delete").addEventListener("click", deleteSelected);
  $("sel-start").addEventListener("click", () => trim("start"));
  $("sel-end").addEventListener("click", () => trim("end"));
  $("sel-method").addEventListener("change", () => {
    const region = selectedItem();
    region.method = $("sel-method").value || null;
    renderInspector();
    renderLanes();
  });
  $("sel-strength").addEventListener("input", () => {
    const region = selectedItem();
    region.strength = Number($("sel-strength").value);
    $("sel-strength-value").textContent = strengthText(region.strength);
  });
  $("sound-listen").addEventListener("change", () => { $("video").muted = !$("sound-listen").checked; });
  $("sound-remove").addEventListener("change", () => {
    S.sound.remove = $("sound-remove").checked;
    renderSound();
    renderLanes();
  });
  $("silence-start-here").addEventListener("click", () => { $("silence-start").value = String(frameStart(S.frame)); });
  $("silence-end-here").addEventListener("click", () => { $("silence-end").value = String(frameStart(S.frame)); });
  $("silence-add").addEventListener("click", addSilence);
  $("silence-fill").addEventListener("change", () => { S.sound.fill = $("silence-fill").value; });
  $("render").addEventListener("click", render);
  $("view-toggle").addEventListener("change", () => showView($("view-toggle").checked ? "redacted" : "original"));
  window.veilEditor = { state: () => S, buildSpec, seek };
}
