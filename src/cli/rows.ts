/**
 * The objects `ps` and `images` format, with the names, values and column headers of docker/cli's
 * `ContainerContext` and `ImageContext`: what `{{.ID}}`, `{{.Status}}`, `{{.Label "k"}}`, `table`
 * headers and `--format json` see.
 */
import type { ContainerRecord } from '../containers/record.js';
import { goQuote } from './template/quote.js';
import { GO_TYPE } from './template/index.js';
import type { RowFormat } from './template/index.js';
import { ellipsis, formatAgo, formatSize, shortId } from './format.js';
import { formatPorts } from '../containers/publish.js';

/** Go's `time.Time.String()` of a Unix time in local time: `2026-12-07 03:12:12 +0000 UTC`. */
export function goTimeString(date: string | number | Date | undefined): string {
  const d = date instanceof Date ? date : new Date(date ?? 0);
  if (Number.isNaN(d.getTime())) return '';
  const t = new Date(Math.floor(d.getTime() / 1000) * 1000);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const off = -t.getTimezoneOffset();
  const zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(t).find((x) => x.type === 'timeZoneName')?.value ?? '';
  const abbr = off === 0 && /^(UTC|GMT)$/.test(zone) ? 'UTC' : zone;
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())} ${off < 0 ? '-' : '+'}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)} ${abbr}`;
}

/** Go's `time.Time.Format(time.RFC3339)` of a Unix time in local time: `2026-12-07T03:12:12Z`. */
export function goRFC3339(date: string | number | Date): string {
  const d = date instanceof Date ? date : new Date(date);
  if (Number.isNaN(d.getTime())) return '';
  const t = new Date(Math.floor(d.getTime() / 1000) * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  const off = -t.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off < 0 ? '-' : '+'}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}T${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}${zone}`;
}

export const CONTAINER_FORMAT: RowFormat = {
  headers: {
    ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Ports: 'PORTS', State: 'STATE',
    Status: 'STATUS', Size: 'SIZE', Names: 'NAMES', Labels: 'LABELS', Mounts: 'MOUNTS', LocalVolumes: 'LOCAL VOLUMES', Networks: 'NETWORKS',
  },
  defaultTable: 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}',
  // Docker heads a label's column with the label's last dotted part, `-` and `_` made spaces.
  headerMethods: { Label: (name: string) => (name.split('.').pop() ?? '').replace(/[-_]/g, ' ') },
  words: { parse: 'failed to parse template: ', exec: 'failed to execute template: ' },
  // `docker ps` tries the template on an empty container first: a bad field fails with nothing listed.
  emptyRow: () =>
    containerRow(
      {
        id: '', name: '', image: '', imageName: '', imageId: '', snapshotKey: '', created: '', config: { Hostname: '' }, path: '', args: [], state: { status: 'created' },
        hostConfig: { autoRemove: false, networkMode: 'none', portBindings: [], binds: [], tmpfs: [], readOnly: false, capAdd: [], capDrop: [], init: false, tty: false, interactive: false },
      },
      { trunc: true },
    ),
};

export const IMAGE_FORMAT: RowFormat = {
  headers: {
    ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE',
    Containers: 'CONTAINERS', VirtualSize: 'VIRTUAL SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE',
  },
  defaultTable: 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}',
};
export const IMAGE_DIGESTS_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';

/** Docker's state word: `running`, `paused`, `exited`, `created`, `restarting` (waiting to be restarted), `dead`. */
export function containerState(r: ContainerRecord): string {
  if (r.state.restarting && r.state.status !== 'running') return 'restarting';
  return r.state.status === 'running' && r.state.paused ? 'paused' : r.state.status;
}

/**
 * Docker's status line: `Up 5 minutes (healthy)`, `Restarting (1) 2 seconds ago`,
 * `Exited (0) 2 minutes ago`, `Created`.
 */
export function containerStatus(r: ContainerRecord, now: Date, health?: string): string {
  const s = r.state;
  if (s.restarting && s.status !== 'running') return `Restarting (${s.exitCode ?? 0}) ${formatAgo(s.finishedAt, now)}`;
  const h = health ? (health === 'starting' ? ' (health: starting)' : ` (${health})`) : '';
  if (s.status === 'running') return `Up ${formatAgo(s.startedAt, now).replace(/ ago$/, '')}${s.paused ? ' (Paused)' : ''}${h}`;
  if (s.status === 'exited') return `Exited (${s.exitCode ?? 0})${s.oomKilled ? ' OOMKilled' : ''} ${formatAgo(s.finishedAt, now)}`;
  if (s.status === 'created') return 'Created';
  return s.status === 'dead' ? 'Dead' : s.status;
}

/** Docker's command column: the path and arguments (quoted with `'` when they hold a space), Go-quoted. */
function command(r: ContainerRecord, trunc: boolean): string {
  const args = (r.args ?? []).map((a) => (a.includes(' ') ? `'${a}'` : a));
  const cmd = args.length > 0 ? `${r.path ?? ''} ${args.join(' ')}` : r.path ?? '';
  return goQuote(trunc ? ellipsis(cmd, 20) : cmd);
}

export interface RowOptions {
  trunc: boolean;
  now?: Date;
  /** The container's health (`starting`, `healthy`, `unhealthy`) when it has a check. */
  health?: string;
  /** Its writable layer and everything it sees, when measured (`ps -s`). */
  size?: { rw: number; rootFs: number };
}

/** One container as `ps --format` sees it. */
export function containerRow(r: ContainerRecord, o: RowOptions): Record<string, unknown> {
  const now = o.now ?? new Date();
  const labels = r.config.Labels ?? {};
  const mode = r.hostConfig.networkMode;
  const volumes = r.hostConfig.volumes ?? [];
  // Docker's Mounts column: a volume's name, a bind's source, each cut to 15 characters.
  const mounts = [...volumes.map((v) => v.name), ...(r.hostConfig.binds ?? []).map((b) => b.source)].map((m) => (o.trunc ? ellipsis(m, 15) : m));
  const row: Record<string, unknown> = {
    ID: o.trunc ? r.id.slice(0, 12) : r.id,
    Image: r.imageName ?? r.image,
    Command: command(r, o.trunc),
    CreatedAt: goTimeString(r.created),
    RunningFor: formatAgo(r.created, now),
    Ports: r.state.status === 'running' ? formatPorts(r.state.ports ?? [], Object.keys(r.config?.ExposedPorts ?? {})) : '',
    State: containerState(r),
    Status: containerStatus(r, now, o.health),
    // Docker's `0B (virtual 1.98MB)`: the virtual part only when there is one.
    Size: o.size && o.size.rootFs > 0 ? `${formatSize(o.size.rw)} (virtual ${formatSize(o.size.rootFs)})` : formatSize(o.size?.rw ?? 0),
    Names: r.name,
    Labels: Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(','),
    Mounts: mounts.join(','),
    LocalVolumes: String(volumes.length),
    Networks: mode === 'none' || mode === 'host' || mode === 'slirp4netns' || mode === 'pasta' ? mode : 'bridge',
  };
  const fields = { ...row };
  Object.defineProperty(row, GO_TYPE, { value: '*formatter.ContainerContext' });
  // Docker's `{{.Label "k"}}` method, and `{{json .}}` printing every field with sorted keys.
  Object.defineProperty(row, 'Label', { value: (name: string) => labels[name] ?? '', enumerable: false });
  Object.defineProperty(row, 'toJSON', { value: () => Object.fromEntries(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1))), enumerable: false });
  return row;
}

export interface ImageRowInput {
  repo: string;
  tag: string;
  digest: string;
  id: string;
  created?: string;
  size: number;
}

/** One image as `images --format` sees it. */
export function imageRow(i: ImageRowInput, o: RowOptions): Record<string, unknown> {
  const now = o.now ?? new Date();
  const row: Record<string, unknown> = {
    Containers: 'N/A',
    CreatedAt: i.created ? goTimeString(i.created) : '',
    CreatedSince: formatAgo(i.created, now),
    Digest: i.digest || '<none>',
    ID: o.trunc ? shortId(i.id) : i.id,
    Repository: i.repo,
    SharedSize: 'N/A',
    Size: formatSize(i.size),
    Tag: i.tag,
    UniqueSize: 'N/A',
    VirtualSize: formatSize(i.size, 4),
  };
  const fields = { ...row };
  Object.defineProperty(row, GO_TYPE, { value: '*formatter.imageContext' });
  Object.defineProperty(row, 'toJSON', { value: () => fields, enumerable: false });
  return row;
}
