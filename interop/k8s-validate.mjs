// Offline check of the Kubernetes manifests in deploy/kubernetes/ (or any folder laid out
// the same way): `node k8s-validate.mjs DIR`. Contacts nothing; needs the devDependencies
// `kubernetes-models` (the Kubernetes OpenAPI schemas as validators) and `yaml`.
//
// 1. kustomization.yaml: every file named by resources, patches (path), configMapGenerator
//    and secretGenerator exists (a secret source may instead ship as NAME.example, which the
//    user copies; docs/DISTRIBUTED.md); patch and replacement targets name resources that
//    exist.
// 2. Every object of every resource file validates against the schema of its apiVersion
//    and kind, as written and again after the kustomization's JSON 6902 patches and
//    replacements (the subset kustomize features used in deploy/kubernetes).
// 3. The swarm wiring, on both forms: each Indexed Job has parallelism == completions; the
//    worker's `--join HOST:PORT` names a Service and one of its ports, whose selector
//    matches the coordinator's pod and whose targetPort is the port `--listen` binds; the
//    coordinator's `--expect-workers` equals the workers' parallelism.
//
// Prints one JSON line {"done":true,...} and exits 0 when all hold; otherwise prints each
// problem on stderr (file, object, field, what is wrong) and exits 1.

import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";

/** Largest manifest file read (bytes): these are hand-written files. */
const MAX_FILE_BYTES = 1 << 20;

const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

function readText(path, where) {
  if (!existsSync(path)) {
    problem(where, `file ${path} does not exist`);
    return null;
  }
  const text = readFileSync(path, "utf8");
  if (text.length > MAX_FILE_BYTES) {
    problem(where, `file ${path} is larger than ${MAX_FILE_BYTES} bytes`);
    return null;
  }
  return text;
}

const label = (o) => `${o?.kind ?? "?"}/${o?.metadata?.name ?? "?"}`;

/** The model class of apiVersion + kind, or null. */
async function modelOf(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Za-z]+$/.test(kind)) return null;
  try {
    const mod = await import(`kubernetes-models/${apiVersion}`);
    return typeof mod[kind] === "function" ? mod[kind] : null;
  } catch {
    return null;
  }
}

async function validate(object, where) {
  const Model = await modelOf(object?.apiVersion, object?.kind);
  if (!Model) {
    problem(where, `unknown apiVersion/kind ${object?.apiVersion}/${object?.kind}`);
    return;
  }
  try {
    new Model(object).validate();
  } catch (e) {
    const errors = Array.isArray(e.errors) ? e.errors : [{ instancePath: "", message: e.message }];
    for (const err of errors) {
      const field = (err.instancePath || "/").replace(/^\//, "").replaceAll("/", ".") || "(object)";
      const extra = err.params?.allowedValues ? ` (one of ${err.params.allowedValues.join(", ")})` : "";
      const missing = err.params?.missingProperty ? ` (${err.params.missingProperty})` : "";
      problem(where, `${field}: ${err.message}${missing}${extra}`);
    }
  }
}

// ---- field paths: JSON pointers (patches) and kustomize paths (replacements) ----

function pointerParts(path) {
  if (typeof path !== "string" || !path.startsWith("/")) return null;
  return path
    .slice(1)
    .split("/")
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** Applies one JSON 6902 op (add, replace, remove) in place; returns an error or null. */
function applyOp(object, op) {
  const parts = pointerParts(op?.path);
  if (!parts || parts.length === 0) return `bad path ${JSON.stringify(op?.path)}`;
  if (!["add", "replace", "remove"].includes(op.op)) return `unsupported op ${JSON.stringify(op.op)}`;
  let node = object;
  for (const p of parts.slice(0, -1)) {
    node = Array.isArray(node) ? node[Number(p)] : node?.[p];
    if (node === undefined || node === null || typeof node !== "object") return `path ${op.path} does not exist`;
  }
  const last = parts[parts.length - 1];
  if (Array.isArray(node)) {
    const i = last === "-" ? node.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > node.length) return `path ${op.path} does not exist`;
    if (op.op === "add") node.splice(i, 0, op.value);
    else if (i >= node.length) return `path ${op.path} does not exist`;
    else if (op.op === "replace") node[i] = op.value;
    else node.splice(i, 1);
    return null;
  }
  if (op.op !== "add" && !(last in node)) return `path ${op.path} does not exist`;
  if (op.op === "remove") delete node[last];
  else node[last] = op.value;
  return null;
}

/** Splits `a.b.[name=x].c` into steps. */
function kustomizePath(path) {
  if (typeof path !== "string") return null;
  const steps = [];
  for (const m of path.matchAll(/\[([^\]=]+)=([^\]]*)\]|([^.[\]]+)/g)) {
    steps.push(m[3] !== undefined ? { key: m[3] } : { match: [m[1], m[2]] });
  }
  return steps;
}

/** The parent node and last key of a kustomize path, or null when it is not there. */
function locate(object, path) {
  const steps = kustomizePath(path);
  if (!steps || steps.length === 0) return null;
  let node = object;
  for (const step of steps.slice(0, -1)) {
    if (step.key !== undefined) node = Array.isArray(node) ? node[Number(step.key)] : node?.[step.key];
    else node = Array.isArray(node) ? node.find((e) => e?.[step.match[0]] === step.match[1]) : undefined;
    if (node === undefined || node === null) return null;
  }
  const last = steps[steps.length - 1];
  if (last.key === undefined || !(last.key in node)) return null;
  return { node, key: last.key };
}

const selects = (select, o) =>
  (!select?.kind || select.kind === o.kind) && (!select?.name || select.name === o?.metadata?.name);

// ---- the swarm wiring ----

/** The value of `--flag V` or `--flag=V` in args, else undefined. */
function flag(args, name) {
  if (!Array.isArray(args)) return undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (typeof args[i] === "string" && args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
  }
  return undefined;
}

/** `$(VAR)` references expanded from the container's literal env, as the kubelet does. */
function expand(value, container) {
  if (typeof value !== "string") return value;
  return value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name) => {
    const e = (container.env ?? []).find((v) => v?.name === name);
    return typeof e?.value === "string" ? e.value : whole;
  });
}

const containersOf = (o) => o?.spec?.template?.spec?.containers ?? [];
const argv = (c) => [...(c.command ?? []), ...(c.args ?? [])];

function checkWiring(objects, form) {
  const where = (o) => `${form}: ${label(o)}`;
  const jobs = objects.filter((o) => o.kind === "Job");
  const services = objects.filter((o) => o.kind === "Service");
  const indexed = jobs.filter((o) => o.spec?.completionMode === "Indexed");
  for (const job of indexed) {
    if (job.spec.parallelism !== job.spec.completions) {
      problem(
        where(job),
        `spec.parallelism (${job.spec.parallelism}) must equal spec.completions (${job.spec.completions}): every worker runs at once`,
      );
    }
  }
  const workers = indexed.flatMap((job) =>
    containersOf(job)
      .filter((c) => argv(c).includes("worker"))
      .map((c) => ({ job, c })),
  );
  const coordinators = jobs.flatMap((job) =>
    containersOf(job)
      .filter((c) => flag(argv(c), "--expect-workers") !== undefined)
      .map((c) => ({ job, c })),
  );
  if (workers.length === 0) problem(form, "no Indexed Job runs `swarm worker`");
  if (coordinators.length === 0) problem(form, "no Job runs the coordinator (`swarm run ... --expect-workers N`)");
  for (const { job, c } of workers) {
    const join = flag(argv(c), "--join");
    const m = typeof join === "string" ? /^([a-z0-9.-]+):(\d+)$/.exec(join) : null;
    if (!m) {
      problem(where(job), `container ${c.name}: --join must be HOST:PORT, got ${JSON.stringify(join)}`);
      continue;
    }
    const [host, port] = [m[1].split(".")[0], Number(m[2])];
    const service = services.find((s) => s.metadata?.name === host);
    if (!service) {
      problem(where(job), `container ${c.name}: --join ${join}: no Service named ${host} (Services: ${services.map((s) => s.metadata?.name).join(", ")})`);
      continue;
    }
    const sp = (service.spec?.ports ?? []).find((p) => p?.port === port);
    if (!sp) {
      problem(where(job), `container ${c.name}: --join ${join}: Service ${host} has no port ${port}`);
      continue;
    }
    for (const { job: cj, c: cc } of coordinators) {
      const labels = cj.spec?.template?.metadata?.labels ?? {};
      const selector = service.spec?.selector ?? {};
      const selected = Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
      if (!selected) problem(where(service), `spec.selector does not select the coordinator's pod (${label(cj)})`);
      const target = sp.targetPort ?? sp.port;
      const cport = (cc.ports ?? []).find((p) => p?.name === target || p?.containerPort === target);
      const listen = flag(argv(cc), "--listen");
      const lport = typeof listen === "string" ? Number(listen.split(":").pop()) : NaN;
      if (!cport) problem(where(service), `targetPort ${target} is not a port of the coordinator's container ${cc.name}`);
      else if (cport.containerPort !== lport) {
        problem(where(cj), `container ${cc.name}: --listen ${listen} does not bind the Service's targetPort ${target} (containerPort ${cport.containerPort})`);
      }
      const expect = Number(expand(flag(argv(cc), "--expect-workers"), cc));
      if (expect !== job.spec?.parallelism) {
        problem(where(cj), `container ${cc.name}: --expect-workers (${expect}) must equal ${label(job)} spec.parallelism (${job.spec?.parallelism})`);
      }
    }
  }
}

// ---- main ----

async function main() {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: node k8s-validate.mjs DIR   (DIR holds kustomization.yaml)");
    process.exit(2);
  }
  const root = resolve(dir);
  const kfile = join(root, "kustomization.yaml");
  const ktext = readText(kfile, "kustomization.yaml");
  let k = null;
  if (ktext !== null) {
    try {
      k = parseYaml(ktext);
    } catch (e) {
      problem("kustomization.yaml", `not YAML: ${e.message}`);
    }
  }
  if (!k || typeof k !== "object") {
    problem("kustomization.yaml", "missing or not a mapping");
    return finish(0);
  }
  if (k.kind !== "Kustomization") problem("kustomization.yaml", `kind must be Kustomization, got ${k.kind}`);

  const resources = Array.isArray(k.resources) ? k.resources : [];
  if (resources.length === 0) problem("kustomization.yaml", "resources lists no file");
  const objects = [];
  for (const file of resources) {
    if (typeof file !== "string" || file.includes("..") || file.startsWith("/")) {
      problem("kustomization.yaml", `resources: ${JSON.stringify(file)} must be a file inside ${dir}`);
      continue;
    }
    const text = readText(join(root, file), `kustomization.yaml: resources: ${file}`);
    if (text === null) continue;
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors?.length) {
        problem(file, `not YAML: ${doc.errors[0].message}`);
        continue;
      }
      const o = doc.toJS();
      if (o === null || o === undefined) continue;
      objects.push({ file, o });
    }
  }
  for (const { kind, key } of [
    { kind: "configMapGenerator", key: "files" },
    { kind: "configMapGenerator", key: "envs" },
    { kind: "secretGenerator", key: "files" },
    { kind: "secretGenerator", key: "envs" },
  ]) {
    for (const gen of Array.isArray(k[kind]) ? k[kind] : []) {
      for (const entry of Array.isArray(gen?.[key]) ? gen[key] : []) {
        const file = String(entry).split("=").pop();
        const path = join(root, file);
        const example = kind === "secretGenerator" && existsSync(`${path}.example`);
        if (!existsSync(path) && !example) {
          problem("kustomization.yaml", `${kind} ${gen.name}: ${key}: file ${file} does not exist`);
        }
      }
    }
  }

  // The objects as written.
  for (const { file, o } of objects) await validate(o, `${file}: ${label(o)}`);
  checkWiring(objects.map((x) => x.o), "as written");

  // The objects as kustomize builds them (patches, then replacements).
  const built = objects.map(({ file, o }) => ({ file, o: structuredClone(o) }));
  for (const [i, p] of (Array.isArray(k.patches) ? k.patches : []).entries()) {
    const where = `kustomization.yaml: patches[${i}]`;
    let ops = null;
    if (typeof p?.path === "string") {
      const text = readText(join(root, p.path), `${where}: path`);
      if (text !== null) ops = parseYaml(text);
    } else if (typeof p?.patch === "string") {
      try {
        ops = parseYaml(p.patch);
      } catch (e) {
        problem(where, `patch is not YAML: ${e.message}`);
      }
    } else {
      problem(where, "needs `patch` or `path`");
    }
    if (ops === null) continue;
    if (!Array.isArray(ops)) {
      problem(where, "only JSON 6902 patches (a list of ops) are checked here");
      continue;
    }
    const hits = built.filter((x) => selects(p.target, x.o));
    if (hits.length === 0) problem(where, `target ${JSON.stringify(p.target)} matches no resource`);
    for (const x of hits) {
      for (const op of ops) {
        const err = applyOp(x.o, op);
        if (err) problem(`${where}: ${label(x.o)}`, err);
      }
    }
  }
  for (const [i, r] of (Array.isArray(k.replacements) ? k.replacements : []).entries()) {
    const where = `kustomization.yaml: replacements[${i}]`;
    const src = built.find((x) => selects(r?.source, x.o));
    const at = src ? locate(src.o, r.source.fieldPath) : null;
    if (!at) {
      problem(where, `source ${JSON.stringify(r?.source)} is not there`);
      continue;
    }
    const value = at.node[at.key];
    for (const t of Array.isArray(r.targets) ? r.targets : []) {
      const hits = built.filter((x) => selects(t?.select, x.o));
      if (hits.length === 0) problem(where, `target ${JSON.stringify(t?.select)} matches no resource`);
      for (const x of hits) {
        for (const fp of Array.isArray(t.fieldPaths) ? t.fieldPaths : []) {
          const to = locate(x.o, fp);
          if (!to) {
            problem(`${where}: ${label(x.o)}`, `fieldPath ${fp} is not there`);
            continue;
          }
          // kustomize keeps the target's type: a string field gets the value as text.
          to.node[to.key] = typeof to.node[to.key] === "string" ? String(value) : value;
        }
      }
    }
  }
  for (const { file, o } of built) await validate(o, `${file} (kustomized): ${label(o)}`);
  checkWiring(built.map((x) => x.o), "kustomized");
  return finish(objects.length, resources);
}

function finish(count, files = []) {
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.error(`${problems.length} problem(s) in the manifests`);
    process.exit(1);
  }
  console.log(JSON.stringify({ done: true, objects: count, files }));
}

await main();
