// comfyui-sserd frontend extension.
//
// - Extract Emotion: an emotion picker — the 7 emotions as bars; click (or drag) on a bar
//   to choose that emotion and set the intensity to where you clicked. After a run the
//   bars show the emotion actually extracted (e.g. measured on a reference face).
// - Disentangle Content: bars of the emotion the source clip shows.
// - Extract Emotion shows the target that wins: with a reference image/video connected, or a
//   curve typed in, the picker shows that (the curve as intensity over time), not the label.
// - Expression Controls: its note (the target, each control's share shown on the preview frame, a control
//   that saturates) above the source | edited frame ComfyUI shows from the node's images.
// - Render Face: an in-node preview of edited frames (source | edited); move the pointer
//   across it (or drag) to scrub through the previewed frames; bars of the emotion asked for vs
//   the landmark reading of the source and the edited frames (a geometric reading, not a rating). The live preview ComfyUI shows while the node
//   renders is removed once it has run (no stale 512 px frame under the node).
//
// The widgets are drawn on the node canvas and never serialised (no effect on the prompt).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

// The emotion labels, in the server's order: read from Extract Emotion's own "emotion" list when the node
// definitions arrive (sserd_core.emotion.EMOTIONS; nothing retyped here).
let EMOTIONS = [];

function emotionsOf(nodeData) {
  const spec = nodeData?.input?.required?.emotion;
  const options = Array.isArray(spec?.[0]) ? spec[0] : spec?.[1]?.options;
  return Array.isArray(options) && options.length ? options.slice() : null;
}
const COLORS = {
  neutral: "#9aa0a6", angry: "#e5534b", disgusted: "#8cc265", fear: "#a371f7",
  happy: "#f2c94c", sad: "#4f8fe6", surprised: "#f0883e",
};
const ROW_H = 17;
const PAD = 10;

function findWidget(node, name) {
  return (node.widgets || []).find((w) => w.name === name);
}

function setWidget(node, name, value) {
  const w = findWidget(node, name);
  if (!w) return;
  w.value = value;
  w.callback?.(value, app.canvas, node);
}

function emotionVector(label, intensity) {
  const v = EMOTIONS.map(() => 0);
  const i = EMOTIONS.indexOf(label);
  if (i > 0) v[i] = intensity;
  v[0] = Math.max(0, 1 - v.slice(1).reduce((a, b) => a + b, 0));
  return v;
}

// The title line and row geometry shared by the bar and curve panels (ctx already saved by the caller).
function panelHeader(ctx, width, y, title) {
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#ccc";
  ctx.fillText(title, PAD, y + 8);
  const labelW = 64;
  const barX = PAD + labelW;
  return { top: y + 18, barX, barW: Math.max(20, width - barX - PAD - 34) };
}

// Horizontal bars, one row per emotion; `series` = [{values, color, label}] drawn as
// thin stacked sub-bars so several vectors (target / source / edited) compare at a glance.
function drawBars(ctx, width, y, title, series, selected) {
  ctx.save();
  const { top, barX, barW } = panelHeader(ctx, width, y, title);
  EMOTIONS.forEach((name, i) => {
    const ry = top + i * ROW_H;
    ctx.fillStyle = selected === name ? "#fff" : "#aaa";
    ctx.fillText(name, PAD, ry + ROW_H / 2);
    ctx.fillStyle = "#2a2a2a";
    ctx.fillRect(barX, ry + 2, barW, ROW_H - 4);
    const h = (ROW_H - 4) / Math.max(1, series.length);
    series.forEach((s, k) => {
      const v = Math.max(0, Math.min(1, s.values?.[i] ?? 0));
      ctx.fillStyle = s.color === "emotion" ? COLORS[name] : s.color;
      ctx.fillRect(barX, ry + 2 + k * h, barW * v, h);
    });
    const v0 = series[series.length - 1]?.values?.[i] ?? 0;
    ctx.fillStyle = "#ddd";
    ctx.fillText(v0.toFixed(2), barX + barW + 4, ry + ROW_H / 2);
    if (selected === name) {
      ctx.strokeStyle = "#fff";
      ctx.strokeRect(barX - 0.5, ry + 1.5, barW + 1, ROW_H - 3);
    }
  });
  if (series.length > 1) {
    let lx = PAD;
    const ly = top + EMOTIONS.length * ROW_H + 8;
    series.forEach((s) => {
      ctx.fillStyle = s.color === "emotion" ? "#f2c94c" : s.color;
      ctx.fillRect(lx, ly - 4, 10, 8);
      ctx.fillStyle = "#ccc";
      ctx.fillText(s.label, lx + 14, ly);
      lx += 18 + ctx.measureText(s.label).width + 10;
    });
  }
  ctx.restore();
  return { barX, barW, top };
}

function barsHeight(nSeries) {
  return 18 + EMOTIONS.length * ROW_H + (nSeries > 1 ? 18 : 6);
}

// ------------------------------------------------------------------ Extract Emotion
// Which target the node will use, in the server's order (nodes/extract_emotion.py): a connected
// reference image, else a connected reference video, else a non-empty curve, else the label.
function linked(node, name) {
  const input = (node.inputs || []).find((i) => i.name === name);
  return !!input && input.link != null;
}

function targetSource(node) {
  if (linked(node, "reference_image")) return { kind: "reference", what: "reference image" };
  if (linked(node, "reference_video")) return { kind: "reference", what: "reference video" };
  if (linked(node, "curve")) return { kind: "curve", text: null };
  const curve = String(findWidget(node, "curve")?.value ?? "").trim();
  if (curve) return { kind: "curve", text: curve };
  return { kind: "label" };
}

const ALIASES = {
  anger: "angry", mad: "angry", disgust: "disgusted", fearful: "fear", afraid: "fear", scared: "fear",
  joy: "happy", happiness: "happy", sadness: "sad", surprise: "surprised", calm: "neutral", none: "neutral",
};

// "0:neutral, 2:happy@0.9" -> [[0, vector], [2, vector]] sorted by time; null if it does not parse
// (the server then reports the exact problem when the graph runs)
function parseCurve(text) {
  const keys = [];
  for (let item of text.replace(/;/g, ",").split(",")) {
    item = item.trim();
    if (!item) continue;
    const m = item.match(/^([^:]+):([^@]+)(?:@(.+))?$/);
    if (!m) return null;
    const t = Number(m[1]);
    const name0 = m[2].trim().toLowerCase();
    const name = ALIASES[name0] ?? name0;
    const intensity = m[3] === undefined || !m[3].trim() ? 1 : Number(m[3]);
    if (!Number.isFinite(t) || t < 0 || !EMOTIONS.includes(name) || !(intensity >= 0 && intensity <= 1)) return null;
    keys.push([t, emotionVector(name, intensity)]);
  }
  keys.sort((a, b) => a[0] - b[0]);
  return keys.length ? keys : null;
}

// One row per emotion: its intensity over time (keyframes, linear in between) as a filled area.
function drawCurve(ctx, width, y, title, keyframes) {
  ctx.save();
  const { top, barX, barW } = panelHeader(ctx, width, y, title);
  const t0 = keyframes[0][0];
  const t1 = Math.max(t0 + 1e-6, keyframes[keyframes.length - 1][0]);
  const xs = keyframes.map(([t]) => barX + (keyframes.length > 1 ? ((t - t0) / (t1 - t0)) * barW : 0));
  EMOTIONS.forEach((name, i) => {
    const ry = top + i * ROW_H;
    ctx.fillStyle = "#aaa";
    ctx.fillText(name, PAD, ry + ROW_H / 2);
    ctx.fillStyle = "#2a2a2a";
    ctx.fillRect(barX, ry + 2, barW, ROW_H - 4);
    const h = ROW_H - 4;
    const base = ry + 2 + h;
    ctx.beginPath();
    ctx.moveTo(barX, base);
    keyframes.forEach(([, v], k) => ctx.lineTo(keyframes.length > 1 ? xs[k] : barX, base - h * Math.max(0, Math.min(1, v[i]))));
    const last = keyframes[keyframes.length - 1][1][i];
    ctx.lineTo(barX + barW, base - h * Math.max(0, Math.min(1, last)));
    ctx.lineTo(barX + barW, base);
    ctx.closePath();
    ctx.fillStyle = COLORS[name];
    ctx.fill();
    const peak = Math.max(...keyframes.map(([, v]) => v[i]));
    ctx.fillStyle = "#ddd";
    ctx.fillText(peak.toFixed(2), barX + barW + 4, ry + ROW_H / 2);
  });
  ctx.fillStyle = "#999";
  const ly = top + EMOTIONS.length * ROW_H + 8;
  ctx.fillText(`${t0.toFixed(1)} s`, barX, ly);
  const end = `${t1.toFixed(1)} s`;
  ctx.fillText(end, barX + barW - ctx.measureText(end).width, ly);
  ctx.restore();
  return { barX, barW, top };
}

function addEmotionPicker(node) {
  const widget = {
    name: "sserd_emotion_picker",
    type: "sserd_emotion_picker",
    value: null,
    serialize: false,
    options: { serialize: false },
    measured: null, // set after a run: {text, source, keyframes}
    layout: null,
    shown: null, // what the last draw showed: {kind, title} (read by the tests)
    computeSize(width) {
      return [width ?? node.size[0], barsHeight(2) + 16];
    },
    // What to draw: the target that wins, never the label when a curve or a reference overrides it.
    view() {
      const src = targetSource(node);
      const measured = this.measured && this.measured.source === src.kind ? this.measured : null;
      if (src.kind === "reference") {
        const values = measured?.keyframes?.[0]?.[1] ?? EMOTIONS.map(() => 0);
        const title = measured
          ? `The ${src.what} wins — measured: ${measured.text}`
          : `The ${src.what} wins — its emotion is measured when the graph runs`;
        return { kind: "reference", title, series: [{ values, color: "#58a6ff", label: `measured (${src.what})` }] };
      }
      if (src.kind === "curve") {
        const keys = src.text !== null ? parseCurve(src.text) : measured?.keyframes;
        if (keys && keys.length) {
          return { kind: "curve", title: `The curve wins: ${keys.length} keyframe${keys.length > 1 ? "s" : ""} (label ignored)`, keyframes: keys };
        }
        const title = src.text === null ? "The connected curve wins (label ignored)" : "The curve wins — it is checked when the graph runs";
        return { kind: "curve", title, series: [{ values: EMOTIONS.map(() => 0), color: "emotion", label: "curve" }] };
      }
      const label = findWidget(node, "emotion")?.value ?? "neutral";
      const intensity = Number(findWidget(node, "intensity")?.value ?? 1);
      const series = [{ values: emotionVector(label, intensity), color: "emotion", label: "label × intensity" }];
      let title = "Emotion picker — click a bar to choose the emotion and intensity";
      if (measured) {
        series.push({ values: measured.keyframes?.[0]?.[1] ?? null, color: "#58a6ff", label: "last run" });
        title = `Last run: ${measured.text}`;
      }
      return { kind: "label", title, series, selected: label };
    },
    draw(ctx, node, width, y) {
      const v = this.view();
      this.shown = { kind: v.kind, title: v.title };
      this.layout = v.keyframes ? drawCurve(ctx, width, y, v.title, v.keyframes) : drawBars(ctx, width, y, v.title, v.series, v.selected ?? null);
      this.layout.y = y;
      this.layout.kind = v.kind;
    },
    mouse(event, pos, node) {
      const t = event.type;
      if (!this.layout || !(t === "pointerdown" || t === "mousedown" || (t === "pointermove" && event.buttons))) return false;
      if (targetSource(node).kind !== "label") return false; // a curve or reference wins: the label is not used
      const { barX, barW, top } = this.layout;
      const row = Math.floor((pos[1] - top) / ROW_H);
      if (row < 0 || row >= EMOTIONS.length) return false;
      const name = EMOTIONS[row];
      setWidget(node, "emotion", name);
      if (name !== "neutral") {
        const v = Math.round(Math.max(0, Math.min(1, (pos[0] - barX) / barW)) * 20) / 20;
        setWidget(node, "intensity", v);
      }
      node.setDirtyCanvas(true, true);
      return true;
    },
  };
  node.addCustomWidget(widget);
  return widget;
}

// ------------------------------------------------------------------ summaries (bars)
function addSummary(node, name) {
  const widget = {
    name, type: name, value: null, serialize: false, options: { serialize: false },
    data: null,
    computeSize(width) {
      width = width ?? node.size[0];
      return this.data ? [width, barsHeight(this.data.series.length) + 6] : [width, 0];
    },
    draw(ctx, node, width, y) {
      if (this.data) drawBars(ctx, width, y, this.data.title, this.data.series, null);
    },
  };
  node.addCustomWidget(widget);
  return widget;
}

// ------------------------------------------------------------------ Render Face preview
function addPreview(node) {
  const widget = {
    name: "sserd_preview", type: "sserd_preview", value: null, serialize: false, options: { serialize: false },
    frames: [], images: [], index: 0, box: null,
    computeSize(width) {
      // LiteGraph's layout calls computeSize() without a width: use the node's
      width = width ?? node.size[0];
      if (!this.images.length) return [width, 0];
      const img = this.images[this.index];
      const aspect = img && img.naturalWidth ? img.naturalHeight / img.naturalWidth : 0.5;
      return [width, Math.min(360, (width - 2 * PAD) * aspect) + 22];
    },
    draw(ctx, node, width, y) {
      if (!this.images.length) return;
      const img = this.images[this.index];
      const w = width - 2 * PAD;
      const aspect = img && img.naturalWidth ? img.naturalHeight / img.naturalWidth : 0.5;
      const h = Math.min(360, w * aspect);
      const dw = h / aspect;
      const x = PAD + (w - dw) / 2;
      if (img && img.complete && img.naturalWidth) ctx.drawImage(img, x, y, dw, h);
      ctx.save();
      ctx.font = "11px sans-serif";
      ctx.fillStyle = "#ccc";
      ctx.textBaseline = "middle";
      const f = this.frames[this.index];
      ctx.fillText(`source | edited — frame ${this.index + 1}/${this.frames.length} at ${f.time.toFixed(2)} s (move the pointer to scrub)`, PAD, y + h + 11);
      ctx.restore();
      this.box = { x, y, w: dw, h };
    },
    mouse(event, pos, node) {
      if (!this.box || !this.images.length) return false;
      const { x, w } = this.box;
      const i = Math.floor(((pos[0] - x) / w) * this.images.length);
      const next = Math.max(0, Math.min(this.images.length - 1, i));
      if (next !== this.index) {
        this.index = next;
        node.setDirtyCanvas(true, true);
      }
      return true;
    },
    show(frames) {
      this.frames = frames;
      this.index = 0;
      this.images = frames.map((f) => {
        const img = new Image();
        img.onload = () => node.setDirtyCanvas(true, true);
        img.src = api.apiURL(`/view?filename=${encodeURIComponent(f.filename)}&subfolder=${encodeURIComponent(f.subfolder || "")}&type=${f.type || "temp"}`);
        return img;
      });
    },
  };
  node.addCustomWidget(widget);
  return widget;
}

// ------------------------------------------------------------------ Expression Controls note
// The node's note (the target, the share of each control's motion the preview frame shows, a control that
// saturates), word-wrapped above the preview image ComfyUI shows from the node's ui images.
function wrapLines(ctx, text, width) {
  const lines = [];
  for (const para of String(text || "").split("\n")) {
    let line = "";
    for (const word of para.split(" ")) {
      const next = line ? `${line} ${word}` : word;
      if (line && ctx.measureText(next).width > width) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    lines.push(line);
  }
  return lines;
}

function addNote(node) {
  const LINE_H = 14;
  const widget = {
    name: "sserd_controls_note", type: "sserd_controls_note", value: null, serialize: false,
    options: { serialize: false },
    text: "", lines: 0,
    computeSize(width) {
      width = width ?? node.size[0];
      return [width, this.text ? this.lines * LINE_H + 10 : 0];
    },
    draw(ctx, node, width, y) {
      if (!this.text) return;
      ctx.save();
      ctx.font = "11px sans-serif";
      ctx.textBaseline = "middle";
      const lines = wrapLines(ctx, this.text, width - 2 * PAD);
      this.lines = lines.length;
      lines.forEach((line, i) => {
        ctx.fillStyle = line.startsWith("Saturated") ? "#f0883e" : "#ccc";
        ctx.fillText(line, PAD, y + 6 + (i + 0.5) * LINE_H);
      });
      ctx.restore();
    },
    show(text) {
      this.text = text || "";
      const ctx = document.createElement("canvas").getContext("2d");
      ctx.font = "11px sans-serif";
      this.lines = wrapLines(ctx, this.text, node.size[0] - 2 * PAD).length;
    },
  };
  node.addCustomWidget(widget);
  return widget;
}

// ComfyUI shows the live preview frames Render Face sends while it renders (512 px JPEGs) under
// the node and keeps the last one after the run. Once the node has run, its own source | edited
// preview says more, so the live one is removed: the frontend's preview entry for the node, the
// images it decoded from it and the canvas widget that draws them.
const LIVE_PREVIEW_WIDGET = "$$canvas-image-preview";

function locatorId(node) {
  const g = node.graph;
  return g && g.isRootGraph === false && g.id ? `${g.id}:${node.id}` : String(node.id);
}

function clearLivePreview(node) {
  const previews = app.nodePreviewImages || {};
  const key = locatorId(node);
  for (const url of previews[key] || []) {
    if (typeof url === "string" && url.startsWith("blob:")) URL.revokeObjectURL(url);
  }
  delete previews[key];
  node.preview = undefined;
  node.imgs = undefined;
  node.imageIndex = null;
  const i = (node.widgets || []).findIndex((w) => w.name === LIVE_PREVIEW_WIDGET);
  if (i > -1) {
    node.widgets[i].onRemove?.();
    node.widgets.splice(i, 1);
  }
  node.setDirtyCanvas(true, true);
}

function grow(node) {
  const size = node.computeSize();
  node.setSize([Math.max(node.size[0], size[0]), Math.max(node.size[1], size[1])]);
  node.setDirtyCanvas(true, true);
}

function chain(proto, name, fn) {
  const original = proto[name];
  proto[name] = function (...args) {
    const r = original?.apply(this, args);
    fn.apply(this, args);
    return r;
  };
}

app.registerExtension({
  name: "sserd.emotion",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === "SSERD_ExtractEmotion") {
      EMOTIONS = emotionsOf(nodeData) ?? EMOTIONS;
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.sserdPicker = addEmotionPicker(this);
        grow(this);
      });
      chain(nodeType.prototype, "onExecuted", function (message) {
        const m = message?.sserd_emotion?.[0];
        if (m && this.sserdPicker) {
          this.sserdPicker.measured = m;
          grow(this);
        }
      });
    } else if (nodeData.name === "SSERD_DisentangleContent") {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.sserdSummary = addSummary(this, "sserd_content_summary");
      });
      chain(nodeType.prototype, "onExecuted", function (message) {
        const m = message?.sserd_content?.[0];
        if (!m || !this.sserdSummary) return;
        this.sserdSummary.data = {
          title: `face in ${m.face_frames}/${m.frames} frames — ${m.title}`,
          series: [{ values: m.values, color: "emotion", label: "source" }],
        };
        grow(this);
      });
    } else if (nodeData.name === "SSERD_ExpressionControls") {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.sserdNote = addNote(this);
      });
      chain(nodeType.prototype, "onExecuted", function (message) {
        const m = message?.sserd_controls?.[0];
        if (m && this.sserdNote) {
          this.sserdNote.show(m.text);
          grow(this);
        }
      });
    } else if (nodeData.name === "SSERD_RenderFace") {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.sserdPreview = addPreview(this);
        this.sserdSummary = addSummary(this, "sserd_render_summary");
      });
      chain(nodeType.prototype, "onExecuted", function (message) {
        // now, and once more when an image of the last live frame that was still loading has landed
        clearLivePreview(this);
        for (const ms of [300, 1500]) setTimeout(() => clearLivePreview(this), ms);
        const r = message?.sserd_render?.[0];
        const frames = message?.sserd_previews || [];
        if (this.sserdPreview && frames.length) this.sserdPreview.show(frames);
        if (r && this.sserdSummary) {
          this.sserdSummary.data = {
            title: `${r.frames} frames in ${r.seconds} s (${r.backend}) — mean landmark reading (not a rating: ` +
              "compare edited with source)",
            series: [
              { values: r.target, color: "#8b949e", label: "asked for" },
              { values: r.source, color: "#4f8fe6", label: "source, reading" },
              { values: r.edited, color: "emotion", label: "edited, reading" },
            ],
          };
        }
        grow(this);
      });
    }
  },
});
