// The latent pad: decodes z in the browser on every input event, so the image follows the thumb.
//
// Two Streamlit components share this module (same JS text, so Streamlit imports it once):
//   "latent_lab.decoder_weights" gets {key, spec, weights, ...} once per model and registers a decoder;
//   "latent_lab.latent_pad" gets the small, changing part ({decoder, dims, z, token, ...}) and draws the UI.
// Splitting them keeps the large weights message byte-identical across reruns, so Streamlit's
// message cache sends it once. The decoder mirrors VAE.decoder_spec() (vae/models.py); weights are
// float32 in PyTorch layouts: Linear (out, in), ConvTranspose2d (in, out, kH, kW).

const registry = (globalThis.__latentLabDecoders ??= { decoders: new Map(), waiters: new Map() });
const MAX_DECODERS = 4; // models kept in the page; older ones are dropped
const instances = new WeakMap(); // parentElement -> pad state, because Streamlit calls us again on new data

/** Bytes of a base64 string as float32 numbers (little-endian, as vae/generate.py writes them). */
export function base64ToFloat32(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float32Array(bytes.buffer, 0, bytes.length >> 2);
}

// The ops are top-level functions with every array and size passed in, which V8 compiles to tight
// loops. Inside the decoder, feature maps are kept channels-last (HWC) so that the innermost loop of
// the transposed convolution runs over output channels contiguously.

function linear(src, nIn, wt, b, nOut, dst) {
  // dst = b + W src, computed column by column (wt is W transposed, (in, out)), so the inner loop
  // is a contiguous axpy and inputs that a ReLU zeroed cost nothing.
  dst.set(b);
  for (let i = 0; i < nIn; i++) {
    const v = src[i];
    if (v === 0) continue;
    const row = i * nOut;
    for (let o = 0; o < nOut; o++) dst[o] += v * wt[row + o];
  }
}

function relu(buf, n) {
  for (let i = 0; i < n; i++) if (buf[i] < 0) buf[i] = 0;
}

function sigmoid(buf, n) {
  for (let i = 0; i < n; i++) buf[i] = 1 / (1 + Math.exp(-buf[i]));
}

function convTranspose2d(src, cIn, h, wd, w, b, cOut, k, s, p, dst, oh, ow) {
  // Scatter form of ConvTranspose2d: input (iy, ix, ci) adds v * w[ci, :, ky, kx] to output
  // (iy*s - p + ky, ix*s - p + kx). src: (h, wd, cIn) channels-last; w: rearranged to
  // (cIn, k, k, cOut) so the innermost loop runs over output channels contiguously; dst: (oh, ow, cOut).
  for (let pos = 0; pos < oh * ow; pos++) dst.set(b, pos * cOut);
  for (let iy = 0; iy < h; iy++) {
    const y0 = iy * s - p;
    for (let ix = 0; ix < wd; ix++) {
      const x0 = ix * s - p, inBase = (iy * wd + ix) * cIn;
      for (let ci = 0; ci < cIn; ci++) {
        const v = src[inBase + ci];
        if (v === 0) continue; // after a ReLU many inputs are zero: skip their whole scatter
        for (let ky = 0; ky < k; ky++) {
          const oy = y0 + ky;
          if (oy < 0 || oy >= oh) continue;
          for (let kx = 0; kx < k; kx++) {
            const ox = x0 + kx;
            if (ox < 0 || ox >= ow) continue;
            const out = (oy * ow + ox) * cOut, wBase = ((ci * k + ky) * k + kx) * cOut;
            for (let co = 0; co < cOut; co++) dst[out + co] += v * w[wBase + co];
          }
        }
      }
    }
  }
}

function rowsToChannelsLast(w, nIn, c, h, wd) {
  // Reorder a Linear layer's output rows from (C, H, W) to (H, W, C) order, so the reshape that
  // follows it yields a channels-last feature map with no copy at decode time.
  const out = new Float32Array(w.length);
  for (let ch = 0; ch < c; ch++)
    for (let pos = 0; pos < h * wd; pos++)
      out.set(w.subarray((ch * h * wd + pos) * nIn, (ch * h * wd + pos + 1) * nIn), (pos * c + ch) * nIn);
  return out;
}

function transpose(w, rows, columns) {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) out[c * rows + r] = w[r * columns + c];
  return out;
}

function kernelToChannelsLast(w, cIn, cOut, k) {
  // PyTorch's ConvTranspose2d weight is (cIn, cOut, k, k); the scatter loop wants (cIn, k, k, cOut).
  const out = new Float32Array(w.length);
  for (let ci = 0; ci < cIn; ci++)
    for (let co = 0; co < cOut; co++)
      for (let t = 0; t < k * k; t++) out[(ci * k * k + t) * cOut + co] = w[(ci * cOut + co) * k * k + t];
  return out;
}

// The spec checked and walked once: every layer with its sizes, the output shape,
// and whether the feature maps (channels-last inside) need turning back into (C, H, W) at the end.
function planLayers(spec, latentDim) {
  let size = latentDim, shape = [latentDim];
  const layers = [];
  spec.forEach((op, index) => {
    if (op.op === "linear") {
      if (op.in !== size) throw new Error(`linear expects ${op.in} inputs, has ${size}`);
      layers.push({ op: "linear", index, nIn: op.in, nOut: op.out });
      size = op.out; shape = [op.out];
    } else if (op.op === "relu" || op.op === "sigmoid") {
      layers.push({ op: op.op, n: size });
    } else if (op.op === "reshape") {
      const n = op.shape.reduce((a, c) => a * c, 1);
      if (n !== size) throw new Error(`reshape to ${op.shape} needs ${n} values, has ${size}`);
      shape = op.shape.slice();
    } else if (op.op === "conv_transpose2d") {
      const [cIn, h, wd] = shape;
      if (shape.length !== 3 || cIn !== op.in) throw new Error(`conv_transpose2d expects ${op.in} channels, has shape ${shape}`);
      const k = op.kernel, s = op.stride, p = op.padding, cOut = op.out;
      const oh = (h - 1) * s - 2 * p + k, ow = (wd - 1) * s - 2 * p + k;
      layers.push({ op: "conv", weight: op.weight, bias: op.bias, cIn, h, wd, k, s, p, cOut, oh, ow });
      size = cOut * oh * ow; shape = [cOut, oh, ow];
    } else {
      throw new Error(`unknown decoder op ${op.op}`);
    }
  });
  const channelsLast = shape.length === 3 && shape[0] > 1 && layers.some((layer) => layer.op === "conv");
  return { layers, size, shape, channelsLast };
}

// A Linear layer's weights transposed to (in, out), and when the layer feeds a
// (C, H, W) reshape, its rows reordered channels-last so the feature map needs no copy.
function linearWeights(spec, index, view) {
  const op = spec[index];
  let w = view(op.weight), b = view(op.bias);
  const next = spec.slice(index + 1).find((later) => later.op !== "relu");
  if (next?.op === "reshape" && next.shape.length === 3) {
    const [c, h, wd] = next.shape;
    w = rowsToChannelsLast(w, op.in, c, h, wd);
    b = rowsToChannelsLast(b, 1, c, h, wd);
  }
  return { wt: transpose(w, op.out, op.in), b };
}

/**
 * Build a decoder from the spec and the concatenated weights. Returns {decode, latentDim, shape, engine}:
 * decode(z) takes latentDim numbers and returns the image (C*H*W values in [0, 1], CHW order) in a
 * buffer that the next call reuses. Plain JavaScript with float64 activations (engine "js"): 1 ms
 * (MLP) and 3 ms (conv) per decode on a busy 2-core machine, well inside a 60 Hz frame
 * (bench/docs/latent.md, "Latent pad").
 */
export function buildDecoder(spec, weights, latentDim) {
  const view = (entry) => weights.subarray(entry[0], entry[0] + entry[1]);
  const { layers, size, shape, channelsLast } = planLayers(spec, latentDim);
  const input = new Float64Array(latentDim);
  let current = input;
  const steps = layers.map((layer) => {
    const src = current;
    if (layer.op === "relu") return () => relu(src, layer.n);
    if (layer.op === "sigmoid") return () => sigmoid(src, layer.n);
    if (layer.op === "linear") {
      const { wt, b } = linearWeights(spec, layer.index, view);
      const { nIn, nOut } = layer, dst = (current = new Float64Array(nOut));
      return () => linear(src, nIn, wt, b, nOut, dst);
    }
    const { cIn, h, wd, k, s, p, cOut, oh, ow } = layer, dst = (current = new Float64Array(cOut * oh * ow));
    const w = kernelToChannelsLast(view(layer.weight), cIn, cOut, k), b = view(layer.bias);
    return () => convTranspose2d(src, cIn, h, wd, w, b, cOut, k, s, p, dst, oh, ow);
  });
  const last = current;
  const output = channelsLast ? new Float64Array(size) : last;
  if (channelsLast) {
    const [c, h, wd] = shape;
    steps.push(() => {
      for (let pos = 0; pos < h * wd; pos++) for (let ch = 0; ch < c; ch++) output[ch * h * wd + pos] = last[pos * c + ch];
    });
  }
  return {
    latentDim,
    shape,
    engine: "js",
    decode(z) {
      for (let i = 0; i < latentDim; i++) input[i] = z[i];
      for (const step of steps) step();
      return output;
    },
  };
}

function registerDecoder(data) {
  if (registry.decoders.has(data.key)) return;
  const decoder = buildDecoder(data.spec, base64ToFloat32(data.weights), data.latent_dim);
  decoder.imageShape = data.image_shape;
  registry.decoders.set(data.key, decoder);
  while (registry.decoders.size > MAX_DECODERS) registry.decoders.delete(registry.decoders.keys().next().value);
  for (const resolve of registry.waiters.get(data.key) ?? []) resolve(decoder);
  registry.waiters.delete(data.key);
}

function whenDecoder(key) {
  const known = registry.decoders.get(key);
  if (known) return Promise.resolve(known);
  return new Promise((resolve) => {
    if (!registry.waiters.has(key)) registry.waiters.set(key, []);
    registry.waiters.get(key).push(resolve);
  });
}

// Frame counters for bench/latent_pad_fps.py and the tests: frames drawn, time spent decoding,
// time spent on whole frames (decode + canvas draw).
const stats = (globalThis.__latentPadStats ??= { frames: 0, decodeMs: 0, frameMs: 0 });

function gaussian() {
  // Box-Muller: a standard normal draw from two uniforms.
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

function createPad(root, setStateValue) {
  const el = (selector) => root.querySelector(selector);
  const pad = {
    root, setStateValue, decoder: null, z: null, data: null, token: null, sliders: new Map(),
    image: el(".lp-image"), padCanvas: el(".lp-pad"), colors: null,
  };
  pad.imageContext = pad.image.getContext("2d");

  pad.draw = () => {
    if (!pad.decoder) return;
    const started = performance.now();
    const pixels = pad.decoder.decode(pad.z);
    stats.decodeMs += performance.now() - started;
    const [channels, height, width] = pad.decoder.shape;
    const canvas = pad.image;
    if (canvas.width !== width || canvas.height !== height || !pad.imageData) {
      // The canvas holds the model's own pixels; CSS scales it up with `image-rendering: pixelated`
      // (nearest neighbour), so a frame writes H*W pixels instead of redrawing a scaled copy.
      canvas.width = width; canvas.height = height;
      pad.imageData = pad.imageContext.createImageData(width, height);
    }
    const rgba = pad.imageData.data, plane = width * height;
    for (let i = 0; i < plane; i++) {
      const r = pixels[i], g = channels === 3 ? pixels[plane + i] : r, b = channels === 3 ? pixels[2 * plane + i] : r;
      rgba[4 * i] = Math.round(r * 255); rgba[4 * i + 1] = Math.round(g * 255);
      rgba[4 * i + 2] = Math.round(b * 255); rgba[4 * i + 3] = 255;
    }
    pad.imageContext.putImageData(pad.imageData, 0, 0);
    stats.frameMs += performance.now() - started;
    stats.frames += 1;
    canvas.dataset.frames = String(stats.frames);
  };

  pad.drawPad = () => {
    const canvas = pad.padCanvas, context = canvas.getContext("2d");
    const size = canvas.width, range = pad.data.range, scale = size / (2 * range), centre = size / 2;
    if (!pad.colors) { // read once: getComputedStyle in every frame would force a style recalculation
      const style = getComputedStyle(canvas);
      pad.colors = { grid: style.getPropertyValue("--lp-grid").trim() || "#999", dot: style.getPropertyValue("--lp-dot").trim() || "#e4572e" };
    }
    context.clearRect(0, 0, size, size);
    context.strokeStyle = pad.colors.grid;
    context.lineWidth = 1;
    context.beginPath();
    context.moveTo(0, centre); context.lineTo(size, centre); context.moveTo(centre, 0); context.lineTo(centre, size);
    context.stroke();
    for (const sigmas of [1, 2]) { // the prior's one- and two-sigma circles
      context.beginPath();
      context.arc(centre, centre, sigmas * scale, 0, 2 * Math.PI);
      context.stroke();
    }
    const [dx, dy] = pad.data.pad;
    context.fillStyle = pad.colors.dot;
    context.beginPath();
    context.arc(centre + pad.z[dx] * scale, centre - pad.z[dy] * scale, 6, 0, 2 * Math.PI);
    context.fill();
  };

  pad.syncSliders = () => {
    for (const [index, row] of pad.sliders) {
      row.input.value = String(pad.z[index]);
      row.readout.textContent = pad.z[index].toFixed(2);
    }
  };

  pad.refresh = () => {
    pad.draw();
    if (pad.data.pad) pad.drawPad();
  };

  pad.commit = () => {
    // Only settled values go back to Python (each one reruns the script).
    pad.setStateValue("z", Array.from(pad.z, (v) => Math.round(v * 1e4) / 1e4));
  };

  el(".lp-reset").addEventListener("click", () => {
    pad.z.fill(0); pad.syncSliders(); pad.refresh(); pad.commit();
  });
  el(".lp-random").addEventListener("click", () => {
    for (let i = 0; i < pad.z.length; i++) pad.z[i] = gaussian();
    pad.syncSliders(); pad.refresh(); pad.commit();
  });

  let dragging = false;
  const fromPointer = (event) => {
    const rect = pad.padCanvas.getBoundingClientRect(), range = pad.data.range;
    const x = ((event.clientX - rect.left) / rect.width * 2 - 1) * range;
    const y = (1 - (event.clientY - rect.top) / rect.height * 2) * range;
    const [dx, dy] = pad.data.pad;
    pad.z[dx] = Math.max(-range, Math.min(range, x));
    pad.z[dy] = Math.max(-range, Math.min(range, y));
    pad.syncSliders(); pad.refresh();
  };
  pad.padCanvas.addEventListener("pointerdown", (event) => {
    if (!pad.data?.pad || !pad.decoder) return;
    dragging = true;
    pad.padCanvas.setPointerCapture(event.pointerId);
    fromPointer(event);
  });
  pad.padCanvas.addEventListener("pointermove", (event) => { if (dragging) fromPointer(event); });
  const release = () => { if (dragging) { dragging = false; pad.commit(); } };
  pad.padCanvas.addEventListener("pointerup", release);
  pad.padCanvas.addEventListener("pointercancel", release);
  return pad;
}

function buildSliders(pad) {
  const container = pad.root.querySelector(".lp-sliders");
  container.replaceChildren();
  pad.sliders.clear();
  const range = pad.data.range;
  for (const dim of pad.data.dims) {
    const row = document.createElement("label");
    row.className = "lp-row" + (dim.unused ? " lp-unused" : "");
    const name = document.createElement("span");
    name.className = "lp-name";
    name.textContent = dim.label;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: String(-range), max: String(range), step: "0.01" });
    input.dataset.dim = String(dim.index);
    input.setAttribute("aria-label", dim.label);
    const readout = document.createElement("span");
    readout.className = "lp-value";
    input.value = String(pad.z[dim.index]);
    readout.textContent = pad.z[dim.index].toFixed(2);
    // `input` fires for every thumb movement while the mouse is still down: decode right away.
    input.addEventListener("input", () => {
      pad.z[dim.index] = Number(input.value);
      readout.textContent = pad.z[dim.index].toFixed(2);
      pad.refresh();
    });
    input.addEventListener("change", () => pad.commit()); // on release
    row.append(name, input, readout);
    container.append(row);
    pad.sliders.set(dim.index, { input, readout });
  }
}

async function updatePad(pad, data) {
  const newStart = pad.token !== data.token;
  pad.data = data;
  pad.colors = null; // the theme may have changed since the last run
  pad.root.querySelector(".lp-pad-box").hidden = !data.pad;
  if (data.pad) pad.root.querySelector(".lp-pad-label").textContent = `${data.pad_labels[0]} → · ${data.pad_labels[1]} ↑`;
  const status = pad.root.querySelector(".lp-status");
  if (newStart || !pad.z || pad.z.length !== data.z.length) {
    // Python sets z only when it means to (a new model, a data set image, a code from the map);
    // otherwise the browser's own z wins, so a rerun cannot pull the thumb back mid-drag.
    pad.z = Float64Array.from(data.z);
    pad.token = data.token;
  }
  buildSliders(pad);
  if (!registry.decoders.has(data.decoder)) status.textContent = "Loading the decoder…";
  const decoder = await whenDecoder(data.decoder);
  if (pad.data !== data) return; // newer data arrived while we waited
  pad.decoder = decoder;
  status.textContent = "";
  pad.root.querySelector(".lp").dataset.ready = "true";
  pad.image.dataset.engine = decoder.engine;
  pad.refresh();
}

export default function latentLab(component) {
  const { data, parentElement, setStateValue } = component;
  if (!data) return;
  if (data.weights !== undefined) { // the decoder_weights component
    registerDecoder(data);
    return;
  }
  let pad = instances.get(parentElement);
  if (!pad) {
    pad = createPad(parentElement, setStateValue);
    instances.set(parentElement, pad);
  }
  pad.setStateValue = setStateValue;
  updatePad(pad, data).catch((error) => {
    parentElement.querySelector(".lp-status").textContent = `The pad failed: ${error.message}`;
  });
}
