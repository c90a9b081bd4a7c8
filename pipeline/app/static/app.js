// avzsl-app page: sends videos and class names to /api/predict and draws what comes back.
// Everything shown is built with textContent (never innerHTML), so names and messages are never markup.
"use strict";

const COLORS = ["31, 111, 181", "217, 116, 26", "46, 155, 79"];  // rgb of the 1st, 2nd, 3rd class
const STRIP_CLASSES = 3;
let chosenFiles = [];
let models = [];

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  if (text !== null) node.textContent = text;
  return node;
}

function fmt(value, digits = 3) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function listChosen() {
  const list = document.getElementById("chosen");
  list.replaceChildren(...chosenFiles.map((f) => el("li", {}, `${f.name} (${(f.size / 1048576).toFixed(1)} MiB)`)));
}

async function loadInfo() {
  const info = await getJSON("/api/info");
  models = info.models;
  document.getElementById("version").textContent = info.version;
  const modelSelect = document.getElementById("model");
  for (const m of info.models) {
    const label = m.kind === "run" ? `run: ${m.name}` : m.name;
    modelSelect.append(el("option", { value: m.name }, m.random_weights ? `${label} (random weights)` : label));
  }
  const ready = document.getElementById("ready");
  for (const name of info.lists) ready.append(el("option", { value: name }, name));
  document.getElementById("limits").textContent =
    `Up to ${info.max_files} videos per request, ${(info.max_upload_bytes / 1048576).toFixed(0)} MiB per file.`;
  if (info.videos_root) {
    const body = await getJSON("/api/videos");
    const select = document.getElementById("folder-videos");
    select.replaceChildren(...body.videos.map((v) => el("option", { value: v }, v)));
    document.getElementById("browse").hidden = false;
  }
}

async function pickReadyList(event) {
  if (!event.target.value) return;
  try {
    const body = await getJSON(`/api/lists?name=${encodeURIComponent(event.target.value)}`);
    document.getElementById("classes").value = body.classes.join("\n");
  } catch (err) {
    showError(String(err.message || err));
  }
}

function filterFolder(event) {
  const needle = event.target.value.toLowerCase();
  for (const option of document.getElementById("folder-videos").options) {
    option.hidden = needle !== "" && !option.value.toLowerCase().includes(needle);
  }
}

function rankedTable(entry, branches) {
  const table = el("table", { class: "ranked" });
  const head = el("tr");
  const saw = branches === "cosine" ? "saw (CLIP cos)" : "saw (visual p)";
  const heard = branches === "cosine" ? "heard (CLAP cos)" : "heard (audio p)";
  for (const title of ["#", "class", "", "p", "score", saw, heard]) head.append(el("th", {}, title));
  table.append(head);
  entry.predictions.forEach((r, i) => {
    const row = el("tr", {
      class: "ranked-row", "data-class": r.class, "data-p": r.p, "data-score": r.score,
      "data-visual": r.visual ?? "", "data-audio": r.audio ?? "", "data-seen": r.seen,
    });
    row.append(el("td", {}, String(i + 1)), el("td", { class: "name" }, r.class));
    row.append(badgeCell(r.seen));
    const bar = el("td", { class: "bar" });
    const fill = el("span", { class: "fill" });
    fill.style.width = `calc((100% - 4em) * ${Math.max(0, Math.min(1, r.p))})`;
    bar.append(el("span", { class: "value" }, fmt(r.p)), fill);
    row.append(bar, el("td", {}, fmt(r.score)), el("td", { class: "saw" }, fmt(r.visual)),
      el("td", { class: "heard" }, fmt(r.audio)));
    table.append(row);
  });
  return table;
}

function badgeCell(seen) {
  const cell = el("td");
  cell.append(el("span", { class: seen ? "badge seen" : "badge unseen" }, seen ? "seen" : "unseen"));
  return cell;
}

function windowStrip(entry, video) {
  const windows = entry.window_support || [];
  const box = el("div", { class: "strip", "data-windows": String(windows.length) });
  if (!windows.length) {
    box.append(el("p", { class: "hint" }, "No per-second windows for this video."));
    return box;
  }
  box.append(el("p", { class: "hint" },
    "Each second alone: how strongly it supports each class (darker = higher p); a ring marks the class " +
    "that second ranks first. Click a second to play from there."));
  const grid = el("div", { class: "grid" });
  grid.style.gridTemplateColumns = `9em repeat(${windows.length}, minmax(1.2em, 1fr))`;
  grid.append(el("span", { class: "label" }, "second"));
  windows.forEach((w) => grid.append(el("span", { class: "tick" }, String(Math.floor(w.start)))));
  entry.predictions.slice(0, STRIP_CLASSES).forEach((r, k) => {
    const label = el("span", { class: "label" }, r.class);
    label.style.color = `rgb(${COLORS[k]})`;  // CSSOM, not a style attribute: the page's CSP allows no inline style
    grid.append(label);
    windows.forEach((w, t) => {
      const p = w.p[r.class] ?? 0;
      const cell = el("span", {
        class: w.top === r.class ? "cell first" : "cell", "data-second": String(t), "data-class": r.class,
        "data-p": String(p), "data-top": w.top, title: `${fmt(w.start, 1)}–${fmt(w.end, 1)} s: p ${fmt(p)}`,
      });
      cell.style.backgroundColor = `rgba(${COLORS[k]}, ${0.08 + 0.92 * Math.max(0, Math.min(1, p))})`;
      cell.addEventListener("click", () => { if (video) { video.currentTime = w.start; video.play(); } });
      grid.append(cell);
    });
  });
  grid.append(el("span", { class: "label" }, "first class"));
  windows.forEach((w) => grid.append(el("span", { class: "top-name", title: w.top }, w.top)));
  box.append(grid);
  return box;
}

function branchNote(branches) {
  if (branches === "softmax") {
    return "saw / heard: the visual and audio branch distributions p_v and p_a (eq. 3-4), fused into p (eq. 6).";
  }
  if (branches === "cosine") return "saw / heard: the CLIP image-text and CLAP audio-text cosines.";
  return "This model has no separate visual and audio branch scores.";
}

function videoCard(info, entry, gamma) {
  const card = el("article", { class: "video-card", "data-key": info.key });
  card.append(el("h3", {}, info.key));
  const body = el("div", { class: "card-body" });
  let video = null;
  const source = info.source === "upload" ? chosenFiles[info.index] : null;
  if ((source || info.media) && entry.status !== "refused") {
    video = el("video", { controls: "", preload: "metadata" });
    video.src = source ? URL.createObjectURL(source) : info.media;
    body.append(video);
  }
  const details = el("div", { class: "details" });
  if (entry.error) {
    details.append(el("p", { class: "error video-error" }, entry.error));
  } else {
    details.append(el("p", { class: "hint" }, `${entry.windows} one-second window${entry.windows === 1 ? "" : "s"}`));
    details.append(rankedTable(entry, entry.branches));
    if (gamma !== null) {
      details.append(el("p", { class: "hint" },
        `Ranked by score: log p, minus ${fmt(gamma)} for seen classes (calibrated stacking).`));
    }
    details.append(el("p", { class: "hint" }, branchNote(entry.branches)));
    details.append(windowStrip(entry, video));
  }
  body.append(details);
  card.append(body);
  return card;
}

function batchTable(answer) {
  const table = document.getElementById("batch-table");
  const head = el("tr");
  for (const title of ["video", "1st", "2nd", "3rd", "error"]) head.append(el("th", {}, title));
  const rows = [head];
  for (const info of answer.videos) {
    const entry = answer.document[info.key];
    const row = el("tr", { class: "batch-row", "data-key": info.key });
    row.append(el("td", {}, info.key));
    for (let k = 0; k < 3; k++) {
      const r = entry.predictions && entry.predictions[k];
      row.append(el("td", {}, r ? `${r.class} ${fmt(r.p, 2)}` : ""));
    }
    row.append(el("td", { class: "error" }, entry.error || ""));
    rows.push(row);
  }
  table.replaceChildren(...rows);
  const link = (id, text, type) => {
    const a = document.getElementById(id);
    if (a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(new Blob([text], { type }));
  };
  link("csv", answer.csv, "text/csv");
  link("json", `${JSON.stringify(answer.document, null, 2)}\n`, "application/json");
  document.getElementById("batch").hidden = false;
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const form = new FormData();
  form.append("model", document.getElementById("model").value);
  form.append("classes", document.getElementById("classes").value);
  form.append("top", document.getElementById("top").value);
  for (const file of chosenFiles) form.append("files", file, file.name);
  for (const option of document.getElementById("folder-videos").selectedOptions) form.append("paths", option.value);
  const status = document.getElementById("status");
  const button = document.getElementById("submit");
  status.textContent = "Labelling…";
  button.disabled = true;
  try {
    const response = await fetch("/api/predict", { method: "POST", body: form });
    const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok) throw new Error(answer.error || response.statusText);
    const results = document.getElementById("results");
    results.replaceChildren(...answer.videos.map((info) => videoCard(info, answer.document[info.key], answer.gamma)));
    batchTable(answer);
    const calibration = answer.gamma === null ? "" : `, seen classes calibrated by ${fmt(answer.gamma)}`;
    status.textContent = `${answer.videos.length} video(s) with ${answer.model.name} in ` +
      `${fmt(answer.seconds, 1)} s${calibration}.`;
  } catch (err) {
    status.textContent = "";
    showError(String(err.message || err));
  } finally {
    button.disabled = false;
  }
}

function setUp() {
  const input = document.getElementById("files");
  input.addEventListener("change", () => { chosenFiles = Array.from(input.files); listChosen(); });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chosenFiles = chosenFiles.concat(Array.from(e.dataTransfer.files));
    listChosen();
  });
  document.getElementById("clear-files").addEventListener("click", () => {
    chosenFiles = [];
    input.value = "";
    listChosen();
  });
  document.getElementById("ready").addEventListener("change", pickReadyList);
  document.getElementById("folder-filter").addEventListener("input", filterFolder);
  document.getElementById("form").addEventListener("submit", submit);
  loadInfo().catch((err) => showError(`could not load the server's models: ${err.message || err}`));
}

document.addEventListener("DOMContentLoaded", setUp);
