// Reference probabilities of face-api.js's FaceExpressionNet, computed by the real JavaScript.
//
// Run by `scripts/export_faceapi_classifier.py --reference` (which decodes the frames, finds the
// Haar boxes and installs the packages); it can be run by hand:
//
//   node scripts/faceapi_reference.cjs JOBS.json MODEL_DIR OUT.json
//
// with NODE_PATH pointing at a node_modules that holds @vladmandic/face-api@1.7.15 and
// @tensorflow/tfjs + @tensorflow/tfjs-backend-wasm 4.22.0 (pure JavaScript: the CPU backend is
// used, no native tfjs-node). JOBS.json: [{"id", "raw": path of H*W*3 RGB bytes, "width",
// "height", "box": [x, y, w, h]}, ...]. For each frame it writes
//   * "probs": FaceExpressionNet on the box cropped by face-api's own extractFaceTensors (the
//     tensor path: crop clipped at the image borders, padded to a square with zeros, bilinear
//     resize to 112 px) -- what the torch port (tests/faceapi_classifier.py) must reproduce;
//   * "ssd_box", "ssd_probs": face-api's own pipeline (SSD MobileNet v1 detection, then the
//     same expression net on its box), to show how the Haar box compares with face-api's own.
'use strict';
const fs = require('fs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const tf = faceapi.tf;

async function main() {
  const [jobsPath, modelDir, outPath] = process.argv.slice(2);
  if (!outPath) throw new Error('usage: node faceapi_reference.cjs JOBS.json MODEL_DIR OUT.json');
  await tf.setBackend('cpu');
  await tf.ready();
  await faceapi.nets.faceExpressionNet.loadFromDisk(modelDir);
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
  const jobs = JSON.parse(fs.readFileSync(jobsPath, 'utf8'));
  const results = [];
  for (const job of jobs) {
    const bytes = fs.readFileSync(job.raw);
    if (bytes.length !== job.width * job.height * 3) throw new Error(`${job.id}: ${bytes.length} bytes, expected ${job.width}x${job.height}x3`);
    const img = tf.tensor3d(new Int32Array(bytes), [job.height, job.width, 3], 'int32');
    const [x, y, w, h] = job.box;
    const faces = await faceapi.extractFaceTensors(img, [new faceapi.Rect(x, y, w, h)]);
    const expr = await faceapi.nets.faceExpressionNet.predictExpressions(faces[0]);
    const probs = faceapi.FACE_EXPRESSION_LABELS.map((k) => expr[k]);
    faces.forEach((t) => t.dispose());
    const det = await faceapi.detectSingleFace(img, new faceapi.SsdMobilenetv1Options({ minConfidence: 0.3 })).withFaceExpressions();
    const out = { id: job.id, box: job.box, probs };
    if (det) {
      const b = det.detection.box;
      out.ssd_box = [b.x, b.y, b.width, b.height].map((v) => Math.round(v * 100) / 100);
      out.ssd_score = det.detection.score;
      out.ssd_probs = faceapi.FACE_EXPRESSION_LABELS.map((k) => det.expressions[k]);
    }
    img.dispose();
    results.push(out);
    process.stderr.write(`${job.id}: ${faceapi.FACE_EXPRESSION_LABELS[probs.indexOf(Math.max(...probs))]}\n`);
  }
  const doc = {
    labels: faceapi.FACE_EXPRESSION_LABELS,
    face_api: faceapi.version,
    tfjs: tf.version.tfjs,
    backend: tf.getBackend(),
    node: process.version,
    results,
  };
  fs.writeFileSync(outPath, JSON.stringify(doc));
}

main().catch((e) => { process.stderr.write(`error: ${e.message}\n`); process.exit(1); });
