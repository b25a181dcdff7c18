// encoderlab web page: plain JS over the JSON API (no build step).
"use strict";

const $ = (id) => document.getElementById(id);
const pct = (p) => (100 * p).toFixed(1) + "%";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function showError(box, message) {
  box.textContent = message;
  box.hidden = !message;
}

async function postJSON(url, body) {
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : res.statusText;
    throw new Error(`${res.status}: ${detail}`);
  }
  return data;
}

// Highlight the answers of one question in the context. Offsets are Python (code point) indices,
// so the context is split into code points first; the best-ranked answer wins where spans overlap.
function highlight(context, answers) {
  const chars = Array.from(context);
  const rank = new Array(chars.length).fill(0);
  answers.forEach((a, i) => {
    for (let p = a.start; p < a.end && p < chars.length; p++) if (!rank[p]) rank[p] = i + 1;
  });
  const view = $("highlighted");
  view.replaceChildren();
  let i = 0;
  while (i < chars.length) {
    let j = i;
    while (j < chars.length && rank[j] === rank[i]) j++;
    const text = chars.slice(i, j).join("");
    if (rank[i]) {
      const a = answers[rank[i] - 1];
      view.append(el("mark", { class: rank[i] <= 3 ? `rank-${rank[i]}` : "rank-n", title: `#${rank[i]} · ${pct(a.score)}` }, text));
    } else {
      view.append(text);
    }
    i = j;
  }
  view.hidden = false;
  $("highlight-title").hidden = false;
}

function renderAnswers(context, data) {
  const box = $("qa-results");
  box.replaceChildren();
  const blocks = data.results.map((r) => {
    const list = el("ol");
    r.answers.forEach((a) => list.append(el("li", { class: "answer" }, el("span", { class: "answer-text" }, a.text),
      " ", el("span", { class: "conf" }, `(${pct(a.score)}, chars ${a.start}–${a.end})`))));
    const block = el("div", { class: "question" }, el("h4", {}, "Q: " + r.question), list);
    if (!r.answerable) block.append(el("div", { class: "noans" }, "The model thinks this question has no answer in the context."));
    if (r.no_answer_score !== null) block.append(el("div", { class: "conf" }, `no-answer probability: ${(100 * r.no_answer_score).toFixed(1)}%`));
    block.addEventListener("click", () => select(block, r));
    box.append(block);
    return [block, r];
  });
  function select(block, r) {
    blocks.forEach(([b]) => b.classList.remove("selected"));
    block.classList.add("selected");
    highlight(context, r.answers);
  }
  if (blocks.length) select(...blocks[0]);
}

async function ask(event) {
  event.preventDefault();
  const context = $("context").value;
  const questions = $("questions").value.split("\n").map((q) => q.trim()).filter(Boolean);
  showError($("qa-error"), "");
  $("ask").disabled = true;
  try {
    const data = await postJSON("/v1/answer", { model: $("qa-model").value, context, questions, top_k: Number($("top-k").value) });
    renderAnswers(context, data);
  } catch (e) {
    showError($("qa-error"), e.message);
  } finally {
    $("ask").disabled = false;
  }
}

async function classify(event) {
  event.preventDefault();
  const lines = (id) => $(id).value.split("\n").map((t) => t.trim()).filter(Boolean);
  const texts = lines("texts");
  const body = { model: $("cls-model").value, texts };
  if (!$("pairs-block").hidden) body.text_pairs = lines("pairs");
  showError($("cls-error"), "");
  $("classify").disabled = true;
  try {
    const data = await postJSON("/v1/classify", body);
    const rows = $("cls-results").querySelector("tbody");
    rows.replaceChildren();
    data.results.forEach((r, i) => {
      const probs = Object.entries(r.probabilities).map(([k, v]) => `${k} ${pct(v)}`).join(", ");
      const shown = body.text_pairs ? `${texts[i]} ‖ ${body.text_pairs[i]}` : texts[i];
      rows.append(el("tr", {}, el("td", {}, shown), el("td", { class: "label" }, r.label), el("td", {}, pct(r.score)), el("td", {}, probs)));
    });
    $("cls-results").hidden = false;
  } catch (e) {
    showError($("cls-error"), e.message);
  } finally {
    $("classify").disabled = false;
  }
}

async function init() {
  try {
    const res = await fetch("/v1/models");
    const data = await res.json();
    const byTask = { qa: [], classify: [] };
    data.models.forEach((m) => byTask[m.task] && byTask[m.task].push(m));
    for (const [task, select, section] of [["qa", "qa-model", "qa-section"], ["classify", "cls-model", "cls-section"]]) {
      byTask[task].forEach((m) => $(select).append(el("option", { value: m.name }, `${m.name} (${m.backend})`)));
      $(section).hidden = byTask[task].length === 0;
    }
    const pairModels = new Set(byTask.classify.filter((m) => m.text_pairs).map((m) => m.name));
    const showPairs = () => { $("pairs-block").hidden = !pairModels.has($("cls-model").value); };
    $("cls-model").addEventListener("change", showPairs);
    showPairs();
    $("top-k").max = data.limits.max_top_k;
    $("models-status").textContent = data.models.map((m) => `${m.name}: ${m.task}`).join(" · ");
  } catch (e) {
    $("models-status").textContent = "cannot list the models: " + e.message;
  }
  $("qa-form").addEventListener("submit", ask);
  $("cls-form").addEventListener("submit", classify);
}

init();
