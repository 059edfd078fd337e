// What the API server does to a Pod on create before storing it, for the Kubernetes API
// double: strict field validation (kubectl 1.32 sends fieldValidation=Strict by default),
// the validation errors most likely to bite a generated manifest, and the defaults the
// server fills in. Pure functions; a subset of the real rules, each shaped like the real
// message so kubectl prints what it would print against a cluster.
type Obj = Record<string, unknown>;

const FIELDS: Record<string, string[]> = {
  pod: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  metadata: [
    'name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
    'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields',
  ],
  spec: [
    'volumes', 'initContainers', 'containers', 'ephemeralContainers', 'restartPolicy', 'terminationGracePeriodSeconds',
    'activeDeadlineSeconds', 'dnsPolicy', 'nodeSelector', 'serviceAccountName', 'serviceAccount', 'automountServiceAccountToken',
    'nodeName', 'hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace', 'securityContext', 'imagePullSecrets', 'hostname',
    'subdomain', 'affinity', 'schedulerName', 'tolerations', 'hostAliases', 'priorityClassName', 'priority', 'dnsConfig',
    'readinessGates', 'runtimeClassName', 'enableServiceLinks', 'preemptionPolicy', 'overhead', 'topologySpreadConstraints',
    'setHostnameAsFQDN', 'os', 'hostUsers', 'schedulingGates', 'resourceClaims', 'resources',
  ],
  container: [
    'name', 'image', 'command', 'args', 'workingDir', 'ports', 'envFrom', 'env', 'resources', 'resizePolicy', 'restartPolicy',
    'volumeMounts', 'volumeDevices', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'terminationMessagePath',
    'terminationMessagePolicy', 'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty',
  ],
  securityContext: [
    'capabilities', 'privileged', 'seLinuxOptions', 'windowsOptions', 'runAsUser', 'runAsGroup', 'runAsNonRoot',
    'readOnlyRootFilesystem', 'allowPrivilegeEscalation', 'procMount', 'seccompProfile', 'appArmorProfile',
  ],
  toleration: ['key', 'operator', 'value', 'effect', 'tolerationSeconds'],
  env: ['name', 'value', 'valueFrom'],
};

const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/** Unknown fields, as the strict decoder names them ("spec.hostPid", "spec.containers[0].imagePullPolcy"). */
export function unknownFields(pod: Obj): string[] {
  const out: string[] = [];
  const check = (o: unknown, kind: string, at: string) => {
    if (!isObj(o)) return;
    for (const k of Object.keys(o)) if (!FIELDS[kind]!.includes(k)) out.push(at ? `${at}.${k}` : k);
  };
  check(pod, 'pod', '');
  check(pod.metadata, 'metadata', 'metadata');
  const spec = pod.spec;
  check(spec, 'spec', 'spec');
  if (isObj(spec)) {
    for (const list of ['containers', 'initContainers'] as const) {
      (Array.isArray(spec[list]) ? (spec[list] as unknown[]) : []).forEach((c, i) => {
        check(c, 'container', `spec.${list}[${i}]`);
        if (isObj(c)) {
          check(c.securityContext, 'securityContext', `spec.${list}[${i}].securityContext`);
          (Array.isArray(c.env) ? c.env : []).forEach((e, j) => check(e, 'env', `spec.${list}[${i}].env[${j}]`));
        }
      });
    }
    (Array.isArray(spec.tolerations) ? spec.tolerations : []).forEach((t, i) => check(t, 'toleration', `spec.tolerations[${i}]`));
  }
  return out;
}

export interface Cause {
  reason: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported' | 'FieldValueDuplicate';
  message: string;
  field: string;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

const req = (field: string): Cause => ({ reason: 'FieldValueRequired', message: 'Required value', field });
const bad = (field: string, value: unknown, why: string): Cause => ({
  reason: 'FieldValueInvalid',
  message: `Invalid value: ${JSON.stringify(value)}: ${why}`,
  field,
});

/** Validation errors for a Pod about to be created (name already resolved from generateName). */
export function validatePod(pod: Obj): Cause[] {
  const out: Cause[] = [];
  const meta = (pod.metadata ?? {}) as Obj;
  const name = meta.name as string | undefined;
  if (!name) out.push({ ...req('metadata.name'), message: 'Required value: name or generateName is required' });
  else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name))
    out.push(bad('metadata.name', name, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
  for (const [k, v] of Object.entries((meta.labels ?? {}) as Obj)) {
    if (!LABEL_NAME.test(k) || k.split('/').pop()!.length > 63) out.push(bad('metadata.labels', k, 'name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', and must start and end with an alphanumeric character'));
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v))
      out.push(bad(`metadata.labels`, v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
  }
  const spec = (pod.spec ?? {}) as Obj;
  const containers = Array.isArray(spec.containers) ? (spec.containers as Obj[]) : [];
  if (!containers.length) out.push(req('spec.containers'));
  const seen = new Set<string>();
  containers.forEach((c, i) => {
    const at = `spec.containers[${i}]`;
    const cname = c?.name as string | undefined;
    if (!cname) out.push(req(`${at}.name`));
    else if (!DNS1123_LABEL.test(cname) || cname.length > 63)
      out.push(bad(`${at}.name`, cname, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
    else if (seen.has(cname)) out.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${cname}"`, field: `${at}.name` });
    if (cname) seen.add(cname);
    if (!c?.image) out.push(req(`${at}.image`));
    if (c?.command !== undefined && !Array.isArray(c.command)) out.push(bad(`${at}.command`, c.command, 'must be a list of strings'));
  });
  const rp = spec.restartPolicy;
  if (rp !== undefined && !['Always', 'OnFailure', 'Never'].includes(String(rp)))
    out.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(rp)}: supported values: "Always", "OnFailure", "Never"`, field: 'spec.restartPolicy' });
  const ads = spec.activeDeadlineSeconds;
  if (ads !== undefined && (!Number.isInteger(ads) || (ads as number) < 1 || (ads as number) > 2147483647))
    out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${ads}: must be between 1 and 2147483647, inclusive`, field: 'spec.activeDeadlineSeconds' });
  if (spec.nodeName !== undefined && (typeof spec.nodeName !== 'string' || !DNS1123_SUBDOMAIN.test(spec.nodeName)))
    out.push(bad('spec.nodeName', spec.nodeName, 'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters'));
  return out;
}

/** The message of a 422 Invalid Status: `Pod "x" is invalid: <field>: <message>` (several in [..]). */
export function invalidMessage(name: string, causes: Cause[]): string {
  const parts = causes.map((c) => `${c.field}: ${c.message}`);
  return `Pod "${name}" is invalid: ${parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`}`;
}

function imagePullPolicy(image: string): string {
  const last = image.slice(image.lastIndexOf('/') + 1);
  if (image.includes('@')) return 'IfNotPresent';
  return !last.includes(':') || last.endsWith(':latest') ? 'Always' : 'IfNotPresent';
}

/** Fill what the API server defaults (SetDefaults_Pod and friends); mutates and returns pod. */
export function defaultPod(pod: Obj): Obj {
  const spec = pod.spec as Obj;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  spec.serviceAccountName ??= 'default';
  spec.serviceAccount ??= spec.serviceAccountName;
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  for (const c of spec.containers as Obj[]) {
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.imagePullPolicy ??= imagePullPolicy(String(c.image));
    c.resources ??= {};
  }
  return pod;
}

const GEN_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** generateName + 5 random characters, as the API server names it. */
export function generatedName(prefix: string): string {
  let s = prefix;
  for (let i = 0; i < 5; i++) s += GEN_ALPHABET[Math.floor(Math.random() * GEN_ALPHABET.length)];
  return s;
}
