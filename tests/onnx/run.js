// Scores an ONNX model in ONNX Runtime for the end-to-end tests (tests/e2e/test_onnx.py).
// Usage: node run.js MODEL.onnx < inputs.json
// inputs.json: {"NAME": {"type": "float64" | "string", "data": [...]}, ...}, each a column of N values
// (null = NaN for float64), fed as a [N, 1] tensor.
// Prints {"inputs": [input names], "outputs": {"NAME": {"type", "dims", "data"}}}
// (NaN and infinities print as null).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const session = await ort.InferenceSession.create(process.argv[2]);
  const spec = JSON.parse(fs.readFileSync(0, 'utf8'));
  const feeds = {};
  for (const [name, col] of Object.entries(spec)) {
    const n = col.data.length;
    if (col.type === 'string') {
      feeds[name] = new ort.Tensor('string', col.data.map(String), [n, 1]);
    } else {
      feeds[name] = new ort.Tensor('float64', Float64Array.from(col.data, (v) => (v === null ? NaN : v)), [n, 1]);
    }
  }
  const results = await session.run(feeds);
  const outputs = {};
  for (const [name, t] of Object.entries(results)) {
    outputs[name] = {type: t.type, dims: t.dims, data: Array.from(t.data, (v) => (typeof v === 'bigint' ? Number(v) : v))};
  }
  const inputs = session.inputNames;
  process.stdout.write(JSON.stringify({inputs, outputs}));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
