// Reference landmarks of face-api.js's FaceLandmark68Net, computed by the real JavaScript.
//
// Run by `scripts/export_faceapi_classifier.py --landmarks --reference` (which decodes the frames,
// finds the Haar boxes and installs the packages); it can be run by hand:
//
//   node scripts/faceapi_landmarks_reference.cjs JOBS.json MODEL_DIR OUT.json
//
// with NODE_PATH pointing at a node_modules that holds @vladmandic/face-api@1.7.15 and
// @tensorflow/tfjs + @tensorflow/tfjs-backend-wasm 4.22.0 (pure JavaScript: the CPU backend is
// used, no native tfjs-node). JOBS.json: [{"id", "raw": path of H*W*3 RGB bytes, "width",
// "height", "box": [x, y, w, h]}, ...]. For each frame it writes "landmarks": the 68 points
// [x, y] in frame pixels that faceLandmark68Net.detectLandmarks gives on the box cropped by
// face-api's own extractFaceTensors (the tensor path: crop clipped at the image borders, padded
// to a centred square with zeros, bilinear resize to 112 px; FaceLandmark68NetBase.postProcess
// maps the net's output back to the crop), shifted by the crop's origin as face-api's
// extendWithFaceLandmarks shifts by the detection box -- what the torch port
// (tests/faceapi_landmarks.py) must reproduce.
'use strict';
const fs = require('fs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const tf = faceapi.tf;

async function main() {
  const [jobsPath, modelDir, outPath] = process.argv.slice(2);
  if (!outPath) throw new Error('usage: node faceapi_landmarks_reference.cjs JOBS.json MODEL_DIR OUT.json');
  await tf.setBackend('cpu');
  await tf.ready();
  await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  const jobs = JSON.parse(fs.readFileSync(jobsPath, 'utf8'));
  const results = [];
  for (const job of jobs) {
    const bytes = fs.readFileSync(job.raw);
    if (bytes.length !== job.width * job.height * 3) throw new Error(`${job.id}: ${bytes.length} bytes, expected ${job.width}x${job.height}x3`);
    const img = tf.tensor3d(new Int32Array(bytes), [job.height, job.width, 3], 'int32');
    const [x, y, w, h] = job.box;
    const rect = new faceapi.Rect(x, y, w, h);
    const clipped = rect.clipAtImageBorders(job.width, job.height);
    const faces = await faceapi.extractFaceTensors(img, [rect]);
    const lm = await faceapi.nets.faceLandmark68Net.detectLandmarks(faces[0]);
    const shifted = lm.shiftBy(clipped.x, clipped.y);
    faces.forEach((t) => t.dispose());
    img.dispose();
    results.push({ id: job.id, box: job.box, landmarks: shifted.positions.map((p) => [p.x, p.y]) });
    process.stderr.write(`${job.id}: ${shifted.positions.length} points\n`);
  }
  const doc = {
    face_api: faceapi.version,
    tfjs: tf.version.tfjs,
    backend: tf.getBackend(),
    node: process.version,
    results,
  };
  fs.writeFileSync(outPath, JSON.stringify(doc));
}

main().catch((e) => { process.stderr.write(`error: ${e.message}\n`); process.exit(1); });
