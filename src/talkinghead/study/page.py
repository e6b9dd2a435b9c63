"""The study page: one HTML file with its script, the same for the served study and the static folder.

The page never learns which image is the fake, nor the method (images have opaque names). Its session id is 32
random hex digits kept in the browser's localStorage, so a reload continues the same session where it stopped.
Served: each answer is POSTed to ``api/answer`` and only then does the next triplet show (a failed save keeps the
triplet on screen and says so); ``api/state?session=`` tells a reloaded page what it answered. Static (a file
URL): answers are kept in localStorage and the page offers them as a JSON-lines download for ``--results``.
"""

from __future__ import annotations

import json

from talkinghead.study.triplets import Study

SERVED, STATIC = "served", "static"


def page_config(study: Study, mode: str) -> dict:
    """What the page's script gets: the study id and, per triplet, its id and three image URLs (no answer)."""
    if mode not in (SERVED, STATIC):
        raise ValueError(f"page mode must be {SERVED!r} or {STATIC!r}, got {mode!r}")
    return {"mode": mode, "study": study.id,
            "triplets": [{"id": t.id, "images": [image_url(t.id, slot, mode) for slot in range(3)]}
                         for t in study.triplets]}


def image_url(triplet: str, slot: int, mode: str) -> str:
    return f"image/{triplet}/{slot}" if mode == SERVED else f"images/{triplet}_{slot}.png"


def render_page(study: Study, mode: str) -> str:
    config = json.dumps(page_config(study, mode)).replace("</", "<\\/")
    return _TEMPLATE.replace("__CONFIG__", config)


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Which picture is generated?</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5rem; background: #fafafa; color: #222; }
 #images { display: flex; gap: 1rem; margin: 1rem 0; }
 button.choice { border: 3px solid #ccc; padding: 0; background: #fff; cursor: pointer; }
 button.choice:hover, button.choice:focus { border-color: #1f77b4; }
 button.choice img { display: block; width: 256px; height: 256px; image-rendering: auto; }
 #status { min-height: 1.5em; color: #b00; }
 #done { display: none; }
</style>
</head>
<body>
<h1>Which picture is generated?</h1>
<p>Each set shows three pictures of the same person. Two are real video frames; one was made by a computer.
Click the one you think is generated (or press 1, 2 or 3). There is no time limit; your answer is saved at once.</p>
<p id="progress"></p>
<div id="triplet" data-triplet="">
 <div id="images">
  <button class="choice" data-slot="0"><img alt="picture 1"></button>
  <button class="choice" data-slot="1"><img alt="picture 2"></button>
  <button class="choice" data-slot="2"><img alt="picture 3"></button>
 </div>
</div>
<p id="status"></p>
<div id="done"><p>Thank you: every set is answered.</p></div>
<p id="static-tools" hidden>Answers are kept in this browser (localStorage).
 <a id="download" href="#" download="answers.jsonl">Download the answers (JSON lines)</a> and give the file to
 whoever runs the study (<code>talkinghead study ... --results --answers answers.jsonl</code>).</p>
<p><a id="new-session" href="#">I am someone else: start a new session</a></p>
<script>
"use strict";
const CONFIG = __CONFIG__;
const PREFIX = "talkinghead-study-" + CONFIG.study;
let current = -1, shownAt = 0, busy = false, answered = new Set();

function randomSession() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
}
function session() {
  let id = localStorage.getItem(PREFIX + "-session");
  if (!id) { id = randomSession(); localStorage.setItem(PREFIX + "-session", id); }
  return id;
}
function storedAnswers() { return JSON.parse(localStorage.getItem(PREFIX + "-answers") || "[]"); }

async function loadAnswered() {
  if (CONFIG.mode === "static") {
    return storedAnswers().filter(a => a.session === session()).map(a => a.triplet);
  }
  const response = await fetch("api/state?session=" + encodeURIComponent(session()), {cache: "no-store"});
  if (!response.ok) throw new Error("state: HTTP " + response.status);
  return (await response.json()).answered;
}

async function save(answer) {
  if (CONFIG.mode === "static") {
    const all = storedAnswers();
    all.push(answer);
    localStorage.setItem(PREFIX + "-answers", JSON.stringify(all));
    updateDownload();
    return;
  }
  const response = await fetch("api/answer", {method: "POST", headers: {"Content-Type": "application/json"},
                                              body: JSON.stringify(answer)});
  if (!response.ok) throw new Error("HTTP " + response.status + ": " + await response.text());
}

function updateDownload() {
  const lines = storedAnswers().map(a => JSON.stringify(a)).join("\\n") + "\\n";
  document.getElementById("download").href = URL.createObjectURL(new Blob([lines], {type: "application/x-ndjson"}));
}

function show() {
  current = CONFIG.triplets.findIndex(t => !answered.has(t.id));
  const box = document.getElementById("triplet");
  if (current < 0) {
    box.style.display = "none";
    box.dataset.triplet = "";
    document.getElementById("done").style.display = "block";
    document.getElementById("progress").textContent = answered.size + " of " + CONFIG.triplets.length + " answered";
    return;
  }
  const triplet = CONFIG.triplets[current];
  const images = Array.from(document.querySelectorAll("button.choice img"));
  let loaded = 0;
  busy = true;
  box.dataset.triplet = "";
  images.forEach((img, slot) => {
    img.onload = img.onerror = () => {
      if (++loaded === 3) { shownAt = performance.now(); busy = false; box.dataset.triplet = triplet.id; }
    };
    img.src = triplet.images[slot];
  });
  document.getElementById("progress").textContent =
    "Set " + (answered.size + 1) + " of " + CONFIG.triplets.length;
}

async function choose(slot) {
  if (busy || current < 0) return;
  busy = true;
  const triplet = CONFIG.triplets[current];
  const answer = {study: CONFIG.study, session: session(), triplet: triplet.id, choice: slot,
                  seconds: (performance.now() - shownAt) / 1000, answered_at: new Date().toISOString()};
  try {
    await save(answer);
    document.getElementById("status").textContent = "";
    answered.add(triplet.id);
    show();
  } catch (error) {
    document.getElementById("status").textContent = "Your answer was not saved (" + error.message + "); try again.";
    busy = false;
  }
}

document.querySelectorAll("button.choice").forEach(button =>
  button.addEventListener("click", () => choose(Number(button.dataset.slot))));
document.addEventListener("keydown", event => {
  if (["1", "2", "3"].includes(event.key)) choose(Number(event.key) - 1);
});
document.getElementById("new-session").addEventListener("click", event => {
  event.preventDefault();
  localStorage.removeItem(PREFIX + "-session");
  location.reload();
});
if (CONFIG.mode === "static") { document.getElementById("static-tools").hidden = false; updateDownload(); }
loadAnswered().then(ids => { answered = new Set(ids); show(); }).catch(error => {
  document.getElementById("status").textContent = "Cannot load the study (" + error.message + "); reload the page.";
});
</script>
</body>
</html>
"""
