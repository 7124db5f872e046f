/**
 * Go templates as Docker uses them for `--format`: `parseTemplate` with Go's and Docker's
 * functions, `inspectTemplate` for one object at a time (`inspect -f`), and `formatRows` for listings (`table`
 * with Docker's headers and column spacing, `json` as one object per line, or a plain template).
 */
import { InvalidArgumentError } from '../../errors.js';
import { execute, type ExecOptions, type FuncMap, TemplateExecError } from './exec.js';
import { BUILTINS, DOCKER_FUNCS, DOCKER_HEADER_FUNCS } from './funcs.js';
import { parse, type ParsedTemplate, TemplateParseError } from './parser.js';
import { tabwrite } from './tabwriter.js';

import { GO_TYPE, STRUCT_ORDER } from './value.js';

export { GO_TYPE, GoFloat } from './value.js';
export { TemplateExecError } from './exec.js';
export { TemplateParseError } from './parser.js';

/** Builtins plus Docker's functions (the set `docker --format` parses with). */
export const DEFAULT_FUNCS: FuncMap = new Map([...BUILTINS, ...DOCKER_FUNCS]);
const HEADER_FUNCS: FuncMap = new Map([...BUILTINS, ...DOCKER_HEADER_FUNCS]);

/** Parses a template; a syntax error is Go's one line (`template: :1: unclosed action`). */
export function parseTemplate(text: string, funcs: FuncMap = DEFAULT_FUNCS): ParsedTemplate {
  return parse(text, '', new Set(funcs.keys()));
}

/** Runs a parsed template over one value. */
export function executeTemplate(tpl: ParsedTemplate, data: unknown, opts: Partial<ExecOptions> = {}): string {
  return execute(tpl, data, { funcs: DEFAULT_FUNCS, ...opts });
}

/** A template failure as the CLI reports it, in Docker's words (`template parsing error: ...`). */
export class TemplateError extends InvalidArgumentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TemplateError';
  }
}

function wrap<T>(f: () => T, words: { parse: string; exec: string }, exitCode?: number): T {
  try {
    return f();
  } catch (e) {
    let err: TemplateError | undefined;
    if (e instanceof TemplateParseError) err = new TemplateError(`${words.parse}${e.message}`, { cause: e });
    else if (e instanceof TemplateExecError) err = new TemplateError(`${words.exec}${e.message}`, { cause: e });
    if (!err) throw e;
    if (exitCode !== undefined) Object.assign(err, { exitCode });
    throw err;
  }
}

const DOCKER_WORDS = { parse: 'template parsing error: ', exec: 'template parsing error: ' };

/**
 * `docker inspect -f`: Docker runs the template on the raw JSON with `missingkey=error`, so a
 * missing field is an error (`map has no entry for key "X"`) rather than `<no value>`; a template
 * that does not parse exits 64, as Docker's does.
 */
export function inspectTemplate(text: string): (data: unknown) => string {
  const tpl = wrap(() => parseTemplate(text), DOCKER_WORDS, 64);
  return (data) => wrap(() => executeTemplate(tpl, markStructs(data), { missingKey: 'error' }), DOCKER_WORDS);
}

/**
 * Docker runs `inspect -f` on its typed structs first, so `{{json .Config}}` lists fields in the
 * struct's order while maps (labels, ports) come sorted. The objects here are plain JSON: one whose
 * keys are all capitalised reads as a struct (Go's exported fields), any other as a map.
 */
function markStructs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(markStructs);
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return v;
  const out: Record<string | symbol, unknown> = {};
  const keys = Object.keys(v);
  for (const k of keys) out[k] = markStructs((v as Record<string, unknown>)[k]);
  if (keys.length > 0 && keys.every((k) => /^[A-Z]/.test(k))) Object.defineProperty(out, STRUCT_ORDER, { value: true });
  return out;
}

export interface RowFormat {
  /** The table's column names, by field (`{ ID: 'CONTAINER ID' }`), for `table` formats. */
  headers: Readonly<Record<string, string>>;
  /** The format used for plain `table` (Docker's default columns). */
  defaultTable: string;
  /**
   * Methods of the header object, for columns that take arguments (`ps` names a `{{.Label "k"}}`
   * column after the label). With them the header is a struct, whose unknown fields fail (the
   * header then keeps what it had written, as Docker's does); without, a map (`<no value>`).
   */
  headerMethods?: Readonly<Record<string, (...args: string[]) => string>>;
  /** Docker's words before a parse and an execution error (they differ between its commands). */
  words?: { parse: string; exec: string };
  /**
   * A row to try the format on first, as given (`table ` and typed `\\t` included, so positions in
   * errors are the user's), so a bad field fails even when nothing is listed: `docker ps` does so.
   */
  emptyRow?: () => unknown;
}

/**
 * Formats rows the way docker/cli's formatter does: `table ...` (or just `table`) prints a header
 * line (the same template run over the column names with Docker's header functions) and aligns
 * the columns with Go's tabwriter; `json` prints each row as one JSON object per line; anything
 * else is a template run per row, each followed by a newline. `\t` and `\n` typed literally in
 * the format are a tab and a newline, as in Docker. Other listings (`volume ls`) use it with
 * their own headers.
 */
export function formatRows(format: string, rows: readonly unknown[], o: RowFormat): string {
  const words = o.words ?? DOCKER_WORDS;
  if (o.emptyRow) {
    const raw = wrap(() => parseTemplate(format), words);
    wrap(() => executeTemplate(raw, o.emptyRow!()), words);
  }
  let text = format;
  const isTable = text.startsWith('table');
  if (isTable) text = text.slice('table'.length);
  else if (text.trim() === 'json') text = '{{json .}}';
  text = text.replace(/^ +| +$/g, '');
  if (isTable && text === '') text = o.defaultTable.replace(/^table\s*/, '');
  text = text.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const tpl = wrap(() => parseTemplate(text), words);
  let body = '';
  for (const r of rows) body += `${wrap(() => executeTemplate(tpl, r), words)}\n`;
  if (!isTable) return body;
  const header: Record<string | symbol, unknown> = { ...o.headers };
  if (o.headerMethods) {
    header[GO_TYPE] = 'formatter.SubHeaderContext';
    for (const [k, f] of Object.entries(o.headerMethods)) Object.defineProperty(header, k, { value: f, enumerable: false });
  }
  let line = '';
  try {
    line = execute(tpl, header, { funcs: HEADER_FUNCS });
  } catch (e) {
    // Docker ignores the header template's failure and keeps what it wrote before it.
    if (!(e instanceof TemplateExecError)) throw e;
    line = e.partial;
  }
  return tabwrite(`${line}\n${body}`);
}
