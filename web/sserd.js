// comfyui-sserd frontend extension.
//
// - Extract Emotion: an emotion picker — the 7 emotions as bars; click (or drag) on a bar
//   to choose that emotion and set the intensity to where you clicked. After a run the
//   bars show the emotion actually extracted (e.g. measured on a reference face).
// - Disentangle Content: bars of the emotion the source clip shows.
// - Render Face: an in-node preview of edited frames (source | edited); move the pointer
//   across it (or drag) to scrub through the previewed frames; bars of target vs the
//   emotion measured on the edited frames.
//
// The widgets are drawn on the node canvas and never serialised (no effect on the prompt).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const EMOTIONS = ["neutral", "angry", "disgusted", "fear", "happy", "sad", "surprised"];
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

// Horizontal bars, one row per emotion; `series` = [{values, color, label}] drawn as
// thin stacked sub-bars so several vectors (target / source / edited) compare at a glance.
function drawBars(ctx, width, y, title, series, selected) {
  ctx.save();
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#ccc";
  ctx.fillText(title, PAD, y + 8);
  const top = y + 18;
  const labelW = 64;
  const barX = PAD + labelW;
  const barW = Math.max(20, width - barX - PAD - 34);
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
function addEmotionPicker(node) {
  const widget = {
    name: "sserd_emotion_picker",
    type: "sserd_emotion_picker",
    value: null,
    serialize: false,
    options: { serialize: false },
    measured: null, // set after a run: {text, keyframes}
    layout: null,
    computeSize(width) {
      return [width ?? node.size[0], barsHeight(this.measured ? 2 : 1) + 16];
    },
    draw(ctx, node, width, y) {
      const label = findWidget(node, "emotion")?.value ?? "neutral";
      const intensity = Number(findWidget(node, "intensity")?.value ?? 1);
      const series = [{ values: emotionVector(label, intensity), color: "emotion", label: "label × intensity" }];
      let title = "Emotion picker — click a bar to choose the emotion and intensity";
      if (this.measured) {
        const kf = this.measured.keyframes || [];
        series.push({ values: kf.length ? kf[0][1] : null, color: "#58a6ff",
          label: this.measured.source === "curve" ? "curve (first keyframe)" : `extracted (${this.measured.source})` });
        title = `Last run: ${this.measured.text}`;
      }
      this.layout = drawBars(ctx, width, y, title, series, label);
      this.layout.y = y;
    },
    mouse(event, pos, node) {
      const t = event.type;
      if (!this.layout || !(t === "pointerdown" || t === "mousedown" || (t === "pointermove" && event.buttons))) return false;
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
    } else if (nodeData.name === "SSERD_RenderFace") {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.sserdPreview = addPreview(this);
        this.sserdSummary = addSummary(this, "sserd_render_summary");
      });
      chain(nodeType.prototype, "onExecuted", function (message) {
        const r = message?.sserd_render?.[0];
        const frames = message?.sserd_previews || [];
        if (this.sserdPreview && frames.length) this.sserdPreview.show(frames);
        if (r && this.sserdSummary) {
          this.sserdSummary.data = {
            title: `${r.frames} frames in ${r.seconds} s (${r.backend}) — mean emotion`,
            series: [
              { values: r.target, color: "#8b949e", label: "target" },
              { values: r.source, color: "#4f8fe6", label: "source (measured)" },
              { values: r.edited, color: "emotion", label: "edited (measured)" },
            ],
          };
        }
        grow(this);
      });
    }
  },
});
