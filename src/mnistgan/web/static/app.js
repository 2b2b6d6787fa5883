// mnistgan's pages: the epoch slider, following a training run, forging, and the police
// officer's drawing pad. No framework, no network beyond this server.
"use strict";

function setupSlider(root) {
  const slider = root.querySelector("#epoch");
  const sources = root.querySelector("#grid-sources");
  if (!slider || !sources) return;
  const list = JSON.parse(sources.textContent);
  const show = () => {
    const [epoch, src] = list[Number(slider.value)];
    root.querySelector("#grid").src = src;
    root.querySelector("#grid-epoch").textContent = epoch;
  };
  slider.addEventListener("input", show);
}

function follow(section) {
  // While the page is open, a run that gains an epoch is shown without a reload.
  const run = section.dataset.run;
  let known = Number(section.dataset.epochs);
  const tick = async () => {
    try {
      const status = await (await fetch(`/api/runs/${encodeURIComponent(run)}/status`)).json();
      if (status.epochs !== known) {
        const html = await (await fetch(`/runs/${encodeURIComponent(run)}/fragment`)).text();
        const holder = document.createElement("div");
        holder.innerHTML = html;
        const fresh = holder.querySelector("section.story");
        section.replaceWith(fresh);
        section = fresh;
        known = status.epochs;
        setupSlider(section);
      }
    } catch (e) { /* the server may be restarting: try again on the next tick */ }
    setTimeout(tick, 1500);
  };
  setTimeout(tick, 1500);
}

function setupForge(section) {
  const run = encodeURIComponent(section.dataset.run);
  const form = section.querySelector("#forge-form");
  const error = section.querySelector("#forge-error");
  const query = () => {
    const p = new URLSearchParams({n: section.querySelector("#n").value, seed: section.querySelector("#seed").value});
    const digit = section.querySelector("#digit");
    if (digit && digit.value !== "") p.set("digit", digit.value);
    return p;
  };
  const forge = async (event) => {
    if (event) event.preventDefault();
    error.textContent = "";
    const p = query();
    const response = await fetch(`/api/runs/${run}/forge?${p}`);
    if (!response.ok) { error.textContent = (await response.json()).error; return; }
    const img = section.querySelector("#forged");
    img.src = URL.createObjectURL(await response.blob());
    img.dataset.query = p.toString();
    section.querySelector("#download-png").href = `/api/runs/${run}/forge?${p}`;
    p.set("format", "npy");
    section.querySelector("#download-npy").href = `/api/runs/${run}/forge?${p}`;
  };
  const image = async (url, target) => {
    const response = await fetch(url);
    if (!response.ok) { error.textContent = (await response.json()).error; return; }
    const img = section.querySelector(target);
    img.src = URL.createObjectURL(await response.blob());
    img.dataset.url = url;
  };
  const walkQuery = () => {
    const p = new URLSearchParams({seed: section.querySelector("#seed").value});
    const digit = section.querySelector("#digit");
    if (digit && digit.value !== "") p.set("digit", digit.value);
    return p;
  };
  const walk = () => {
    const p = walkQuery();
    p.set("steps", section.querySelector("#steps").value);
    return image(`/api/runs/${run}/walk?${p}`, "#walk");
  };
  const between = () => {
    const p = walkQuery();
    p.set("t", (Number(section.querySelector("#t").value) / 100).toString());
    return image(`/api/runs/${run}/walk?${p}`, "#between");
  };
  form.addEventListener("submit", (e) => { forge(e); walk(); between(); });
  section.querySelector("#steps").addEventListener("change", walk);
  section.querySelector("#t").addEventListener("input", between);
  forge();
  walk();
  between();
}

function setupPolice(section) {
  const run = encodeURIComponent(section.dataset.run);
  const pad = section.querySelector("#pad");
  const ctx = pad.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height); };
  clear();
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.lineJoin = "round";
  let drawing = false;
  const at = (e) => { const r = pad.getBoundingClientRect(); return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height]; };
  pad.addEventListener("pointerdown", (e) => { drawing = true; pad.setPointerCapture(e.pointerId); ctx.beginPath(); ctx.moveTo(...at(e)); });
  pad.addEventListener("pointermove", (e) => { if (drawing) { ctx.lineTo(...at(e)); ctx.stroke(); } });
  pad.addEventListener("pointerup", () => { drawing = false; });
  const error = section.querySelector("#police-error");
  const send = async (blob) => {
    error.textContent = "";
    const response = await fetch(`/api/runs/${run}/verdict`, {method: "POST", headers: {"Content-Type": blob.type}, body: blob});
    const answer = await response.json();
    if (!response.ok) { error.textContent = answer.error; return; }
    const real = answer.real_probability !== null
      ? `looks real with probability ${(100 * answer.real_probability).toFixed(1)}%`
      : `critic score ${answer.critic_score.toFixed(3)} (higher: more real)`;
    const guess = answer.classifier
      ? `; the classifier reads it as ${answer.classifier.class} (${(100 * answer.classifier.probability).toFixed(1)}%)`
      : `; no classifier: ${answer.classifier_error}`;
    section.querySelector("#verdict").textContent = `The police officer: it ${real}${guess}.`;
  };
  section.querySelector("#judge").addEventListener("click", () => pad.toBlob(send, "image/png"));
  section.querySelector("#clear").addEventListener("click", () => { clear(); section.querySelector("#verdict").textContent = ""; });
  section.querySelector("#upload").addEventListener("change", (e) => { if (e.target.files[0]) send(e.target.files[0]); });
  pad.addEventListener("dragover", (e) => e.preventDefault());
  pad.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]); });
}

document.addEventListener("DOMContentLoaded", () => {
  const story = document.querySelector("section.story");
  if (story) { setupSlider(story); if (story.dataset.live === "1") follow(story); }
  const forge = document.querySelector("section.forge");
  if (forge) setupForge(forge);
  const police = document.querySelector("section.police");
  if (police) setupPolice(police);
});
