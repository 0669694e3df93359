// ChaosMagnet dashboard: a small time-series line chart on a <canvas>.
//
// Our own code (no chart library): a time window ending at the newest
// point, a y range from 0 to yMax, a few grid lines, one line per series
// (optionally filled), a legend, and gaps where a value is null.  The window
// starts at one minute and grows with the data up to windowSeconds.  Each chart
// records how many points it holds in canvas.dataset.points and how often it
// was drawn in canvas.dataset.draws (the browser test reads them).

const GRID = "rgba(148, 163, 184, 0.16)";
const AXIS_TEXT = "#8b98ad";
const FONT = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";

function niceStep(range, ticks) {
  const raw = range / Math.max(1, ticks);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * power >= raw) return m * power;
  }
  return 10 * power;
}

function formatTick(value) {
  if (Math.abs(value) >= 1000) return `${Math.round(value / 100) / 10}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

export class LineChart {
  // options: {series: [{key, label, color, fill}], yMax: number | () => number,
  //           windowSeconds (the most shown), maxPoints}
  constructor(canvas, options) {
    this.canvas = canvas;
    this.series = options.series;
    this.yMax = options.yMax ?? 1;
    this.windowSeconds = options.windowSeconds ?? 600;
    this.maxPoints = options.maxPoints ?? 900;
    this.points = [];
    this.draws = 0;
  }

  setPoints(points) {
    this.points = points.filter((p) => p && typeof p.t === "number").slice(-this.maxPoints);
    this.draw();
  }

  push(point) {
    if (!point || typeof point.t !== "number") return;
    const last = this.points[this.points.length - 1];
    if (last && point.t <= last.t) return; // already have it
    this.points.push(point);
    if (this.points.length > this.maxPoints) this.points.splice(0, this.points.length - this.maxPoints);
    this.draw();
  }

  currentYMax() {
    const value = typeof this.yMax === "function" ? this.yMax() : this.yMax;
    return value > 0 ? value : 1;
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 150;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;

    const pad = { left: 34, right: 10, top: 22, bottom: 20 };
    const plotW = Math.max(10, width - pad.left - pad.right);
    const plotH = Math.max(10, height - pad.top - pad.bottom);
    const yMax = this.currentYMax();
    const newest = this.points.length ? this.points[this.points.length - 1].t : Date.now() / 1000;
    const oldest = this.points.length ? this.points[0].t : newest;
    // the window grows with the data, from one minute up to windowSeconds
    const span = Math.min(this.windowSeconds, Math.max(60, Math.ceil((newest - oldest) / 60) * 60));
    const tMin = newest - span;
    const x = (t) => pad.left + ((t - tMin) / span) * plotW;
    const y = (v) => pad.top + plotH - (Math.min(Math.max(v, 0), yMax) / yMax) * plotH;

    // grid and y labels
    ctx.strokeStyle = GRID;
    ctx.fillStyle = AXIS_TEXT;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const step = niceStep(yMax, 4);
    for (let v = 0; v <= yMax + 1e-9; v += step) {
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(pad.left + plotW, yy);
      ctx.stroke();
      ctx.fillText(formatTick(v), pad.left - 6, yy);
    }
    // time labels: how long before the newest point
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const steps = span <= 120 ? [10, 15, 20, 30, 60] : [60, 120, 180, 300];
    const every = steps.find((s) => span / s <= 6) || 300;
    for (let ago = 0; ago <= span; ago += every) {
      const xx = pad.left + plotW - (ago * plotW) / span;
      const label = ago === 0 ? "now" : ago % 60 === 0 ? `-${ago / 60}m` : `-${ago}s`;
      ctx.fillText(label, Math.max(pad.left + 8, xx), pad.top + plotH + 5);
    }

    // series
    const visible = this.points.filter((p) => p.t >= tMin - 2);
    for (const s of this.series) {
      let path = [];
      const flush = () => {
        if (path.length === 0) return;
        ctx.beginPath();
        ctx.moveTo(path[0][0], path[0][1]);
        for (const [px, py] of path.slice(1)) ctx.lineTo(px, py);
        ctx.strokeStyle = s.color;
        ctx.lineWidth = 1.8;
        ctx.lineJoin = "round";
        ctx.stroke();
        if (s.fill) {
          ctx.lineTo(path[path.length - 1][0], y(0));
          ctx.lineTo(path[0][0], y(0));
          ctx.closePath();
          ctx.fillStyle = s.fill;
          ctx.fill();
        }
        path = [];
      };
      for (const p of visible) {
        const v = p[s.key];
        if (v === null || v === undefined || Number.isNaN(v)) {
          flush();
          continue;
        }
        path.push([x(Math.max(p.t, tMin)), y(v)]);
      }
      flush();
    }

    // legend, top right
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    let lx = pad.left + plotW;
    for (const s of [...this.series].reverse()) {
      const w = ctx.measureText(s.label).width;
      lx -= w + 22;
      ctx.fillStyle = s.color;
      ctx.fillRect(lx, 8, 10, 3);
      ctx.fillStyle = AXIS_TEXT;
      ctx.fillText(s.label, lx + 14, 10);
    }

    if (visible.length === 0) {
      ctx.fillStyle = AXIS_TEXT;
      ctx.textAlign = "center";
      ctx.fillText("waiting for data…", pad.left + plotW / 2, pad.top + plotH / 2);
    }
    this.draws += 1;
    canvas.dataset.points = String(this.points.length);
    canvas.dataset.draws = String(this.draws);
  }
}
