/**
 * The parser of Go's text/template (Go 1.19's `parse.go`): pipelines, declarations, control
 * structures, `define`/`template`/`block`, with Go's error messages (`template: NAME:LINE: ...`).
 */
import { type Item, type ItemType, isKeyword, lex } from './lexer.js';
import type { CommandNode, ElseNode, EndNode, ListNode, Node, NumberNode, PipeNode, VariableNode } from './nodes.js';
import { nodeString } from './nodes.js';
import { goQuote, unquoteChar, unquoteString } from './quote.js';

/** A template parse failure; its message is Go's, e.g. `template: :1: unclosed action`. */
export class TemplateParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateParseError';
  }
}

export interface ParsedTemplate {
  name: string;
  text: string;
  root: ListNode;
  /** Every template the text defines (`define`, `block`), by name. */
  defs: Map<string, ListNode>;
}

function itemString(i: Item): string {
  if (i.typ === 'eof') return 'EOF';
  if (i.typ === 'error') return i.val;
  if (isKeyword(i.typ)) return `<${i.val}>`;
  if ([...i.val].length > 10) return `${goQuote([...i.val].slice(0, 10).join(''))}...`;
  return goQuote(i.val);
}

/** Go's `strconv.ParseInt/ParseUint/ParseFloat` as the template parser applies them to a number token. */
export function parseNumber(text: string): { value: number; isInt: boolean; isFloat: boolean } | string {
  if (text.endsWith('i')) return `complex numbers are not supported: ${text}`;
  const neg = text.startsWith('-');
  const body = text.replace(/^[+-]/, '');
  const intRe = /^(0[xX](_?[0-9a-fA-F])+|0[bB](_?[01])+|0[oO](_?[0-7])+|0(_?[0-7])*|[1-9](_?[0-9])*)$/;
  if (intRe.test(body)) {
    let v: number;
    const b = body.replace(/_/g, '');
    if (/^0[xX]/.test(b)) v = parseInt(b.slice(2), 16);
    else if (/^0[bB]/.test(b)) v = parseInt(b.slice(2), 2);
    else if (/^0[oO]/.test(b)) v = parseInt(b.slice(2), 8);
    else if (/^0./.test(b)) v = parseInt(b.slice(1), 8);
    else v = parseInt(b, 10);
    if (v > 2 ** 64) return `integer overflow: ${text}`;
    return { value: neg ? -v : v, isInt: true, isFloat: false };
  }
  if (/^(\d(_?\d)*)?\.?(\d(_?\d)*)?([eE][+-]?\d(_?\d)*)?$/.test(body) && /\d/.test(body) && /[.eE]/.test(body)) {
    const v = parseFloat(body.replace(/_/g, ''));
    return { value: neg ? -v : v, isInt: Number.isInteger(v), isFloat: true };
  }
  if (/^0[xX]/.test(body) && /[pP]/.test(body)) {
    const m = /^0[xX]([0-9a-fA-F_]*)\.?([0-9a-fA-F_]*)[pP]([+-]?\d+)$/.exec(body);
    if (m) {
      const int = m[1]!.replace(/_/g, '');
      const frac = m[2]!.replace(/_/g, '');
      const v = parseInt(int + frac || '0', 16) * 2 ** (Number(m[3]) - 4 * frac.length);
      return { value: neg ? -v : v, isInt: Number.isInteger(v), isFloat: true };
    }
  }
  return `illegal number syntax: ${goQuote(text)}`;
}

export function parse(text: string, name = '', funcs: ReadonlySet<string> = new Set()): ParsedTemplate {
  const items = lex(text);
  let i = 0;
  let furthest = 0;
  let vars: string[] = ['$'];
  let rangeDepth = 0;
  let actionLine = 0;
  const defs = new Map<string, ListNode>();

  const fail = (msg: string): never => {
    const line = items[Math.min(furthest, items.length - 1)]?.line ?? 1;
    throw new TemplateParseError(`template: ${name}:${line}: ${msg}`);
  };
  const nextItem = (): Item => {
    const it = items[Math.min(i, items.length - 1)]!;
    furthest = Math.max(furthest, Math.min(i, items.length - 1));
    i++;
    return it;
  };
  const backup = (n = 1): void => {
    i -= n;
  };
  const peek = (): Item => {
    const it = nextItem();
    backup();
    return it;
  };
  const nextNonSpace = (): Item => {
    let it = nextItem();
    while (it.typ === 'space') it = nextItem();
    return it;
  };
  const peekNonSpace = (): Item => {
    const it = nextNonSpace();
    backup();
    return it;
  };
  const unexpected = (token: Item, context: string): never => {
    if (token.typ === 'error') {
      let extra = '';
      if (actionLine !== 0 && actionLine !== token.line) {
        extra = ` in action started at ${name}:${actionLine}`;
        if (token.val.endsWith(' action')) extra = extra.slice(' in action'.length);
      }
      return fail(`${token.val}${extra}`);
    }
    return fail(`unexpected ${itemString(token)} in ${context}`);
  };
  const expect = (typ: ItemType, context: string): Item => {
    const t = nextNonSpace();
    if (t.typ !== typ) unexpected(t, context);
    return t;
  };
  const newList = (pos: number): ListNode => ({ type: 'list', pos, nodes: [] });

  const itemList = (): { list: ListNode; next: EndNode | ElseNode } => {
    const list = newList(peekNonSpace().pos);
    while (peekNonSpace().typ !== 'eof') {
      const n = textOrAction();
      if (n.type === 'end' || n.type === 'else') return { list, next: n };
      if (n.type !== 'comment') list.nodes.push(n);
    }
    return fail('unexpected EOF');
  };
  const textOrAction = (): Node | { type: 'comment' } => {
    const token = nextNonSpace();
    switch (token.typ) {
      case 'text':
        return { type: 'text', pos: token.pos, text: token.val };
      case 'leftDelim': {
        actionLine = token.line;
        try {
          return action();
        } finally {
          actionLine = 0;
        }
      }
      case 'comment':
        return { type: 'comment' };
      default:
        return unexpected(token, 'input');
    }
  };
  const action = (): Node => {
    const token = nextNonSpace();
    switch (token.typ) {
      case 'block':
        return blockControl();
      case 'break':
      case 'continue': {
        const t = nextNonSpace();
        if (t.typ !== 'rightDelim') unexpected(t, `{{${token.typ}}}`);
        if (rangeDepth === 0) fail(`{{${token.typ}}} outside {{range}}`);
        return { type: token.typ, pos: token.pos, line: token.line };
      }
      case 'else': {
        const p = peekNonSpace();
        if (p.typ === 'if') return { type: 'else', pos: p.pos, line: p.line };
        const t = expect('rightDelim', 'else');
        return { type: 'else', pos: t.pos, line: t.line };
      }
      case 'end':
        return { type: 'end', pos: expect('rightDelim', 'end').pos };
      case 'if':
      case 'range':
      case 'with':
        return control(token.typ);
      case 'template':
        return templateControl();
      default:
    }
    backup();
    const t = peek();
    return { type: 'action', pos: t.pos, line: t.line, pipe: pipeline('command', 'rightDelim') };
  };
  const control = (kind: 'if' | 'range' | 'with'): Node => {
    const saved = vars.length;
    try {
      const pipe = pipeline(kind, 'rightDelim');
      if (kind === 'range') rangeDepth++;
      let { list, next } = itemList();
      if (kind === 'range') rangeDepth--;
      let elseList: ListNode | undefined;
      if (next.type === 'else') {
        if (kind === 'if' && peek().typ === 'if') {
          nextItem();
          elseList = newList(next.pos);
          elseList.nodes.push(control('if'));
        } else {
          ({ list: elseList, next } = itemList());
          if (next.type !== 'end') fail(`expected end; found ${nodeString(next)}`);
        }
      }
      return { type: kind, pos: pipe.pos, line: pipe.line, pipe, list, ...(elseList ? { elseList } : {}) };
    } finally {
      vars = vars.slice(0, saved);
    }
  };
  const templateName = (token: Item, context: string): string => {
    if (token.typ === 'string' || token.typ === 'rawString') {
      const s = unquoteString(token.val);
      if (s === undefined) fail('invalid syntax');
      return s!;
    }
    return unexpected(token, context);
  };
  const templateControl = (): Node => {
    const token = nextNonSpace();
    const tname = templateName(token, 'template clause');
    let pipe: PipeNode | undefined;
    if (nextNonSpace().typ !== 'rightDelim') {
      backup();
      pipe = pipeline('template clause', 'rightDelim');
    }
    return { type: 'template', pos: token.pos, line: token.line, name: tname, ...(pipe ? { pipe } : {}) };
  };
  const blockControl = (): Node => {
    const token = nextNonSpace();
    const tname = templateName(token, 'block clause');
    const pipe = pipeline('block clause', 'rightDelim');
    const savedVars = vars;
    vars = ['$'];
    const { list, next } = itemList();
    vars = savedVars;
    if (next.type !== 'end') fail(`unexpected ${nodeString(next)} in block clause`);
    defs.set(tname, list);
    return { type: 'template', pos: token.pos, line: token.line, name: tname, pipe };
  };
  const definition = (): void => {
    const token = nextNonSpace();
    if (token.typ !== 'string' && token.typ !== 'rawString') unexpected(token, 'define clause');
    const dname = unquoteString(token.val) ?? fail('invalid syntax');
    expect('rightDelim', 'define clause');
    const savedVars = vars;
    vars = ['$'];
    const { list, next } = itemList();
    vars = savedVars;
    if (next.type !== 'end') fail(`unexpected ${nodeString(next)} in define clause`);
    if (!defs.has(dname) || list.nodes.some((n) => n.type !== 'text' || n.text.trim() !== '')) defs.set(dname, list);
  };

  const pipeline = (context: string, end: ItemType): PipeNode => {
    const token = peekNonSpace();
    const pipe: PipeNode = { type: 'pipe', pos: token.pos, line: token.line, isAssign: false, decl: [], cmds: [] };
    decls: for (;;) {
      const v = peekNonSpace();
      if (v.typ !== 'variable') break;
      const start = i;
      nextNonSpace();
      const afterVar = peek();
      const nxt = peekNonSpace();
      const newVar = (): VariableNode => ({ type: 'variable', pos: v.pos, ident: v.val.split('.') });
      if (nxt.typ === 'assign' || nxt.typ === 'declare') {
        pipe.isAssign = nxt.typ === 'assign';
        nextNonSpace();
        pipe.decl.push(newVar());
        vars.push(v.val);
      } else if (nxt.typ === 'char' && nxt.val === ',') {
        nextNonSpace();
        pipe.decl.push(newVar());
        vars.push(v.val);
        if (context === 'range' && pipe.decl.length < 2) {
          const p = peekNonSpace().typ;
          if (p === 'variable' || p === 'rightDelim' || p === 'rightParen') continue decls;
          fail('range can only initialize variables');
        }
        fail(`too many declarations in ${context}`);
      } else {
        void afterVar;
        i = start;
      }
      break;
    }
    for (;;) {
      const t = nextNonSpace();
      if (t.typ === end) {
        if (pipe.cmds.length === 0) fail(`missing value for ${context}`);
        pipe.cmds.slice(1).forEach((c, k) => {
          if (['bool', 'dot', 'nil', 'number', 'string'].includes(c.args[0]!.type)) fail(`non executable command in pipeline stage ${k + 2}`);
        });
        return pipe;
      }
      switch (t.typ) {
        case 'bool': case 'charConstant': case 'complex': case 'dot': case 'field': case 'identifier':
        case 'number': case 'nil': case 'rawString': case 'string': case 'variable': case 'leftParen':
          backup();
          pipe.cmds.push(command());
          break;
        default:
          unexpected(t, context);
      }
    }
  };
  const command = (): CommandNode => {
    const cmd: CommandNode = { type: 'command', pos: peekNonSpace().pos, args: [] };
    for (;;) {
      peekNonSpace();
      const op = operand();
      if (op) cmd.args.push(op);
      const t = nextItem();
      if (t.typ === 'space') continue;
      if (t.typ === 'rightDelim' || t.typ === 'rightParen') backup();
      else if (t.typ !== 'pipe') unexpected(t, 'operand');
      break;
    }
    if (cmd.args.length === 0) fail('empty command');
    return cmd;
  };
  const operand = (): Node | undefined => {
    let node = term();
    if (!node) return undefined;
    if (peek().typ === 'field') {
      const pos = peek().pos;
      const fields: string[] = [];
      while (peek().typ === 'field') fields.push(nextItem().val.slice(1));
      switch (node.type) {
        case 'field':
          node = { type: 'field', pos, ident: [...node.ident, ...fields] };
          break;
        case 'variable':
          node = { type: 'variable', pos, ident: [...node.ident, ...fields] };
          break;
        case 'bool': case 'string': case 'number': case 'nil': case 'dot':
          fail(`unexpected . after term ${goQuote(nodeString(node))}`);
          break;
        default:
          node = { type: 'chain', pos, node, field: fields };
      }
    }
    return node;
  };
  const term = (): Node | undefined => {
    const t = nextNonSpace();
    switch (t.typ) {
      case 'identifier':
        if (!funcs.has(t.val)) fail(`function ${goQuote(t.val)} not defined`);
        return { type: 'identifier', pos: t.pos, ident: t.val };
      case 'dot':
        return { type: 'dot', pos: t.pos };
      case 'nil':
        return { type: 'nil', pos: t.pos };
      case 'variable': {
        const ident = t.val.split('.');
        if (!vars.includes(ident[0]!)) fail(`undefined variable ${goQuote(ident[0]!)}`);
        return { type: 'variable', pos: t.pos, ident };
      }
      case 'field':
        return { type: 'field', pos: t.pos, ident: [t.val.slice(1)] };
      case 'bool':
        return { type: 'bool', pos: t.pos, val: t.val === 'true' };
      case 'charConstant': {
        const r = unquoteChar(t.val);
        if (r === undefined) return fail(`malformed character constant: ${t.val}`);
        return { type: 'number', pos: t.pos, text: t.val, value: r, isInt: true, isFloat: false } satisfies NumberNode;
      }
      case 'complex':
      case 'number': {
        const r = parseNumber(t.val);
        if (typeof r === 'string') return fail(r);
        return { type: 'number', pos: t.pos, text: t.val, ...r };
      }
      case 'leftParen':
        return pipeline('parenthesized pipeline', 'rightParen');
      case 'string':
      case 'rawString': {
        const s = unquoteString(t.val);
        if (s === undefined) return fail('invalid syntax');
        return { type: 'string', pos: t.pos, quoted: t.val, text: s };
      }
      default:
        backup();
        return undefined;
    }
  };

  const root = newList(peek().pos);
  while (peek().typ !== 'eof') {
    if (peek().typ === 'leftDelim') {
      const at = i;
      nextItem();
      if (nextNonSpace().typ === 'define') {
        definition();
        continue;
      }
      i = at;
    }
    const n = textOrAction();
    if (n.type === 'end' || n.type === 'else') fail(`unexpected ${nodeString(n)}`);
    if (n.type !== 'comment') root.nodes.push(n);
  }
  return { name, text, root, defs };
}
