"""The page's look: CSS, the small script (answer timer, Ctrl+Enter, scrolling to the report) and the theme."""

from __future__ import annotations

from interviewer.ui.gradio_import import import_gradio

gr = import_gradio()

CSS = """
.gradio-container { max-width: 1320px !important; }
.gradio-container, .gradio-container * { font-family: 'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'PingFang SC',
  'Microsoft YaHei', 'Source Han Sans SC', ui-sans-serif, system-ui, sans-serif; }
#app-title h2 { margin: 0 0 .2em 0; font-size: 1.25em; }
#chatbot .q-tag { display: inline-block; font-size: .78em; padding: 0 .45em; border-radius: .6em; background: #e8eefc;
  color: #1c3f95; margin-right: .3em; }
#chatbot details.cites summary, #chatbot details.g-ref summary { cursor: pointer; color: #555; font-size: .9em; }
#chatbot details.cites ul { margin: .2em 0 0 1.2em; font-size: .88em; color: #444; }
.grade-card { border-left: 4px solid #999; padding: .35em .6em; background: #fafafa; border-radius: 4px; }
.grade-card.b4 { border-color: #2e7d32; } .grade-card.b3 { border-color: #1565c0; }
.grade-card.b2 { border-color: #ef6c00; } .grade-card.b1 { border-color: #c62828; }
.g-head { font-size: 1.02em; } .g-meta { color: #777; font-size: .82em; }
.g-band { display: inline-block; padding: 0 .4em; border-radius: .4em; color: #fff; background: #777; }
.b4 .g-band, .g-band.b4 { background: #2e7d32; } .b3 .g-band, .g-band.b3 { background: #1565c0; }
.b2 .g-band, .g-band.b2 { background: #ef6c00; } .b1 .g-band, .g-band.b1 { background: #c62828; }
.g-sec { font-weight: 600; margin-top: .35em; font-size: .9em; }
.g-list { margin: .1em 0 0 .3em; padding: 0; font-size: .9em; list-style: none; } .g-list q { color: #555; }
.g-note { color: #666; font-size: .88em; } .g-feedback { margin-top: .35em; } .g-notice { color: #b26a00; }
#stage-panel .panel { font-size: .92em; line-height: 1.45; }
#stage-panel .panel-title { font-weight: 600; margin-bottom: .3em; }
#stage-panel ol.stages { margin: 0 0 .5em 1.2em; padding: 0; }
#stage-panel ol.stages li { display: flex; justify-content: space-between; gap: .5em; color: #888; }
#stage-panel ol.stages li.now { color: #1c3f95; font-weight: 600; } #stage-panel ol.stages li.done { color: #2e7d32; }
#stage-panel .cnt { white-space: nowrap; font-size: .9em; }
#stage-panel .panel-now { background: #f2f5fb; padding: .35em .5em; border-radius: 6px; margin: .3em 0; }
#stage-panel .panel-sec { font-weight: 600; margin-top: .6em; }
#stage-panel ul.check { margin: .2em 0 0 1.2em; padding: 0; }
.answer-timer { margin: .4em 0; } .answer-timer .t { font-variant-numeric: tabular-nums; font-weight: 600; }
.answer-timer .tbar { height: 6px; background: #e3e7ee; border-radius: 3px; overflow: hidden; }
.answer-timer .tbar i { display: block; height: 100%; background: #1565c0; }
.answer-timer.over .t { color: #c62828; } .answer-timer.over .tbar i { background: #c62828; }
.bars { margin: .2em 0; } .bar-row { display: flex; align-items: center; gap: .4em; margin: .15em 0; font-size: .9em; }
.bar-label { flex: 0 0 6.5em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar-track { flex: 1 1 auto; height: .8em; background: #eceff3; border-radius: .4em; overflow: hidden; min-width: 3em; }
.bar-track i { display: block; height: 100%; } .bar-value { flex: 0 0 2em; text-align: right; }
.bar-track i.b4 { background: #2e7d32; } .bar-track i.b3 { background: #1565c0; }
.bar-track i.b2 { background: #ef6c00; } .bar-track i.b1 { background: #c62828; }
.report .charts { display: flex; flex-wrap: wrap; gap: 1.5em; } .report .charts > div { flex: 1 1 260px; }
.report details.turn { border-top: 1px solid #e5e5e5; padding: .3em 0; } .report blockquote { white-space: pre-wrap; }
.report .svg-table td, .report .svg-table th { padding: .1em .5em; border-bottom: 1px solid #eee; }
.status { padding: .3em .6em; border-radius: 4px; background: #eef5ee; font-size: .92em; }
.status.error { background: #fdecea; color: #8a1c1c; }
#command-row button { min-width: 0; }
#chatbot .typing { color: #1565c0; animation: blink 1s steps(2, start) infinite; }
@keyframes blink { to { visibility: hidden; } }
#chatbot .top-panel > button:not(:last-of-type) { display: none; }  /* the toolbar's "clear": keep only copy-all */
@media (min-width: 641px) { #harder-ksana { flex-grow: 2 !important; white-space: nowrap; } }
@media (max-width: 640px) {
  .gradio-container { padding: 4px !important; }
  #chatbot { height: 58vh !important; }
  #command-row { flex-wrap: wrap; }
  #command-row > * { flex: 1 1 30% !important; min-width: 0 !important; }
  .bar-label { flex-basis: 5em; }
}
"""

JS = """
() => {
  const fmt = (s) => { s = Math.max(0, Math.floor(s)); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };
  const seen = new WeakMap();
  const tick = () => {
    document.querySelectorAll(".answer-timer").forEach((el) => {
      const key = el.dataset.key || "";
      let rec = seen.get(el);
      if (!rec || rec.key !== key || rec.elapsed !== el.dataset.elapsed) {
        rec = { key, elapsed: el.dataset.elapsed, t: performance.now() };
        seen.set(el, rec);
      }
      const e = parseFloat(el.dataset.elapsed || "0") + (performance.now() - rec.t) / 1000;
      const b = parseFloat(el.dataset.budget || "120");
      const t = el.querySelector(".t"); if (t) t.textContent = fmt(e);
      const bar = el.querySelector(".tbar i"); if (bar) bar.style.width = Math.min(100, e / b * 100) + "%";
      el.classList.toggle("over", e > b);
    });
  };
  tick();
  setInterval(tick, 500);
  let reportShown = false;
  setInterval(() => {
    const box = document.querySelector("#report-box");
    const shown = !!(box && box.offsetParent !== null && box.offsetHeight > 0);
    if (shown && !reportShown) box.scrollIntoView({ behavior: "smooth", block: "start" });
    reportShown = shown;
  }, 500);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !ev.isComposing && ev.target.closest && ev.target.closest("#answer-box")) {
      ev.preventDefault();
      const b = document.querySelector("#send"); if (b) b.click();
    }
  });
}
"""

def theme():
    fonts = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Soft(font=fonts, font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
