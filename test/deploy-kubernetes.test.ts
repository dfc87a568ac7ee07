// Offline checks of deploy/kubernetes/ (docs/deployment.md "Kubernetes"): the
// base and the hostnetwork overlay rendered by `kubectl kustomize` (when
// installed) equal what these tests check; every manifest against the
// Kubernetes API schemas of the kubernetes-models
// package (its JSON-schema validators for types and required keys, and its
// TypeScript interfaces, compiled with excess-property checks, for unknown
// or misspelt keys); the hostnetwork/ overlay's patches applied and checked
// the same way; the references between the manifests (Service selectors,
// ConfigMap keys, ports, the member set's DNS name, the OTLP endpoint); the
// Pod Security "restricted" rules for the base; the agent container's user,
// bounding set and no_new_privs applied to a copy of node with the image's
// file capability (it runs and binds its ports, and would not run without
// NET_BIND_SERVICE); the collector gateway's
// configs as collector-config/otel-collector.yaml is checked; and the agent
// file and mesh of the ConfigMap through `otel-twamp agent --check`, with a
// local DNS server playing the cluster's.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot } from './helpers/peers.js';
import { startDnsServer } from './helpers/dnsServer.js';
import { parseAgentConfig } from '../src/config/load.js';
import { parseMesh } from '../src/config/mesh.js';

const root = repoRoot();
/** The base (kubectl apply -k deploy/kubernetes/base); overlays sit beside it, as kustomize requires. */
const dir = join(root, 'deploy', 'kubernetes', 'base');

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
function obj(v: unknown, where: string): Obj {
  assert.ok(isObj(v), `${where} must be a mapping, got ${JSON.stringify(v)}`);
  return v;
}
function list(v: unknown, where: string): Obj[] {
  assert.ok(Array.isArray(v) && v.every(isObj), `${where} must be a list of mappings`);
  return v as Obj[];
}

interface Manifest { file: string; doc: Obj; apiVersion: string; kind: string; name: string; namespace?: string }

function readYamlDocs(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs.map((d, i) => {
    assert.equal(d.errors.length, 0, `${file} document ${i}: ${d.errors.map(String).join('; ')}`);
    return obj(d.toJS(), `${file} document ${i}`);
  }).filter((d) => Object.keys(d).length > 0);
}

function toManifest(file: string, doc: Obj): Manifest {
  const meta = obj(doc.metadata, `${file}: metadata`);
  assert.equal(typeof doc.apiVersion, 'string', `${file}: apiVersion`);
  assert.equal(typeof doc.kind, 'string', `${file}: kind`);
  return {
    file, doc, apiVersion: doc.apiVersion as string, kind: doc.kind as string, name: String(meta.name),
    ...(meta.namespace !== undefined ? { namespace: String(meta.namespace) } : {}),
  };
}

/** The base: the resources kustomization.yaml lists, in its order. */
function kustomization(at: string): Obj {
  return obj(parse(readFileSync(join(at, 'kustomization.yaml'), 'utf8')), `${at}/kustomization.yaml`);
}

function baseManifests(): Manifest[] {
  const k = kustomization(dir);
  return (k.resources as string[]).flatMap((f) => readYamlDocs(join(dir, f)).map((d) => toManifest(f, d)));
}

function find(ms: Manifest[], kind: string, name?: string): Manifest {
  const m = ms.find((x) => x.kind === kind && (name === undefined || x.name === name));
  assert.ok(m, `a ${kind}${name ? ` ${name}` : ''}`);
  return m;
}

// ---------------------------------------------------------------------------
// kubernetes-models: the schema validators and the TypeScript interfaces

/** kubernetes-models module of an apiVersion/kind: "apps/v1" → apps/v1/DaemonSet, "v1" → v1/Service. */
const modelPath = (apiVersion: string, kind: string) => `kubernetes-models/${apiVersion}/${kind}`;

/** Validates against the JSON schema of the kind; throws the validator's message. */
async function schemaValidate(apiVersion: string, kind: string, doc: Obj): Promise<void> {
  const mod = (await import(modelPath(apiVersion, kind))) as Record<string, new (d: Obj) => { validate(): void }>;
  const Model = mod[kind];
  assert.ok(Model, `kubernetes-models has no ${apiVersion} ${kind}`);
  new Model(doc).validate();
}

/**
 * Compiles each document as an object literal of the kind's interface
 * (excess-property checks reject keys the API does not have, at any depth);
 * returns the diagnostics, one line each, naming the document.
 */
function typeCheck(docs: { where: string; apiVersion: string; kind: string; doc: Obj }[]): string[] {
  const file = join(root, '__deploy_kubernetes_check__.ts');
  const lines: string[] = [];
  const where: string[] = [];
  docs.forEach((d, i) => {
    lines.push(`import type { I${d.kind} as T${i} } from '${modelPath(d.apiVersion, d.kind)}';`);
  });
  docs.forEach((d, i) => {
    where[lines.length] = d.where;
    lines.push(`export const m${i}: T${i} = ${JSON.stringify(d.doc)};`);
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((diag) => {
    const msg = ts.flattenDiagnosticMessageText(diag.messageText, '\n');
    if (diag.file?.fileName !== file || diag.start === undefined) return msg;
    const { line } = diag.file.getLineAndCharacterOfPosition(diag.start);
    return `${where[line] ?? `line ${line + 1}`}: ${msg}`;
  });
}

// ---------------------------------------------------------------------------
// RFC 6902 JSON patch (add, replace, remove), for the overlay's patches

function applyJsonPatch(doc: Obj, ops: Obj[]): Obj {
  const out = structuredClone(doc);
  for (const op of ops) {
    const path = String(op.path).split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = path.pop()!;
    let at: unknown = out;
    for (const p of path) {
      at = Array.isArray(at) ? at[Number(p)] : (at as Obj)[p];
      assert.ok(at !== undefined && at !== null, `patch ${String(op.op)} ${String(op.path)}: ${p} does not exist`);
    }
    assert.ok(typeof at === 'object' && at !== null, `patch ${String(op.op)} ${String(op.path)}: no object to change`);
    if (Array.isArray(at)) {
      const i = last === '-' ? at.length : Number(last);
      if (op.op === 'add') at.splice(i, 0, op.value);
      else if (op.op === 'replace') { assert.ok(i < at.length, `patch replace ${String(op.path)}: nothing to replace`); at[i] = op.value; }
      else if (op.op === 'remove') { assert.ok(i < at.length, `patch remove ${String(op.path)}: nothing to remove`); at.splice(i, 1); }
      else assert.fail(`patch op ${String(op.op)} is not used here`);
      continue;
    }
    const parent = at as Obj;
    if (op.op === 'add') {
      parent[last] = op.value;
    } else if (op.op === 'replace') {
      assert.ok(last in parent, `patch replace ${String(op.path)}: nothing to replace`);
      parent[last] = op.value;
    } else if (op.op === 'remove') {
      assert.ok(last in parent, `patch remove ${String(op.path)}: nothing to remove`);
      delete parent[last];
    } else {
      assert.fail(`patch op ${String(op.op)} is not used here`);
    }
  }
  return out;
}

/** The overlay's resources: the base with the overlay's JSON patches applied to their targets. */
function overlayManifests(overlay: string): Manifest[] {
  const at = join(dir, '..', overlay);
  const k = kustomization(at);
  assert.deepEqual(k.resources, ['../base'], `${overlay}: the base is its one resource`);
  const ms = baseManifests();
  for (const p of list(k.patches, `${overlay}: patches`)) {
    const target = obj(p.target, `${overlay}: patch target`);
    const patch = parse(readFileSync(join(at, String(p.path)), 'utf8')) as unknown;
    assert.ok(Array.isArray(patch) && patch.every(isObj), `${overlay}/${String(p.path)}: a JSON patch (a list of operations)`);
    const apiVersion = target.group ? `${String(target.group)}/${String(target.version)}` : String(target.version);
    const i = ms.findIndex((m) => m.kind === target.kind && m.name === target.name && m.apiVersion === apiVersion);
    assert.ok(i >= 0, `${overlay}: patch target ${apiVersion} ${String(target.kind)} ${String(target.name)} is in the base`);
    ms[i] = { ...ms[i]!, file: `${overlay}/${String(p.path)} on ${ms[i]!.file}`, doc: applyJsonPatch(ms[i]!.doc, patch as Obj[]) };
  }
  return ms;
}

/** A copy of the base DaemonSet with a misspelt container key: what the type check must find. */
function misspelt(): Manifest {
  const ds = baseManifests().find((m) => m.kind === 'DaemonSet')!;
  const doc = structuredClone(ds.doc);
  ((((doc.spec as Obj).template as Obj).spec as Obj).containers as Obj[])[0]!.imagePulPolicy = 'Always';
  return { ...ds, doc };
}

/**
 * One compilation (the slow part: the library's declarations) for the base,
 * the overlay and the misspelt copy; diagnostics by where: "base …",
 * "hostnetwork …" or "typo".
 */
let typeDiagnostics: string[] | undefined;
function typeCheckAll(): string[] {
  typeDiagnostics ??= typeCheck([
    ...baseManifests().map((m) => ({ ...m, where: `base ${m.file} ${m.kind} ${m.name}` })),
    ...overlayManifests('hostnetwork').map((m) => ({ ...m, where: `hostnetwork ${m.file} ${m.kind} ${m.name}` })),
    { ...misspelt(), where: 'typo' },
  ]);
  return typeDiagnostics;
}
const diagnosticsOf = (prefix: string) => typeCheckAll().filter((d) => d.startsWith(`${prefix} `) || d.startsWith(`${prefix}:`));

// ---------------------------------------------------------------------------

const podSpec = (m: Manifest): Obj => obj(obj(obj(m.doc.spec, 'spec').template, 'spec.template').spec, 'spec.template.spec');
const podLabels = (m: Manifest): Obj => obj(obj(obj(obj(m.doc.spec, 'spec').template, 'spec.template').metadata, 'template.metadata').labels, 'template labels');
const container = (m: Manifest, i = 0): Obj => list(podSpec(m).containers, `${m.name}: containers`)[i]!;
const configMapData = (m: Manifest): Record<string, string> => obj(m.doc.data, `${m.name}: data`) as Record<string, string>;
const containerPort = (c: Obj, name: string): Obj => {
  const p = list(c.ports, 'ports').find((x) => x.name === name);
  assert.ok(p, `container port ${name}`);
  return p;
};

describe('deploy/kubernetes/base manifests', () => {
  const ms = baseManifests();

  it('kustomization.yaml lists every manifest of the directory, each once, all in namespace otel-twamp', () => {
    const k = kustomization(dir);
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
    assert.deepEqual([...(k.resources as string[])].sort(), files);
    for (const m of ms) {
      if (m.kind === 'Namespace') assert.equal(m.name, 'otel-twamp');
      else assert.equal(m.namespace, 'otel-twamp', `${m.file}: ${m.kind} ${m.name}`);
    }
    assert.deepEqual(ms.map((m) => m.kind).sort(), ['ConfigMap', 'ConfigMap', 'DaemonSet', 'Deployment', 'Namespace', 'Service', 'Service']);
    assert.ok(!ms.some((m) => /Role|ServiceAccount/.test(m.kind)), 'no RBAC: membership comes from DNS');
  });

  it('every manifest passes the Kubernetes API schema (kubernetes-models)', async () => {
    for (const m of ms) {
      await assert.doesNotReject(schemaValidate(m.apiVersion, m.kind, m.doc), `${m.file}: ${m.kind} ${m.name}`);
    }
  });

  it('every manifest has only keys of the Kubernetes API types (kubernetes-models interfaces, compiled)', () => {
    assert.deepEqual(diagnosticsOf('base'), []);
    // Nothing unattributed either (a model that does not resolve, say).
    assert.deepEqual(typeCheckAll().filter((d) => !/^(base|hostnetwork|typo)[ :]/.test(d)), []);
  });

  it('the checks find a wrong type, a missing required key and a misspelt key', async () => {
    const ds = find(ms, 'DaemonSet');
    const wrongType = structuredClone(ds.doc);
    ((podSpec({ ...ds, doc: wrongType }).containers as Obj[])[0]!.ports as Obj[])[0]!.containerPort = '8620';
    await assert.rejects(schemaValidate(ds.apiVersion, ds.kind, wrongType), /containerPort must be integer/);
    const noSelector = structuredClone(ds.doc);
    delete (noSelector.spec as Obj).selector;
    await assert.rejects(schemaValidate(ds.apiVersion, ds.kind, noSelector), /must have required property '?selector'?/);
    const diags = diagnosticsOf('typo');
    assert.equal(diags.length, 1, diags.join('\n'));
    assert.match(diags[0]!, /^typo: .*'"?imagePulPolicy"?' does not exist in type 'IContainer'/s);
  });

  it('the agent DaemonSet runs the image of the Dockerfile with its config from the ConfigMap', () => {
    const ds = find(ms, 'DaemonSet', 'otel-twamp-agent');
    const c = container(ds);
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(c.image, `otel-twamp:${version}`, 'the image the Dockerfile builds, tagged with the package version');
    assert.ok(existsSync(join(root, 'Dockerfile')));
    const images = list(kustomization(dir).images, 'images');
    assert.deepEqual(images.map((i) => i.name), ['otel-twamp'], 'kustomization images: rewrites the agent image');
    // The Dockerfile's ENTRYPOINT is otel-twamp: args are the subcommand.
    assert.deepEqual(c.args, ['agent', '--config', '/etc/otel-twamp/agent.yaml']);
    const mount = list(c.volumeMounts, 'volumeMounts').find((v) => v.mountPath === '/etc/otel-twamp');
    assert.ok(mount, 'the config directory is mounted');
    const vol = list(podSpec(ds).volumes, 'volumes').find((v) => v.name === mount.name)!;
    const cm = find(ms, 'ConfigMap', String(obj(vol.configMap, 'volume configMap').name));
    const data = configMapData(cm);
    assert.ok('agent.yaml' in data, 'agent.yaml is a key of the ConfigMap');
    const agent = parseAgentConfig(data['agent.yaml']!, '/etc/otel-twamp/agent.yaml', {});
    assert.ok(agent.mesh, 'the agent file has mesh:');
    // mesh.source is relative to the agent file: a key of the same ConfigMap.
    assert.equal(agent.mesh.source, '/etc/otel-twamp/mesh.yaml');
    assert.ok('mesh.yaml' in data, 'mesh.yaml is a key of the ConfigMap');
    assert.equal(agent.mesh.self, undefined, 'every pod picks its member by local address');
    assert.equal(podSpec(ds).automountServiceAccountToken, false);
  });

  it('membership: the headless Service selects the agent pods, its DNS name is the mesh member set, its port the reflector port', () => {
    const ds = find(ms, 'DaemonSet', 'otel-twamp-agent');
    const svc = find(ms, 'Service', 'otel-twamp-mesh');
    const spec = obj(svc.doc.spec, 'Service spec');
    assert.equal(spec.clusterIP, 'None', 'headless: one A record per pod');
    assert.equal(spec.publishNotReadyAddresses, true, 'a starting pod is in DNS, so it finds itself among the members');
    for (const [k, v] of Object.entries(obj(spec.selector, 'selector'))) assert.equal(podLabels(ds)[k], v, `selector ${k}`);
    assert.deepEqual(obj(obj(ds.doc.spec, 'spec').selector, 'selector').matchLabels, spec.selector);

    const data = configMapData(find(ms, 'ConfigMap', 'otel-twamp-agent'));
    const mesh = parseMesh(data['mesh.yaml']!, '/etc/otel-twamp/mesh.yaml');
    assert.equal(mesh.members.length, 0, 'no member written out: all from DNS');
    assert.equal(mesh.memberSets.length, 1);
    const set = mesh.memberSets[0]!;
    assert.equal(set.dns, `${svc.name}.${String(svc.namespace)}.svc.cluster.local`);
    assert.equal(set.type, 'A');
    assert.deepEqual(mesh.groups, [{ type: 'mesh', members: [set.name], test: 'voice' }]);
    const port = list(spec.ports, 'ports')[0]!;
    assert.equal(port.port, set.port, 'Service port = the members\' TWAMP-Control port');
    assert.equal(containerPort(container(ds), String(port.targetPort)).containerPort, set.port, 'the container port it targets too');
    assert.ok(set.port >= 1024, 'an unprivileged port: the agent holds no capability (see the DaemonSet comment for 862)');
  });

  it('the agent pushes OTLP to the collector Service, whose ports are the receivers\' and the exporter\'s', () => {
    const data = configMapData(find(ms, 'ConfigMap', 'otel-twamp-agent'));
    const agent = parseAgentConfig(data['agent.yaml']!, '/etc/otel-twamp/agent.yaml', {});
    assert.ok(agent.otlp, 'otlp: in the agent file');
    const url = new URL(agent.otlp.endpoint);
    const svc = find(ms, 'Service', 'otel-collector');
    assert.equal(url.hostname, `${svc.name}.${String(svc.namespace)}.svc.cluster.local`);
    const ports = list(obj(svc.doc.spec, 'spec').ports, 'ports');
    const byPort = (n: number) => ports.find((p) => p.port === n);
    assert.equal(byPort(Number(url.port))?.name, 'otlp-http');
    assert.equal(url.pathname, '/v1/metrics');
    const dep = find(ms, 'Deployment', 'otel-collector');
    for (const [k, v] of Object.entries(obj(obj(svc.doc.spec, 'spec').selector, 'selector'))) assert.equal(podLabels(dep)[k], v, `selector ${k}`);
    const cfg = obj(parse(configMapData(find(ms, 'ConfigMap', 'otel-collector'))['config.yaml']!), 'config.yaml');
    const protocols = obj(obj(obj(cfg.receivers, 'receivers').otlp, 'otlp').protocols, 'protocols');
    const c = container(dep);
    for (const [proto, name] of [['http', 'otlp-http'], ['grpc', 'otlp-grpc']] as const) {
      const port = Number(String(obj(protocols[proto], proto).endpoint).split(':').pop());
      assert.equal(containerPort(c, name).containerPort, port, `${name} container port`);
      assert.equal(byPort(port)?.targetPort, name, `Service port ${port}`);
    }
    const promPort = Number(String(obj(obj(cfg.exporters, 'exporters').prometheus, 'prometheus').endpoint).split(':').pop());
    assert.equal(containerPort(c, 'prometheus').containerPort, promPort);
    assert.equal(byPort(promPort)?.targetPort, 'prometheus');
    assert.equal(obj(obj(svc.doc.metadata, 'metadata').annotations, 'annotations')['prometheus.io/port'], String(promPort));
    // The agent's own Prometheus endpoint is the container's metrics port, which the probes use.
    const ds = find(ms, 'DaemonSet', 'otel-twamp-agent');
    assert.equal(containerPort(container(ds), 'metrics').containerPort, agent.prometheus?.port);
  });

  it('the agent puts the node and pod into the OTLP resource from the downward API', () => {
    const c = container(find(ms, 'DaemonSet', 'otel-twamp-agent'));
    const env = list(c.env, 'env');
    const value = (n: string) => env.find((e) => e.name === n);
    const attrs = String(value('OTEL_RESOURCE_ATTRIBUTES')?.value);
    for (const m of attrs.matchAll(/\$\(([A-Z_]+)\)/g)) {
      const i = env.findIndex((e) => e.name === m[1]);
      assert.ok(i >= 0 && i < env.indexOf(value('OTEL_RESOURCE_ATTRIBUTES')!), `$(${m[1]!}) is defined before it is used`);
    }
    assert.match(attrs, /k8s\.node\.name=\$\(K8S_NODE_NAME\)/);
    assert.equal(obj(obj(value('K8S_NODE_NAME')!.valueFrom, 'valueFrom').fieldRef, 'fieldRef').fieldPath, 'spec.nodeName');
  });

  it('the base pods meet Pod Security "restricted"; the agent keeps only NET_BIND_SERVICE (node carries it as a file capability)', () => {
    const ns = find(ms, 'Namespace');
    assert.equal(obj(obj(ns.doc.metadata, 'metadata').labels, 'labels')['pod-security.kubernetes.io/enforce'], 'restricted');
    for (const kind of ['DaemonSet', 'Deployment']) {
      const w = find(ms, kind);
      const spec = podSpec(w);
      const psc = obj(spec.securityContext, `${w.name}: pod securityContext`);
      assert.equal(obj(psc.seccompProfile, 'seccompProfile').type, 'RuntimeDefault');
      assert.equal(psc.runAsNonRoot, true);
      assert.ok(Number(psc.runAsUser) > 0);
      for (const k of ['hostNetwork', 'hostPID', 'hostIPC']) assert.ok(!spec[k], `${w.name}: no ${k}`);
      assert.equal(spec.volumes === undefined || list(spec.volumes, 'volumes').every((v) => v.hostPath === undefined), true, 'no hostPath');
      for (const c of list(spec.containers, 'containers')) {
        const sc = obj(c.securityContext, `${w.name}/${String(c.name)}: securityContext`);
        assert.equal(sc.allowPrivilegeEscalation, false);
        assert.equal(sc.readOnlyRootFilesystem, true);
        assert.ok(!sc.privileged);
        const caps = obj(sc.capabilities, 'capabilities');
        assert.deepEqual(caps.drop, ['ALL']);
        assert.ok(caps.add === undefined || JSON.stringify(caps.add) === '["NET_BIND_SERVICE"]', 'restricted allows adding NET_BIND_SERVICE only');
        for (const p of list(c.ports, 'ports')) assert.equal(p.hostPort, undefined, 'no hostPort');
        assert.ok(!obj(c.resources, 'resources').limits || !(obj(obj(c.resources, 'resources').limits, 'limits').cpu), `${w.name}: no CPU limit (throttling shows as delay)`);
      }
    }
    // The image's node has cap_net_bind_service=+ep: with it out of the bounding set, execve fails with EPERM.
    assert.match(readFileSync(join(root, 'Dockerfile'), 'utf8'), /setcap cap_net_bind_service=\+ep/);
    const caps = obj(obj(container(find(ms, 'DaemonSet')).securityContext, 'securityContext').capabilities, 'capabilities');
    assert.deepEqual(caps.add, ['NET_BIND_SERVICE']);
    for (const p of list(container(find(ms, 'DaemonSet')).ports, 'ports')) {
      assert.ok(Number(p.containerPort) >= 1024, `port ${String(p.containerPort)}: no privilege escalation, so the file capability does not apply`);
    }
  });
});

describe('deploy/kubernetes/hostnetwork overlay', () => {
  const ms = overlayManifests('hostnetwork');

  it('runs the agents in the nodes\' network namespace with cluster DNS, in a namespace that allows it', () => {
    const spec = podSpec(find(ms, 'DaemonSet', 'otel-twamp-agent'));
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet', 'the member set\'s Service name must still resolve');
    const labels = obj(obj(find(ms, 'Namespace').doc.metadata, 'metadata').labels, 'labels');
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'privileged');
    // The rest of the base is untouched.
    const base = baseManifests();
    for (const m of ms.filter((x) => x.kind !== 'DaemonSet' && x.kind !== 'Namespace')) {
      assert.deepEqual(m.doc, find(base, m.kind, m.name).doc);
    }
  });

  it('the patched manifests pass the schemas and the type check', async () => {
    for (const m of ms) await assert.doesNotReject(schemaValidate(m.apiVersion, m.kind, m.doc), m.file);
    assert.deepEqual(diagnosticsOf('hostnetwork'), []);
  });
});

describe('deploy/kubernetes with kustomize (kubectl kustomize, when kubectl is installed)', () => {
  const byName = (ms: { kind: string; name: string; doc: Obj }[]) => new Map(ms.map((m) => [`${m.kind}/${m.name}`, m.doc]));
  for (const [what, at, expected] of [
    ['base', dir, () => baseManifests()],
    ['hostnetwork', join(dir, '..', 'hostnetwork'), () => overlayManifests('hostnetwork')],
  ] as const) {
    it(`${what}: renders, to the manifests these tests check (the overlay's patches applied alike)`, (t) => {
      const r = spawnSync('kubectl', ['kustomize', at], { encoding: 'utf8', timeout: 60_000 });
      if (r.error) {
        console.warn('\n!!!!! SKIPPING kustomize build: kubectl not installed !!!!!\n');
        t.skip('kubectl not installed');
        return;
      }
      assert.equal(r.status, 0, r.stderr);
      const rendered = parseAllDocuments(r.stdout).map((d) => toManifest(`kustomize ${what}`, obj(d.toJS(), 'document')));
      assert.deepEqual(byName(rendered), byName(expected()));
    });
  }
});

describe('the agent DaemonSet\'s security context on this kernel (as root, with setcap and setpriv)', () => {
  it('runs the image\'s node (cap_net_bind_service=+ep) and binds its ports; without NET_BIND_SERVICE in the bounding set node cannot run; 862 needs allowPrivilegeEscalation', (t) => {
    if (process.getuid?.() !== 0) { t.skip('needs root (setcap, setpriv --reuid)'); return; }
    for (const tool of ['setcap', 'setpriv']) {
      if (spawnSync(tool, ['--help'], { encoding: 'utf8' }).error) {
        console.warn(`\n!!!!! SKIPPING the security-context check: ${tool} not installed (libcap2-bin, util-linux) !!!!!\n`);
        t.skip(`${tool} not installed`);
        return;
      }
    }
    const ds = find(baseManifests(), 'DaemonSet', 'otel-twamp-agent');
    const psc = obj(podSpec(ds).securityContext, 'pod securityContext');
    const c = container(ds);
    const sc = obj(c.securityContext, 'securityContext');
    const caps = obj(sc.capabilities, 'capabilities');
    assert.deepEqual(caps.drop, ['ALL']);
    const bounding = ['-all', ...((caps.add as string[] | undefined) ?? []).map((k) => `+${k.toLowerCase()}`)].join(',');
    const ports = list(c.ports, 'ports').map((p) => Number(p.containerPort));
    // The image: node with the file capability the Dockerfile sets.
    const dir = mkdtempSync(join(tmpdir(), 'otel-twamp-caps-'));
    try {
      chmodSync(dir, 0o755);
      const node = join(dir, 'node');
      copyFileSync(process.execPath, node);
      chmodSync(node, 0o755);
      const set = spawnSync('setcap', ['cap_net_bind_service=+ep', node], { encoding: 'utf8' });
      assert.equal(set.status, 0, set.stderr);
      /**
       * node run as the container's user, the bounding set and no_new_privs as
       * the kubelet asks the runtime; started from a shell that holds no
       * capability, as a runtime starts a non-root container's process.
       * Prints, per port, whether a bind is allowed (EADDRINUSE comes after the
       * privilege check, so it counts as allowed).
       */
      const run = (bset: string, noNewPrivs: boolean) => {
        const script = `const net = require('node:net'); const out = {}; let n = ${JSON.stringify([862, ...ports])};
          const cap = require('node:fs').readFileSync('/proc/self/status', 'utf8').match(/^CapEff:\\s*(\\w+)/m)[1];
          let left = n.length;
          for (const p of n) { const s = net.createServer(); const done = (v) => { out[p] = v; s.close(); if (--left === 0) console.log(JSON.stringify({ cap, out })); };
            s.on('error', (e) => done(e.code === 'EADDRINUSE' ? 'allowed' : e.code)); s.listen(p, '127.0.0.1', () => done('allowed')); }`;
        return spawnSync('setpriv', ['--reuid', String(psc.runAsUser), '--regid', String(psc.runAsGroup), '--clear-groups', '--bounding-set', bset,
          '/bin/sh', '-c', `exec ${noNewPrivs ? 'setpriv --no-new-privs ' : ''}"$0" -e "$1"`, node, script], { encoding: 'utf8', timeout: 20_000 });
      };
      const escalation = run(bounding, false);
      assert.equal(escalation.status, 0, escalation.stderr);
      const esc = JSON.parse(escalation.stdout) as { cap: string; out: Record<string, string> };
      if (BigInt(`0x${esc.cap}`) === 0n) {
        t.skip(`file capabilities do not apply under ${tmpdir()} (nosuid?)`);
        return;
      }
      const unprivilegedFrom = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
      // The manifest as written: runs, binds its ports, holds no capability.
      const asWritten = run(bounding, sc.allowPrivilegeEscalation === false);
      assert.equal(asWritten.status, 0, asWritten.stderr);
      const w = JSON.parse(asWritten.stdout) as { cap: string; out: Record<string, string> };
      for (const p of ports) assert.equal(w.out[p], 'allowed', `port ${p}`);
      assert.equal(BigInt(`0x${w.cap}`), 0n, 'the file capability is not granted (allowPrivilegeEscalation: false)');
      if (unprivilegedFrom > 862) assert.equal(w.out[862], 'EACCES', 'so 862 is out of reach');
      // The 862 recipe of the DaemonSet's comment: allowPrivilegeEscalation: true.
      assert.equal(esc.out[862], 'allowed');
      // Dropping NET_BIND_SERVICE too: the kernel refuses to execute node.
      const none = run('-all', true);
      assert.notEqual(none.status, 0);
      assert.match(none.stderr, /Operation not permitted/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------
// The collector gateway's configs (as test/collector-config.test.ts checks collector-config/otel-collector.yaml)

/** Component types of the OpenTelemetry Collector contrib distribution that these configs may use. */
const CONTRIB = {
  receivers: ['otlp'],
  processors: ['batch', 'memory_limiter'],
  exporters: ['prometheus', 'prometheusremotewrite', 'debug'],
  extensions: ['health_check'],
} as const;

const componentType = (id: string) => id.split('/')[0]!;

function checkCollectorConfig(cfg: Obj, where: string): void {
  const service = obj(cfg.service, `${where}: service`);
  const pipelines = obj(service.pipelines, `${where}: service.pipelines`);
  const used = new Set<string>();
  for (const [name, raw] of Object.entries(pipelines)) {
    const pl = obj(raw, `${where}: pipeline ${name}`);
    assert.ok(['metrics', 'traces', 'logs'].includes(componentType(name)), `${where}: pipeline type of ${name}`);
    for (const kind of ['receivers', 'processors', 'exporters'] as const) {
      if (pl[kind] === undefined && kind === 'processors') continue;
      const ids = pl[kind] as string[];
      assert.ok(Array.isArray(ids) && (kind === 'processors' || ids.length > 0), `${where}: ${name}.${kind}`);
      const declared = obj(cfg[kind], `${where}: ${kind}`);
      for (const id of ids) {
        assert.ok(id in declared, `${where}: pipeline ${name} uses ${kind}.${id}, which is not declared`);
        used.add(`${kind}.${id}`);
      }
    }
  }
  for (const id of (service.extensions as string[] | undefined) ?? []) {
    assert.ok(id in obj(cfg.extensions, `${where}: extensions`), `${where}: service uses extensions.${id}, which is not declared`);
    used.add(`extensions.${id}`);
  }
  for (const kind of ['receivers', 'processors', 'exporters', 'extensions'] as const) {
    for (const id of Object.keys(cfg[kind] === undefined ? {} : obj(cfg[kind], kind))) {
      assert.ok(used.has(`${kind}.${id}`), `${where}: ${kind}.${id} is declared but not used`);
      assert.ok((CONTRIB[kind] as readonly string[]).includes(componentType(id)), `${where}: ${kind}.${id} is not a component of otelcol-contrib`);
    }
  }
  const metrics = obj(pipelines.metrics, `${where}: metrics pipeline`);
  assert.deepEqual(metrics.receivers, ['otlp']);
  const processors = metrics.processors as string[];
  assert.equal(processors[0], 'memory_limiter', `${where}: memory_limiter first (it refuses data before the rest of the pipeline)`);
  assert.ok(processors.includes('batch'));
  const protocols = obj(obj(obj(cfg.receivers, 'receivers').otlp, 'otlp').protocols, 'protocols');
  assert.match(String(obj(protocols.http, 'otlp http').endpoint), /^0\.0\.0\.0:4318$/);
  assert.match(String(obj(protocols.grpc, 'otlp grpc').endpoint), /^0\.0\.0\.0:4317$/);
  for (const exp of metrics.exporters as string[]) {
    if (componentType(exp) === 'debug') continue;
    assert.equal(obj(obj(obj(cfg.exporters, 'exporters')[exp], exp).resource_to_telemetry_conversion, 'resource_to_telemetry_conversion').enabled, true,
      `${where}: ${exp} keeps the resource attributes (host.name, k8s.node.name) as labels`);
  }
}

describe('deploy/kubernetes collector gateway', () => {
  const ms = baseManifests();
  const data = configMapData(find(ms, 'ConfigMap', 'otel-collector'));
  const dep = find(ms, 'Deployment', 'otel-collector');

  it('config.yaml: OTLP in, the prometheus exporter out', () => {
    const cfg = obj(parse(data['config.yaml']!), 'config.yaml');
    checkCollectorConfig(cfg, 'config.yaml');
    assert.deepEqual(obj(obj(obj(cfg.service, 'service').pipelines, 'pipelines').metrics, 'metrics').exporters, ['prometheus']);
  });

  it('config-remote-write.yaml: OTLP in, Prometheus remote write out, its endpoint from an env variable the Deployment sets', () => {
    const cfg = obj(parse(data['config-remote-write.yaml']!), 'config-remote-write.yaml');
    checkCollectorConfig(cfg, 'config-remote-write.yaml');
    const rw = obj(obj(cfg.exporters, 'exporters').prometheusremotewrite, 'prometheusremotewrite');
    const m = /^\$\{env:([A-Z_]+)\}$/.exec(String(rw.endpoint));
    assert.ok(m, 'endpoint from ${env:…}');
    const env = list(container(dep).env, 'env').find((e) => e.name === m[1]);
    assert.ok(env && /^https?:\/\/.+\/api\/v1\/write$/.test(String(env.value)), `${m[1]!} is set`);
  });

  it('the Deployment runs the contrib image (pinned) on a config key of the ConfigMap, health-checked on the health_check port', () => {
    const c = container(dep);
    assert.match(String(c.image), /^otel\/opentelemetry-collector-contrib:\d+\.\d+\.\d+$/);
    const arg = (c.args as string[]).find((a) => a.startsWith('--config='))!;
    const mount = list(c.volumeMounts, 'volumeMounts')[0]!;
    assert.ok(arg.startsWith(`--config=${String(mount.mountPath)}/`));
    const key = arg.slice(`--config=${String(mount.mountPath)}/`.length);
    assert.ok(key in data, `${key} is a key of the ConfigMap`);
    const vol = list(podSpec(dep).volumes, 'volumes').find((v) => v.name === mount.name)!;
    assert.equal(obj(vol.configMap, 'configMap').name, 'otel-collector');
    // The commented alternative names the other key.
    assert.ok(readFileSync(join(dir, 'collector-deployment.yaml'), 'utf8').includes(`--config=${String(mount.mountPath)}/config-remote-write.yaml`));
    const cfg = obj(parse(data[key]!), key);
    const health = Number(String(obj(obj(cfg.extensions, 'extensions').health_check, 'health_check').endpoint).split(':').pop());
    assert.equal(containerPort(c, 'health').containerPort, health);
    assert.equal(obj(obj(c.readinessProbe, 'readinessProbe').httpGet, 'httpGet').port, 'health');
    assert.equal(obj(dep.doc.spec, 'spec').replicas, 1, 'one replica with the prometheus exporter (docs/deployment.md "Scaling")');
  });
});

// ---------------------------------------------------------------------------

function run(args: string[], timeoutMs = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

describe('deploy/kubernetes agent ConfigMap through otel-twamp agent --check', { timeout: 60_000 }, () => {
  it('the agent file and mesh pass --check; with the Service resolving to this host and a peer, this pod runs a reflector and one sender', async () => {
    const data = configMapData(find(baseManifests(), 'ConfigMap', 'otel-twamp-agent'));
    const mesh = parseMesh(data['mesh.yaml']!, 'mesh.yaml');
    const set = mesh.memberSets[0]!;
    const dns = await startDnsServer();
    try {
      // The cluster DNS, played by a local server: the Service name has two pods, this host and a peer.
      dns.set(set.dns, { A: ['127.0.0.1', '192.0.2.7'] });
      const tmp = mkdtempSync(join(tmpdir(), 'otel-twamp-k8s-'));
      writeFileSync(join(tmp, 'mesh.yaml'), data['mesh.yaml']!);
      // The only change: where DNS questions go (in the cluster, the pod's resolv.conf).
      const agentText = data['agent.yaml']!.replace(/^mesh:\n/m, `mesh:\n  dns_servers: ["${dns.address}"]\n`);
      assert.notEqual(agentText, data['agent.yaml'], 'dns_servers added under mesh:');
      writeFileSync(join(tmp, 'agent.yaml'), agentText);
      const main = join(root, 'dist', 'src', 'cli', 'main.js');
      const r = await run([main, 'agent', '--check', '--config', join(tmp, 'agent.yaml')]);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /this agent is "127\.0\.0\.1" \(found by host name or local address\): 1 sender\(s\), a reflector/);
      assert.match(r.stdout, new RegExp(`member set ${set.name}: A ${set.dns.replaceAll('.', '\\.')} → 2 member\\(s\\)`));
      assert.match(r.stdout, new RegExp(`reflector mesh/reflector on 0\\.0\\.0\\.0:${set.port}`));
      assert.match(r.stdout, new RegExp(`sender mesh/voice/127\\.0\\.0\\.1->192\\.0\\.2\\.7 to 192\\.0\\.2\\.7:${set.port} test voice \\(every 30 s`));
      assert.ok(dns.queries.some((q) => q === `A ${set.dns}`), dns.queries.join(', '));
    } finally {
      await dns.close();
    }
  });
});
