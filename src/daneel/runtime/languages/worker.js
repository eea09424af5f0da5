// daneel's Node.js worker: loads a component and answers daneel's calls over a Unix socket.
// Usage: node worker.js SOCKET ENTRY PARAMETERS_JSON
// Frames are `u32 length | u32 id | u32 header length | JSON header | float64 blobs`, little-endian
// (see daneel/runtime/languages/wire.py). It exits when daneel closes the socket.
"use strict";

const net = require("net");
const path = require("path");
const { pathToFileURL } = require("url");

const OPTIONAL = [
  "predict", "transform_input", "transform_output", "route", "aggregate", "send_feedback",
  "health_status", "init_metadata", "tags", "metrics",
];

function fromBlob(described, blobs) {
  const bytes = blobs[described.blob];
  const flat = new Float64Array(bytes.byteLength / 8);
  new Uint8Array(flat.buffer).set(bytes);
  return nest(flat, described.f64, 0, 0)[0];
}

function nest(flat, shape, axis, at) {
  if (axis === shape.length) return [flat[at], at + 1];
  const out = new Array(shape[axis]);
  for (let i = 0; i < shape[axis]; i++) [out[i], at] = nest(flat, shape, axis + 1, at);
  return [out, at];
}

function unvalue(described, blobs) {
  if (described === undefined || described === null) return null;
  return "f64" in described ? fromBlob(described, blobs) : described.json;
}

// A rectangular array of numbers (or a number) as a float64 blob; anything else as JSON.
function value(data, blobs) {
  if (ArrayBuffer.isView(data) && !(data instanceof DataView)) data = Array.from(data);
  const shape = shapeOf(data);
  if (shape === null) return { json: data === undefined ? null : data };
  const flat = new Float64Array(shape.reduce((a, b) => a * b, 1));
  flatten(data, flat, 0);
  blobs.push(Buffer.from(flat.buffer));
  return { f64: shape, blob: blobs.length - 1 };
}

function shapeOf(data) {
  if (typeof data === "number") return [];
  if (!Array.isArray(data) || data.length === 0) return null;
  const inner = shapeOf(data[0]);
  if (inner === null) return null;
  for (let i = 1; i < data.length; i++) {
    const other = shapeOf(data[i]);
    if (other === null || other.length !== inner.length || other.some((n, k) => n !== inner[k])) return null;
  }
  return [data.length, ...inner];
}

function flatten(data, flat, at) {
  if (typeof data === "number") {
    flat[at] = data;
    return at + 1;
  }
  for (const item of data) at = flatten(item, flat, at);
  return at;
}

function frame(id, header, blobs) {
  if (blobs.length) header.blobs = blobs.map((b) => b.length);
  const head = Buffer.from(JSON.stringify(header));
  const size = blobs.reduce((n, b) => n + b.length, 0);
  const prefix = Buffer.alloc(12);
  prefix.writeUInt32LE(8 + head.length + size, 0);
  prefix.writeUInt32LE(id, 4);
  prefix.writeUInt32LE(head.length, 8);
  return Buffer.concat([prefix, head, ...blobs]);
}

async function load(entry, parameters) {
  const loaded = await import(pathToFileURL(path.resolve(entry)).href);
  let exported = loaded.default !== undefined ? loaded.default : loaded;
  if (typeof exported === "object" && exported !== null && Object.keys(loaded).length === 1 && typeof exported.default === "function") {
    exported = exported.default;
  }
  const model = typeof exported === "function" ? new exported(parameters) : exported;
  if (typeof model.init === "function") await model.init(parameters);
  return model;
}

function implemented(model) {
  return OPTIONAL.filter((name) => typeof model[name] === "function");
}

const thenable = (value) => value !== null && typeof value === "object" && typeof value.then === "function";

// Calls the method the request names; its result, or a promise of it where the method is async.
function invoke(model, request, blobs) {
  const method = request.m;
  if (method === "aggregate") return model.aggregate(request.xs.map((x) => unvalue(x, blobs)), request.names);
  if (method === "send_feedback") {
    const truth = unvalue(request.truth, blobs);
    return model.send_feedback(unvalue(request.x, blobs), request.names, request.reward, truth, request.routing);
  }
  if (method === "health_status" || method === "init_metadata") return model[method]();
  return model[method](unvalue(request.x, blobs), request.names, request.meta);
}

// The answer's header and blobs: the result, with tags, metrics and class names after a data method.
function answered(model, method, result) {
  const out = [];
  const header = { x: value(result, out) };
  if (method === "health_status" || method === "route") return [header, out];
  const tags = typeof model.tags === "function" ? model.tags() : undefined;
  const metrics = typeof model.metrics === "function" ? model.metrics() : undefined;
  const names = typeof model.class_names === "function" ? model.class_names() : model.class_names;
  if (Array.isArray(names)) header.names = names;
  if (!thenable(tags) && !thenable(metrics)) {
    if (tags !== undefined) header.tags = tags || {};
    if (metrics !== undefined) header.metrics = metrics || [];
    return [header, out];
  }
  return Promise.all([tags, metrics]).then(([t, m]) => {
    if (t !== undefined) header.tags = t || {};
    if (m !== undefined) header.metrics = m || [];
    return [header, out];
  });
}

// Answers one request, at once where the class's methods are synchronous.
function respond(model, id, request, blobs, reply) {
  const failed = (error) => reply(id, describe(error), []);
  const send = (answer) => reply(id, answer[0], answer[1]);
  const method = request.m;
  if (typeof model[method] !== "function") {
    reply(id, { error: `${method} is not implemented`, unimplemented: true }, []);
    return;
  }
  try {
    const result = invoke(model, request, blobs);
    const answer = thenable(result) ? result.then((r) => answered(model, method, r)) : answered(model, method, result);
    if (thenable(answer)) answer.then(send, failed);
    else send(answer);
  } catch (error) {
    failed(error);
  }
}

function describe(error) {
  if (error instanceof Error) return { error: error.message, type: error.name, stack: error.stack };
  return { error: String(error), type: typeof error };
}

function serve(socketPath, model) {
  const socket = net.createConnection(socketPath);
  const reply = (id, header, blobs) => socket.write(frame(id, header, blobs));
  socket.on("connect", async () => {
    let metadata = null;
    try {
      if (typeof model.init_metadata === "function") metadata = await model.init_metadata();
    } catch (error) {
      reply(0, { error: `init_metadata failed: ${describe(error).error}` }, []);
      return;
    }
    reply(0, { hello: { methods: implemented(model), metadata, runtime: `node ${process.version}` } }, []);
  });
  let pending = Buffer.alloc(0);
  socket.on("data", (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4) {
      const size = pending.readUInt32LE(0);
      if (pending.length < 4 + size) break;
      const body = pending.subarray(4, 4 + size);
      pending = pending.subarray(4 + size);
      const id = body.readUInt32LE(0);
      const headSize = body.readUInt32LE(4);
      const request = JSON.parse(body.toString("utf8", 8, 8 + headSize));
      const blobs = [];
      let at = 8 + headSize;
      for (const n of request.blobs || []) {
        blobs.push(body.subarray(at, at + n));
        at += n;
      }
      respond(model, id, request, blobs, reply);
    }
  });
  socket.on("close", () => process.exit(0));
  socket.on("error", (error) => {
    console.error(`daneel worker: socket error: ${error.message}`);
    process.exit(1);
  });
}

async function main() {
  const [socketPath, entry, parameters] = process.argv.slice(2);
  let model;
  try {
    model = await load(entry, JSON.parse(parameters || "{}"));
  } catch (error) {
    console.error(`daneel worker: loading ${entry} failed: ${error && error.stack ? error.stack : error}`);
    process.exit(3);
  }
  serve(socketPath, model);
}

main();
