#!/usr/bin/env node
// Checks every request the GitHub client sent in the tests against GitHub's official REST
// OpenAPI description (npm package @octokit/openapi, pinned in scripts/github-openapi/):
// the path matches an operation's path template for that method (on api.github.com and on
// the oldest GitHub Enterprise Server the package describes), path and query parameters
// are declared and valid, the JSON body validates against the operation's requestBody
// schema with no undeclared fields, and the headers are GitHub's (bearer auth, User-Agent,
// X-GitHub-Api-Version, an Accept the operation documents, a JSON Content-Type).
//
// Usage: node scripts/check-github-openapi.mjs REQUESTS_DIR
//   REQUESTS_DIR holds the JSON files tests/it/forge_github.rs writes (one per test, set by
//   POWERNODE_GITHUB_REQUEST_LOG). The packages come from POWERNODE_OPENAPI_DIR (default
//   ~/.cache/powernode-github-openapi), installed by scripts/setup-github-openapi.sh.
// Before reading REQUESTS_DIR it checks deliberately wrong requests and fails if any passes.

import { createRequire } from "node:module";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { homedir } from "node:os";
import { fileURLToPath } from "node:url";

const API_VERSION = "2022-11-28";
// Every operation the client uses: a run that no longer exercises one of them fails.
const CLIENT_OPERATIONS = [
  "repos/get", "users/get-authenticated", "repos/create-commit-status", "pulls/create", "pulls/list",
  "pulls/get", "issues/create-comment", "issues/list-comments", "issues/update-comment",
  "actions/create-workflow-dispatch", "apps/get-authenticated", "apps/get-repo-installation",
  "apps/create-installation-access-token", "checks/create", "checks/update",
];

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = process.env.POWERNODE_OPENAPI_DIR || join(homedir(), ".cache", "powernode-github-openapi");
const pinned = JSON.parse(readFileSync(join(here, "github-openapi", "package.json"), "utf8")).dependencies;
const installed = join(pkgDir, "node_modules", "@octokit", "openapi");
const die = (msg) => { console.error(`check-github-openapi: ${msg}`); process.exit(2); };
if (!existsSync(join(installed, "package.json"))) die(`no @octokit/openapi in ${pkgDir}: run scripts/setup-github-openapi.sh`);
const version = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")).version;
if (version !== pinned["@octokit/openapi"]) die(`${pkgDir} has @octokit/openapi ${version}, ${pinned["@octokit/openapi"]} is pinned: run scripts/setup-github-openapi.sh`);
const Ajv = createRequire(join(pkgDir, "package.json"))("ajv");
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const ajvQuery = new Ajv({ strict: false, allErrors: true, validateFormats: false, coerceTypes: "array" });

// github.com, and the oldest Enterprise Server in the package (what an old GHES accepts).
const generated = join(installed, "generated");
const ghes = readdirSync(generated).filter((f) => /^ghes-[\d.]+\.json$/.test(f))
  .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))[0];
const specs = ["api.github.com.json", ghes].map((file) => loadSpec(join(generated, file), file.replace(/\.json$/, "")));

function loadSpec(file, name) {
  const spec = JSON.parse(readFileSync(file, "utf8"));
  const basePath = new URL(spec.servers[0].url.replace(/\{[^}]+\}/g, "x")).pathname.replace(/\/$/, "");
  const ops = [];
  for (const [template, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!op || typeof op !== "object" || !op.operationId) continue;
      const params = [...(item.parameters || []), ...(op.parameters || [])].map((p) => deref(spec, p));
      const regex = new RegExp("^" + template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{([^}]+)\}/g, (_, n) =>
        params.find((p) => p.in === "path" && p.name === n)?.["x-multi-segment"] ? "(.+)" : "([^/]+)") + "$");
      const literal = template.replace(/\{[^}]+\}/g, "").length;
      ops.push({ template, method: method.toUpperCase(), op, params, regex, literal, names: [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]) });
    }
  }
  ops.sort((a, b) => b.literal - a.literal);
  return { name, spec, basePath, ops };
}

// Resolves `$ref`s (local ones only, as the package has), guarding against cycles.
function deref(spec, node, seen = new Set()) {
  if (Array.isArray(node)) return node.map((n) => deref(spec, n, seen));
  if (!node || typeof node !== "object") return node;
  if (node.$ref) {
    if (seen.has(node.$ref)) return {};
    const target = node.$ref.slice(2).split("/").reduce((o, k) => o[k.replace(/~1/g, "/").replace(/~0/g, "~")], spec);
    return deref(spec, target, new Set([...seen, node.$ref]));
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, deref(spec, v, seen)]));
}

// Fields the schema does not declare. GitHub ignores them silently, so a misspelled field
// would otherwise go unnoticed.
function undeclared(value, schema, at, out) {
  if (!schema || typeof schema !== "object") return;
  const branches = [schema, ...["allOf", "anyOf", "oneOf"].flatMap((k) => schema[k] || [])];
  if (Array.isArray(value)) {
    const items = branches.map((b) => b.items).filter(Boolean);
    if (items.length) value.forEach((v, i) => undeclared(v, { anyOf: items }, `${at}/${i}`, out));
    return;
  }
  if (!value || typeof value !== "object") return;
  const declared = branches.filter((b) => b.properties);
  const open = declared.length === 0 || branches.some((b) => (b.additionalProperties !== undefined && b.additionalProperties !== false) || b.patternProperties);
  for (const [k, v] of Object.entries(value)) {
    const subs = declared.map((b) => b.properties[k]).filter(Boolean);
    if (!subs.length && !open) out.push(`${at}/${k} is not a field of this operation's request body`);
    if (subs.length) undeclared(v, { anyOf: subs }, `${at}/${k}`, out);
  }
}

const compiled = new Map();
function validator(instance, key, schema) {
  if (!compiled.has(key)) compiled.set(key, instance.compile(schema));
  return compiled.get(key);
}
const ajvErrors = (errors) => (errors || []).map((e) => `${e.instancePath || "(body)"} ${e.message}${e.params?.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : ""}`);

// The problems with one recorded request against one spec; [] when it conforms.
function check(req, s) {
  const problems = [];
  const url = new URL(req.path, "http://fake");
  if (!url.pathname.startsWith(req.base_path)) return [`path ${url.pathname} is not under the API base ${req.base_path}`];
  if (req.base_path && req.base_path !== s.basePath && s.basePath) problems.push(`API base ${req.base_path} is not ${s.basePath}`);
  let path = url.pathname.slice(req.base_path.length) || "/";
  // GitHub's own Link headers point at /repositories/{id}/..., an alias of /repos/{owner}/{repo}/...
  path = path.replace(/^\/repositories\/\d+\//, "/repos/{owner}/{repo}/");
  const method = req.method.toUpperCase();
  const candidates = s.ops.filter((o) => o.method === method && o.regex.test(path));
  if (!candidates.length) return [`no ${method} operation has a path template matching ${path}`];
  const o = candidates[0];
  const values = Object.fromEntries(o.names.map((n, i) => [n, decodeURIComponent(path.match(o.regex)[i + 1])]));
  for (const p of o.params.filter((p) => p.in === "path")) {
    if (values[p.name] === "{owner}" || values[p.name] === "{repo}") continue;
    const v = validator(ajvQuery, `${s.name} ${o.template} path ${p.name}`, { type: "object", properties: { v: p.schema } });
    if (!v({ v: values[p.name] })) problems.push(`path parameter ${p.name}=${values[p.name]}: ${ajvErrors(v.errors).join("; ")}`);
  }
  const query = {};
  for (const [k, val] of url.searchParams) query[k] = val;
  for (const [k, val] of Object.entries(query)) {
    const p = o.params.find((p) => p.in === "query" && p.name === k);
    if (!p) { problems.push(`query parameter ${k} is not declared by ${o.op.operationId}`); continue; }
    const v = validator(ajvQuery, `${s.name} ${o.template} ${method} query ${k}`, { type: "object", properties: { v: p.schema } });
    if (!v({ v: val })) problems.push(`query parameter ${k}=${val}: ${ajvErrors(v.errors).join("; ")}`);
  }
  for (const p of o.params.filter((p) => p.in === "query" && p.required && !(p.name in query))) problems.push(`required query parameter ${p.name} is missing`);
  const h = req.headers || {};
  if (!/^(Bearer|token) \S+$/.test(h.authorization || "")) problems.push("Authorization is not `Bearer TOKEN`");
  if (!h["user-agent"]) problems.push("no User-Agent (GitHub answers 403 without one)");
  if (h["x-github-api-version"] !== API_VERSION) problems.push(`X-GitHub-Api-Version is ${h["x-github-api-version"]}, not ${API_VERSION}`);
  // Custom media types are documented in each operation's description.
  const media = ["application/vnd.github+json", "application/json", ...[...(o.op.description || "").matchAll(/\*\*`(application\/vnd\.github\.[^`]+)`\*\*/g)].map((m) => m[1])];
  if (!media.includes(h.accept)) problems.push(`Accept ${h.accept} is not one ${o.op.operationId} documents (${media.join(", ")})`);
  const rb = o.op.requestBody && deref(s.spec, o.op.requestBody);
  const hasBody = req.body !== null && req.body !== undefined;
  if (!rb && hasBody) problems.push(`${o.op.operationId} takes no request body`);
  if (rb?.required && !hasBody) problems.push(`${o.op.operationId} requires a request body`);
  if (rb && hasBody) {
    const type = (h["content-type"] || "").split(";")[0].trim();
    const content = rb.content?.[type];
    if (!content) problems.push(`Content-Type ${type || "(none)"} is not one of ${Object.keys(rb.content || {}).join(", ")}`);
    else {
      const v = validator(ajv, `${s.name} ${o.template} ${method} body ${type}`, content.schema);
      if (!v(req.body)) problems.push(...ajvErrors(v.errors).map((e) => `body ${e}`));
      undeclared(req.body, content.schema, "body", problems);
    }
  }
  req.operation = o.op.operationId;
  return problems;
}

const checkAll = (req) => specs.flatMap((s) => check(req, s).map((p) => `[${s.name}] ${p}`));

// The checker must be able to fail: deliberately wrong requests, each of which it must reject.
const headers = { authorization: "Bearer t", "user-agent": "powernode/0", "x-github-api-version": API_VERSION, accept: "application/vnd.github+json", "content-type": "application/json" };
const good = { base_path: "", method: "POST", path: `/repos/o/r/statuses/${"a".repeat(40)}`, headers, body: { state: "pending", context: "ci", description: "d", target_url: "https://x" } };
const wrong = {
  "status state `running`": { ...good, body: { ...good.body, state: "running" } },
  "misspelled `target_ulr`": { ...good, body: { state: "success", target_ulr: "https://x" } },
  "pull request with `titel`": { ...good, path: "/repos/o/r/pulls", body: { titel: "t", head: "h", base: "main" } },
  "undeclared query `sort_by`": { ...good, method: "GET", path: "/repos/o/r/issues/1/comments?per_page=100&sort_by=id", body: null },
  "per_page not a number": { ...good, method: "GET", path: "/repos/o/r/issues/1/comments?per_page=all", body: null },
  "no such path": { ...good, method: "GET", path: "/repos/o/r/pull/1", body: null },
  "comment id not a number": { ...good, method: "PATCH", path: "/repos/o/r/issues/comments/abc", body: { body: "x" } },
  "diff as the wrong media type": { ...good, method: "GET", path: "/repos/o/r/pulls/1", headers: { ...headers, accept: "text/x-diff" }, body: null },
  "old API version": { ...good, headers: { ...headers, "x-github-api-version": "2021-01-01" } },
  "body on a GET": { ...good, method: "GET", path: "/user" },
  "GHES request outside /api/v3": { ...good, base_path: "/api", path: `/api/repos/o/r/statuses/${"a".repeat(40)}` },
  "check run with 51 annotations": { ...good, path: "/repos/o/r/check-runs", body: { name: "ci", head_sha: "a".repeat(40), output: { title: "t", summary: "s", annotations: Array.from({ length: 51 }, (_, i) => ({ path: "a.rs", start_line: i + 1, end_line: i + 1, annotation_level: "notice", message: "m" })) } } },
  "check run status `running`": { ...good, method: "PATCH", path: "/repos/o/r/check-runs/1", body: { status: "running" } },
};
const selfTest = [];
if (checkAll(structuredClone(good)).length) selfTest.push(`a correct request was rejected: ${checkAll(structuredClone(good)).join("; ")}`);
for (const [name, req] of Object.entries(wrong)) if (!checkAll(structuredClone(req)).length) selfTest.push(`the wrong request "${name}" passed`);
if (selfTest.length) die(`the checker itself is broken:\n  ${selfTest.join("\n  ")}`);

const dir = process.argv[2];
if (!dir) die("usage: check-github-openapi.mjs REQUESTS_DIR");
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".json")).sort() : [];
if (!files.length) die(`no recorded requests in ${dir}: did the GitHub tests run with POWERNODE_GITHUB_REQUEST_LOG=${dir}?`);
let count = 0;
const failures = [];
const covered = new Set();
for (const file of files) {
  for (const req of JSON.parse(readFileSync(join(dir, file), "utf8"))) {
    count++;
    const problems = checkAll(req);
    if (req.operation) covered.add(req.operation);
    if (problems.length) failures.push(`${file}: ${req.method} ${req.path}\n    ${problems.join("\n    ")}`);
  }
}
for (const op of CLIENT_OPERATIONS) if (!covered.has(op)) failures.push(`no recorded request for ${op}: the tests no longer exercise it`);
if (failures.length) {
  console.error(`check-github-openapi: ${failures.length} problem(s) against @octokit/openapi ${version}:\n${failures.join("\n")}`);
  process.exit(1);
}
console.log(`check-github-openapi: all ${count} requests from ${files.length} test logs conform to @octokit/openapi ${version} (${specs.map((s) => s.name).join(", ")}); ${Object.keys(wrong).length} wrong requests rejected`);
