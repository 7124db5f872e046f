/**
 * formatRows as `ps`/`images` use it: Docker's table headers and spacing, `json` lines, plain
 * templates, the header's partial line when a column takes arguments, and errors in Docker's words.
 */
import { describe, expect, it } from 'vitest';
import { formatRows, inspectTemplate, TemplateError } from '../../../src/cli/template/index.js';
import { CONTAINER_FORMAT, IMAGE_FORMAT, containerRow, goTimeString, imageRow } from '../../../src/cli/rows.js';
import type { ContainerRecord } from '../../../src/containers/record.js';

const now = new Date('2026-12-07T03:00:00Z');
const rec = (over: Partial<ContainerRecord> & { id: string; name: string }): ContainerRecord =>
  ({
    image: 'sha256:m',
    imageName: 'busybox',
    imageId: 'sha256:i',
    snapshotKey: 'k',
    created: '2026-12-07T02:58:00Z',
    config: { Hostname: 'h', Labels: { app: 'web', tier: 'front end' } },
    path: 'sh',
    args: ['-c', 'sleep 1000; echo done'],
    hostConfig: { autoRemove: false, networkMode: 'bridge', portBindings: [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' }], binds: [], tmpfs: [], readOnly: false, capAdd: [], capDrop: [], init: false, tty: false, interactive: false },
    state: { status: 'running', startedAt: '2026-12-07T02:58:30Z', ports: [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
    ...over,
  }) as ContainerRecord;

const rows = [
  containerRow(rec({ id: 'a'.repeat(64), name: 'web' }), { trunc: true, now }),
  containerRow(rec({ id: 'b'.repeat(64), name: 'db', config: { Hostname: 'h' }, state: { status: 'exited', exitCode: 3, startedAt: '2026-12-07T02:00:00Z', finishedAt: '2026-12-07T02:00:05Z' } }), { trunc: true, now }),
];

describe('formatRows', () => {
  it('prints the default ps table as docker does', () => {
    expect(formatRows(CONTAINER_FORMAT.defaultTable, rows, CONTAINER_FORMAT)).toBe(
      [
        'CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS                      PORTS                  NAMES',
        'aaaaaaaaaaaa   busybox   "sh -c \'sleep 1000; …"   2 minutes ago   Up About a minute           0.0.0.0:8080->80/tcp   web',
        // An exited container publishes nothing, as docker shows it.
        'bbbbbbbbbbbb   busybox   "sh -c \'sleep 1000; …"   2 minutes ago   Exited (3) 59 minutes ago                          db',
        '',
      ].join('\n'),
    );
  });

  it('takes table templates with headers, \\t typed literally, and plain `table`', () => {
    expect(formatRows('table {{.Names}}\\t{{.State}}', rows, CONTAINER_FORMAT)).toBe('NAMES     STATE\nweb       running\ndb        exited\n');
    expect(formatRows('table', rows, CONTAINER_FORMAT)).toBe(formatRows(CONTAINER_FORMAT.defaultTable, rows, CONTAINER_FORMAT));
    expect(formatRows('table {{.ID}}', [], CONTAINER_FORMAT)).toBe('CONTAINER ID\n');
    // Docker heads a label column with the label's last dotted part, `-` and `_` made spaces.
    expect(formatRows('table {{.Names}}\t{{.Label "app"}}|{{.Label "com.example.some-th_ing"}}', rows, CONTAINER_FORMAT)).toBe('NAMES     app|some th ing\nweb       web|\ndb        |\n');
    // Header functions leave the column names alone; builtins still run (`len "NAMES"` is 5).
    expect(formatRows('table {{json .Names}}\t{{upper .Status}}\t{{.Names | printf "%s!"}}\t{{len .Names}}', rows.slice(0, 1), CONTAINER_FORMAT)).toBe(
      'NAMES     STATUS              NAMES!    5\n"web"     UP ABOUT A MINUTE   web!      3\n',
    );
    expect(formatRows('table {{upper .Names}}:{{lower .State}}', rows, CONTAINER_FORMAT)).toBe('NAMES:STATE\nWEB:running\nDB:exited\n');
  });

  it('prints plain templates per row and json as one object per line with sorted keys', () => {
    expect(formatRows('{{.Names}}: {{.Label "tier"}} [{{.Labels}}] {{.Ports}}', rows, CONTAINER_FORMAT)).toBe('web: front end [app=web,tier=front end] 0.0.0.0:8080->80/tcp\ndb:  [] \n');
    const lines = formatRows('json', rows, CONTAINER_FORMAT).trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const o = JSON.parse(lines[0]!) as Record<string, string>;
    expect(Object.keys(o)).toEqual([...Object.keys(o)].sort());
    expect(o).toMatchObject({ ID: 'aaaaaaaaaaaa', Names: 'web', State: 'running', Status: 'Up About a minute', Networks: 'bridge', Size: '0B', LocalVolumes: '0' });
    expect(formatRows('{{json .}}', rows, CONTAINER_FORMAT)).toBe(formatRows('json', rows, CONTAINER_FORMAT));
  });

  it('reports template errors in docker\'s words', () => {
    expect(() => formatRows('{{.Names', rows, CONTAINER_FORMAT)).toThrow(new TemplateError('failed to parse template: template: :1: unclosed action'));
    const bad = 'failed to execute template: template: :1:20: executing "" at <.Foo>: can\'t evaluate field Foo in type *formatter.ContainerContext';
    expect(() => formatRows('table {{.Names}}\\t{{.Foo}}', rows, CONTAINER_FORMAT)).toThrow(bad);
    // as docker ps does, even with no container to list
    expect(() => formatRows('table {{.Names}}\\t{{.Foo}}', [], CONTAINER_FORMAT)).toThrow(bad);
    expect(() => formatRows('{{.Names 1}}', rows, CONTAINER_FORMAT)).toThrow(/Names has arguments but cannot be invoked as function/);
    expect(() => formatRows('{{.Repository', [], IMAGE_FORMAT)).toThrow(new TemplateError('template parsing error: template: :1: unclosed action'));
    expect(() => formatRows('{{.Nope}}', [imageRow({ repo: 'a', tag: 'b', digest: '', id: 'sha256:1', size: 0 }, { trunc: true })], IMAGE_FORMAT)).toThrow(
      'template parsing error: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.imageContext',
    );
    // docker images runs a table's header over a map: an unknown column is `<no value>` there
    expect(formatRows('table {{.Foo}}', [], IMAGE_FORMAT)).toBe('<no value>\n');
    const e = (() => {
      try {
        inspectTemplate('{{.Id');
      } catch (x) {
        return x as { exitCode?: number };
      }
      return undefined;
    })();
    expect(e?.exitCode).toBe(64);
  });

  it('formats images with docker\'s fields', () => {
    const img = imageRow({ repo: 'busybox', tag: 'latest', digest: 'sha256:' + 'd'.repeat(64), id: 'sha256:' + 'e'.repeat(64), created: '2023-11-14T22:13:20Z', size: 2_140_000 }, { trunc: true, now });
    expect(formatRows(IMAGE_FORMAT.defaultTable, [img], IMAGE_FORMAT)).toBe('REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\nbusybox      latest    eeeeeeeeeeee   3 years ago   2.14MB\n');
    expect(formatRows('{{.Repository}}:{{.Tag}} {{.CreatedAt}} {{.VirtualSize}}', [img], IMAGE_FORMAT)).toBe(`busybox:latest ${goTimeString('2023-11-14T22:13:20Z')} 2.14MB\n`);
    expect(JSON.parse(formatRows('json', [img], IMAGE_FORMAT))).toEqual({
      Containers: 'N/A', CreatedAt: goTimeString('2023-11-14T22:13:20Z'), CreatedSince: '3 years ago', Digest: 'sha256:' + 'd'.repeat(64), ID: 'eeeeeeeeeeee',
      Repository: 'busybox', SharedSize: 'N/A', Size: '2.14MB', Tag: 'latest', UniqueSize: 'N/A', VirtualSize: '2.14MB',
    });
  });

  it('escapes <, > and & in json lines as docker\'s MarshalJSON does, not in {{json .Field}}', () => {
    const dangling = imageRow({ repo: '<none>', tag: '<none>', digest: '<none>', id: 'sha256:' + 'f'.repeat(64), size: 0 }, { trunc: true, now });
    const line = formatRows('json', [dangling], IMAGE_FORMAT);
    expect(line).toContain('"Repository":"\\u003cnone\\u003e"');
    expect(JSON.parse(line)).toMatchObject({ Repository: '<none>', Tag: '<none>', Digest: '<none>' });
    expect(formatRows('{{json .Repository}}', [dangling], IMAGE_FORMAT)).toBe('"<none>"\n');
  });

  it("prints Go's time the way Docker's CreatedAt does", () => {
    const saved = process.env.TZ;
    expect(goTimeString('2023-11-14T22:13:20.5Z')).toMatch(/^2023-11-1[45] \d\d:\d\d:20 [+-]\d{4} \S+$/);
    if (saved === undefined || saved === 'UTC') expect(goTimeString('2023-11-14T22:13:20Z')).toBe('2023-11-14 22:13:20 +0000 UTC');
  });
});

describe('inspectTemplate', () => {
  const obj = { Id: 'sha256:x', Config: { Env: ['A=1', 'B=2'], Labels: { b: '2', a: '1' }, Cmd: null }, State: { Status: 'running', Pid: 42 } };
  it('runs docker inspect -f templates, a missing key being an error', () => {
    const r = (t: string): string => inspectTemplate(t)(obj);
    expect(r('{{.State.Status}} {{.State.Pid}}')).toBe('running 42');
    expect(r('{{json .Config.Labels}}')).toBe('{"a":"1","b":"2"}');
    // a struct's fields keep their order (Docker marshals its typed structs), maps come sorted
    expect(r('{{json .State}}')).toBe('{"Status":"running","Pid":42}');
    expect(r('{{json .Config}}')).toBe('{"Env":["A=1","B=2"],"Labels":{"a":"1","b":"2"},"Cmd":null}');
    expect(r('{{.Config.Labels}}')).toBe('map[a:1 b:2]');
    expect(r('{{range .Config.Env}}{{.}};{{end}}')).toBe('A=1;B=2;');
    expect(r('{{index .Config.Labels "a"}} {{join .Config.Env ","}} {{.Config.Cmd}}')).toBe('1 A=1,B=2 <no value>');
    expect(r('{{if eq .State.Status "running"}}up{{else}}down{{end}}')).toBe('up');
    expect(() => r('{{.Nope}}')).toThrow('template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"');
    expect(() => inspectTemplate('{{.Id')).toThrow('template parsing error: template: :1: unclosed action');
  });
});
