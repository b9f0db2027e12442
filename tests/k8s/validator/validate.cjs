#!/usr/bin/env node
// Validates rendered Kubernetes manifests (a multi-document YAML stream, e.g.
// `kubectl kustomize k8s/overlays/gpu`) against the Kubernetes API schema.
//
//   node validate.cjs --modules DIR [FILE]      (FILE or stdin)
//
// DIR is a node_modules folder with the pinned packages of package.json
// (scripts/setup: .cache/npm/k8s-validator/node_modules). For each object:
//  1. its apiVersion/kind must be a built-in Kubernetes type
//     (kubernetes-models: the OpenAPI schema of the Kubernetes API compiled
//     to validators);
//  2. the schema's own check: types, required fields, enums, formats;
//  3. no unknown fields, as `kubectl apply --validate=strict` rejects them:
//     a field the schema does not define (a typo such as `imagePullPolicyy`)
//     would otherwise be dropped silently by the API server. Found by
//     watching which fields the compiled validator reads: it reads every
//     field its schema defines and enumerates maps (labels, data); an object
//     field it never read is unknown.
// Prints one line per problem and a summary; exits 0 when all objects are
// valid, 1 when any is not, 2 on bad usage or unreadable input.
'use strict';

const fs = require('fs');
const path = require('path');

function usage(message) {
  process.stderr.write(`validate.cjs: ${message}\nusage: node validate.cjs --modules NODE_MODULES_DIR [FILE]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let modules = '';
let file = '';
for (let i = 0; i < args.length; ++i) {
  if (args[i] === '--modules') modules = args[++i] || '';
  else if (!file) file = args[i];
  else usage(`unexpected argument ${args[i]}`);
}
if (!modules) usage('--modules is required');
const load = (name) => {
  try {
    return require(path.join(path.resolve(modules), name));
  } catch (e) {
    process.stderr.write(`validate.cjs: cannot load ${name} from ${modules} (${e.message}); HINT: run scripts/setup\n`);
    process.exit(2);
  }
};
const YAML = load('yaml');

// kubernetes-models lays its classes out as GROUP/VERSION/KIND (the core
// group as VERSION/KIND).
function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !/^[A-Za-z0-9]+$/.test(kind)) return null;
  const parts = apiVersion.split('/');
  const dir = parts.length === 1 ? parts[0] : `${parts[0]}/${parts[1]}`;
  if (!/^[a-z0-9.]+(\/[a-z0-9]+)?$/.test(dir)) return null;
  try {
    const mod = require(path.join(path.resolve(modules), 'kubernetes-models', dir, kind));
    return mod[kind] || null;
  } catch (e) {
    return null;
  }
}

// Wraps `value` so that reads are recorded: `read` gets "path/field" for
// every field read, `enumerated` every object path whose keys were listed.
function track(value, where, read, enumerated) {
  if (value === null || typeof value !== 'object') return value;
  const cache = new Map();
  return new Proxy(value, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string') return v;
      if (Object.prototype.hasOwnProperty.call(target, prop)) {
        read.add(`${where}/${prop}`);
        if (v !== null && typeof v === 'object') {
          if (!cache.has(prop)) cache.set(prop, track(v, `${where}/${prop}`, read, enumerated));
          return cache.get(prop);
        }
      }
      return v;
    },
    ownKeys(target) {
      enumerated.add(where);
      return Reflect.ownKeys(target);
    },
  });
}

// Fields of `value` (at `where`) that no validator read.
function unknownFields(value, where, read, enumerated, out) {
  if (value === null || typeof value !== 'object') return;
  const isArray = Array.isArray(value);
  for (const key of Object.keys(value)) {
    const p = `${where}/${key}`;
    if (!isArray && !enumerated.has(where) && !read.has(p)) {
      out.push(p);
      continue;
    }
    unknownFields(value[key], p, read, enumerated, out);
  }
}

let text;
try {
  text = fs.readFileSync(file || 0, 'utf8');
} catch (e) {
  usage(`cannot read ${file || 'stdin'}: ${e.message}`);
}
let docs;
try {
  docs = YAML.parseAllDocuments(text);
} catch (e) {
  usage(`not YAML: ${e.message}`);
}

let objects = 0;
const problems = [];
for (const doc of docs) {
  if (doc.errors && doc.errors.length) {
    problems.push(`YAML: ${doc.errors[0].message}`);
    continue;
  }
  const obj = doc.toJS();
  if (obj === null || obj === undefined) continue;  // an empty document
  ++objects;
  const name = `${obj.kind || '?'} ${(obj.metadata && obj.metadata.name) || '?'}`;
  const Model = modelClass(obj.apiVersion, obj.kind);
  if (!Model) {
    problems.push(`${name}: apiVersion ${obj.apiVersion} kind ${obj.kind} is not a built-in Kubernetes type`);
    continue;
  }
  // Base64 in Secret data may be wrapped (kustomize wraps long values at 70
  // columns); the API server's decoder skips the line breaks, the schema's
  // "byte" format does not.
  for (const field of ['data', 'binaryData']) {
    const map = (obj.kind === 'Secret' || obj.kind === 'ConfigMap') && obj[field];
    if (!map || typeof map !== 'object' || (obj.kind === 'ConfigMap' && field === 'data')) continue;
    for (const key of Object.keys(map)) {
      if (typeof map[key] === 'string') map[key] = map[key].replace(/[\r\n]/g, '');
    }
  }
  const read = new Set();
  const enumerated = new Set();
  try {
    Model.prototype.validate.call(track(obj, '', read, enumerated));
  } catch (e) {
    problems.push(`${name}: ${e.message}`);
    continue;
  }
  const unknown = [];
  unknownFields(obj, '', read, enumerated, unknown);
  for (const p of unknown) problems.push(`${name}: unknown field ${p.slice(1).replace(/\//g, '.')}`);
}

for (const p of problems) process.stdout.write(`INVALID ${p}\n`);
process.stdout.write(`${objects} objects, ${problems.length} problems\n`);
process.exit(problems.length === 0 && objects > 0 ? 0 : 1);
