// The page: translate as the user types, show the beam's best outputs and the attention of the
// line the caret is on. Everything comes from this server's own API (GET /models, POST /translate).
"use strict";

const DEBOUNCE_MS = 250;
const MAX_ALTERNATIVES = 4;

const $ = (id) => document.getElementById(id);
const ui = {
  pair: $("pair"), beam: $("beam"), status: $("status"), error: $("error"), source: $("source"),
  output: $("output"), outputTitle: $("output-title"), sourceTitle: $("source-title"), details: $("details"),
  nbest: $("nbest"), whichLine: $("which-line"), noAttention: $("no-attention"), strips: $("strips"),
  sourcePieces: $("source-pieces"), outputPieces: $("output-pieces"), heatmap: $("heatmap"),
};

let models = [];
let result = null; // {lines, answer, model}: the latest answer shown
let selected = 0; // the line whose details are shown
let timer = null;
let inFlight = null;

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function currentModel() {
  return models[Number(ui.pair.value)];
}

async function loadModels() {
  const response = await fetch("/models");
  models = await response.json();
  ui.pair.replaceChildren(...models.map((m, i) => el("option", {
    value: String(i),
    textContent: m.autoencoder ? `${m.source} ↺ ${m.source} (reconstruction)` : `${m.source} → ${m.target}`,
  })));
  pairChanged();
}

function pairChanged() {
  const model = currentModel();
  ui.outputTitle.textContent = model.autoencoder ? "Reconstruction" : "Translation";
  ui.sourceTitle.textContent = model.autoencoder ? "Input" : "Source";
  translateSoon(0);
}

function translateSoon(delay = DEBOUNCE_MS) {
  clearTimeout(timer);
  timer = setTimeout(translate, delay);
}

async function translate() {
  const lines = ui.source.value.split("\n");
  if (inFlight) inFlight.abort();
  if (!lines.some((line) => line.trim())) {
    result = null;
    render();
    return;
  }
  const model = currentModel();
  const beam = Number(ui.beam.value);
  const body = {
    q: lines, source: model.source, target: model.target, beam,
    alternatives: Math.min(beam - 1, MAX_ALTERNATIVES), attention: model.attention,
  };
  inFlight = new AbortController();
  const started = performance.now();
  ui.status.textContent = "translating…";
  try {
    const response = await fetch("/translate", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body), signal: inFlight.signal,
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    result = {lines, answer, model};
    ui.status.textContent = `${Math.round(performance.now() - started)} ms · beam ${beam}`;
    showError("");
    render();
  } catch (error) {
    if (error.name === "AbortError") return; // a newer request replaced it
    ui.status.textContent = "";
    showError(error.message);
  }
}

function caretLine() {
  return ui.source.value.slice(0, ui.source.selectionStart).split("\n").length - 1;
}

function render() {
  if (!result) {
    ui.output.replaceChildren();
    ui.details.hidden = true;
    return;
  }
  const {lines, answer, model} = result;
  ui.output.replaceChildren(...answer.translatedText.map((text, i) => {
    const line = el("div", {className: "line" + (i === selected ? " selected" : "")});
    line.append(...(model.autoencoder ? reconstruction(lines[i], text) : [text || "\u00a0"]));
    line.addEventListener("click", () => select(i));
    return line;
  }));
  showDetails();
}

function reconstruction(input, output) {
  // the output's words, those that differ from the input's word at the same place marked
  const want = input.trim().split(/\s+/).filter(Boolean);
  const got = output.trim().split(/\s+/).filter(Boolean);
  const words = got.map((word, k) => el("span", {className: word === want[k] ? "same" : "differs", textContent: word}));
  const exact = input.trim() === output.trim();
  const badge = el("span", {
    className: "badge " + (exact ? "exact" : "wrong"),
    textContent: !input.trim() ? "" : exact ? "exact" : got.length < want.length ? "too short" : "differs",
  });
  return [...words.flatMap((w) => [w, " "]), badge];
}

function select(i) {
  selected = i;
  render();
}

function showDetails() {
  const {lines, answer} = result;
  if (!lines[selected] || !lines[selected].trim()) {
    selected = lines.findIndex((line) => line.trim());
  }
  const i = selected;
  ui.details.hidden = false;
  ui.whichLine.textContent = lines.length > 1 ? `Line ${i + 1}.` : "";
  const outputs = [answer.translatedText[i], ...(answer.alternatives ? answer.alternatives[i] : [])];
  const scores = answer.scores ? answer.scores[i] : [];
  ui.nbest.replaceChildren(...outputs.map((text, k) => el("li", {},
    el("span", {className: "score", textContent: scores[k] !== undefined ? scores[k].toFixed(3) : ""}),
    el("span", {textContent: text}))));
  showAttention(answer.attention ? answer.attention[i] : null);
}

function showAttention(attention) {
  ui.noAttention.hidden = !!attention;
  ui.strips.hidden = !attention;
  ui.heatmap.hidden = !attention;
  if (!attention) return;
  const {source, output, weights} = attention;
  ui.sourcePieces.replaceChildren(...source.map((piece) => el("span", {className: "piece", textContent: piece})));
  ui.outputPieces.replaceChildren(...output.map((piece, r) => {
    const chip = el("span", {className: "piece output-piece", textContent: piece});
    chip.addEventListener("mouseenter", () => focusRow(r));
    return chip;
  }));
  const header = el("tr", {}, el("th"), ...source.map((piece) => el("th", {className: "column", textContent: piece})));
  const rows = weights.map((row, r) => {
    const tr = el("tr", {}, el("th", {className: "row", textContent: output[r]}),
      ...row.map((w) => el("td", {style: `background: rgba(29, 78, 216, ${w})`, title: w.toFixed(3)})));
    tr.addEventListener("mouseenter", () => focusRow(r));
    return tr;
  });
  ui.heatmap.replaceChildren(header, ...rows);
  focusRow(0);
}

function focusRow(r) {
  // one output piece: its row of the map, and its weights over the source pieces
  const weights = result.answer.attention[selected].weights[r];
  ui.heatmap.querySelectorAll("tr").forEach((tr, k) => tr.classList.toggle("active", k === r + 1));
  ui.outputPieces.querySelectorAll(".piece").forEach((chip, k) => chip.classList.toggle("active", k === r));
  ui.sourcePieces.querySelectorAll(".piece").forEach((chip, j) => {
    chip.style.background = `rgba(29, 78, 216, ${weights[j]})`;
    chip.style.color = weights[j] > 0.5 ? "white" : "";
    chip.title = weights[j].toFixed(3);
  });
}

ui.source.addEventListener("input", () => translateSoon());
ui.source.addEventListener("keyup", () => {
  if (result && caretLine() !== selected && result.lines[caretLine()]?.trim()) select(caretLine());
});
ui.pair.addEventListener("change", pairChanged);
ui.beam.addEventListener("change", () => translateSoon(0));
loadModels().catch((error) => showError(`cannot load the models: ${error.message}`));
