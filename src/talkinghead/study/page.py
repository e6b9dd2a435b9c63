"""The study page: one HTML file with its script, the same for the served study and the static folder.

The page never learns which image is the fake, nor the method (images have opaque names: triplet id and slot).
Its session id is 32 random hex digits kept in the browser's localStorage, so a reload continues the same session
where it stopped. Each rater gets their own triplets, order and positions of the fake (`triplets.rater_plan`); an
answer names the image slot clicked, not the position on screen.
Served: ``api/state?session=`` gives the session's plan and what it answered; each answer is POSTed to
``api/answer`` and only then does the next triplet show (a failed save keeps the triplet on screen and says so).
Static (a file URL, no server to ask): the page carries `STATIC_PLANS` plans' triplets; a new session draws one at
random and shuffles its order and positions itself (crypto.getRandomValues), keeping the result in localStorage.
Answers are kept there too, and the page offers them as a JSON-lines download for ``--results``.
"""

from __future__ import annotations

import json

from talkinghead.study.triplets import Study, rater_plan

SERVED, STATIC = "served", "static"
IMAGE_URLS = {SERVED: "image/{triplet}/{slot}", STATIC: "images/{triplet}_{slot}.png"}
STATIC_PLANS = 50
"""Plans (sets of triplets within the real-frame limit) a static page draws a rater's from."""


def page_config(study: Study, mode: str) -> dict:
    """What the page's script gets: the study id, the image URL pattern and, static, the plans' triplet ids (no
    answer: a plan is a set of triplets, with no position of any fake)."""
    if mode not in (SERVED, STATIC):
        raise ValueError(f"page mode must be {SERVED!r} or {STATIC!r}, got {mode!r}")
    config: dict = {"mode": mode, "study": study.id, "image_url": IMAGE_URLS[mode]}
    if mode == STATIC:
        config["plans"] = [sorted(shown.triplet for shown in rater_plan(study, f"static-{k}"))
                           for k in range(STATIC_PLANS)]
    return config


def image_url(triplet: str, slot: int, mode: str) -> str:
    return IMAGE_URLS[mode].format(triplet=triplet, slot=slot)


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
  <button class="choice" data-position="0" data-slot=""><img alt="picture 1"></button>
  <button class="choice" data-position="1" data-slot=""><img alt="picture 2"></button>
  <button class="choice" data-position="2" data-slot=""><img alt="picture 3"></button>
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
let plan = [], current = -1, shownAt = 0, busy = false, answered = new Set();

function randomIndex(n) {
  const value = new Uint32Array(1);
  crypto.getRandomValues(value);
  return value[0] % n;
}
function shuffled(items) {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) { const j = randomIndex(i + 1); [out[i], out[j]] = [out[j], out[i]]; }
  return out;
}
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
function imageUrl(triplet, slot) { return CONFIG.image_url.replace("{triplet}", triplet).replace("{slot}", slot); }

// Static: this session's plan, drawn once (one of the study's plans, in an order and with positions of its own).
function staticPlan() {
  const key = PREFIX + "-plan-" + session();
  if (!localStorage.getItem(key)) {
    const ids = CONFIG.plans[randomIndex(CONFIG.plans.length)];
    localStorage.setItem(key, JSON.stringify(shuffled(ids).map(id => ({id: id, slots: shuffled([0, 1, 2])}))));
  }
  return JSON.parse(localStorage.getItem(key));
}

async function loadState() {
  if (CONFIG.mode === "static") {
    return {plan: staticPlan(), answered: storedAnswers().filter(a => a.session === session()).map(a => a.triplet)};
  }
  const response = await fetch("api/state?session=" + encodeURIComponent(session()), {cache: "no-store"});
  if (!response.ok) throw new Error("state: HTTP " + response.status);
  return await response.json();
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
  current = plan.findIndex(t => !answered.has(t.id));
  const box = document.getElementById("triplet");
  if (current < 0) {
    box.style.display = "none";
    box.dataset.triplet = "";
    document.getElementById("done").style.display = "block";
    document.getElementById("progress").textContent = answered.size + " of " + plan.length + " answered";
    return;
  }
  const triplet = plan[current];
  const buttons = Array.from(document.querySelectorAll("button.choice"));
  let loaded = 0;
  busy = true;
  box.dataset.triplet = "";
  buttons.forEach((button, position) => {
    const img = button.querySelector("img");
    img.onload = img.onerror = () => {
      if (++loaded === 3) { shownAt = performance.now(); busy = false; box.dataset.triplet = triplet.id; }
    };
    button.dataset.slot = triplet.slots[position];
    img.src = imageUrl(triplet.id, triplet.slots[position]);
  });
  document.getElementById("progress").textContent = "Set " + (answered.size + 1) + " of " + plan.length;
}

async function choose(position) {
  if (busy || current < 0) return;
  busy = true;
  const triplet = plan[current];
  const answer = {study: CONFIG.study, session: session(), triplet: triplet.id, choice: triplet.slots[position],
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
  button.addEventListener("click", () => choose(Number(button.dataset.position))));
document.addEventListener("keydown", event => {
  if (["1", "2", "3"].includes(event.key)) choose(Number(event.key) - 1);
});
document.getElementById("new-session").addEventListener("click", event => {
  event.preventDefault();
  localStorage.removeItem(PREFIX + "-session");
  location.reload();
});
if (CONFIG.mode === "static") { document.getElementById("static-tools").hidden = false; updateDownload(); }
loadState().then(state => {
  plan = state.plan;
  answered = new Set(state.answered.filter(id => plan.some(t => t.id === id)));
  show();
}).catch(error => {
  document.getElementById("status").textContent = "Cannot load the study (" + error.message + "); reload the page.";
});
</script>
</body>
</html>
"""
