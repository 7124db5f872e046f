/**
 * Executes a parsed template as Go's text/template does (Go 1.19's `exec.go`): variables and their
 * scopes, field chains on maps and structs, method calls, function calls with Go's argument
 * checks, `and`/`or` short-circuits, `range` with `break`/`continue`, and Go's error messages
 * (`template: NAME:LINE:COL: executing "NAME" at <NODE>: ...`).
 */
import type { ChainNode, CommandNode, FieldNode, IdentifierNode, ListNode, Node, NumberNode, PipeNode, VariableNode } from './nodes.js';
import { nodeString } from './nodes.js';
import { goQuote } from './quote.js';
import type { ParsedTemplate } from './parser.js';
import { entriesOf, formatValue, GoFloat, isTrue, kindOf, typeName } from './value.js';

/** A parameter's Go type: `value` is reflect.Value (anything, even no value), `any` is interface{}. */
export type ParamType = 'value' | 'any' | 'string' | 'int' | 'bool' | '[]string';

export interface TemplateFunc {
  params: ParamType[];
  /** The type of the trailing variadic parameter, when the function is variadic. */
  variadic?: ParamType;
  fn: (...args: unknown[]) => unknown;
}

export type FuncMap = ReadonlyMap<string, TemplateFunc>;

/** A function's own failure, reported by the executor as `error calling NAME: MESSAGE`. */
export class FuncError extends Error {}

/** A template execution failure; its message is Go's. */
export class TemplateExecError extends Error {
  /** What the template had written before it failed (Docker keeps a table header's partial line). */
  partial = '';
  constructor(message: string) {
    super(message);
    this.name = 'TemplateExecError';
  }
}

export interface ExecOptions {
  funcs: FuncMap;
  /** Go's `missingkey` option: `default` gives no value, `zero` nil, `error` fails. */
  missingKey?: 'default' | 'zero' | 'error';
}

const MISSING = Symbol('missing');
type Final = unknown | typeof MISSING;
const BREAK = Symbol('break');
const CONTINUE = Symbol('continue');
const BUILTIN_SHORT_CIRCUIT = new Set(['and', 'or']);

function canBeNil(t: ParamType): boolean {
  return t === 'any' || t === '[]string';
}

function assignable(v: unknown, t: ParamType): boolean {
  switch (t) {
    case 'any':
    case 'value':
      return true;
    case 'string':
      return typeof v === 'string';
    case 'int':
      return kindOf(v) === 'int';
    case 'bool':
      return typeof v === 'boolean';
    case '[]string':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
  }
}

const typeLabel = (t: ParamType): string => (t === 'any' ? 'interface {}' : t === 'value' ? 'reflect.Value' : t);

export function execute(tpl: ParsedTemplate, data: unknown, opts: ExecOptions): string {
  let out = '';
  const vars: { name: string; value: unknown }[] = [{ name: '$', value: data }];
  let current: Node | undefined;
  let execName = tpl.name;
  let depth = 0;

  const fail = (msg: string): never => {
    let location = tpl.name;
    let context = '';
    if (current) {
      const pos = current.pos;
      const text = tpl.text.slice(0, pos);
      const nl = text.lastIndexOf('\n');
      const col = nl === -1 ? pos : pos - (nl + 1);
      const line = 1 + (text.match(/\n/g)?.length ?? 0);
      location = `${tpl.name}:${line}:${col}`;
      context = nodeString(current);
    }
    const err = new TemplateExecError(`template: ${location}: executing ${goQuote(execName)} at <${context}>: ${msg}`);
    err.partial = out;
    throw err;
  };
  const at = (n: Node): void => {
    current = n;
  };
  const varValue = (name: string): unknown => {
    for (let i = vars.length - 1; i >= 0; i--) if (vars[i]!.name === name) return vars[i]!.value;
    return fail(`undefined variable: ${name}`);
  };
  const setVar = (name: string, value: unknown): void => {
    for (let i = vars.length - 1; i >= 0; i--) {
      if (vars[i]!.name === name) {
        vars[i]!.value = value;
        return;
      }
    }
    fail(`undefined variable: ${name}`);
  };

  const idealConstant = (n: NumberNode): unknown => {
    at(n);
    if (n.isFloat && !/^[+-]?0[xX]/.test(n.text) && !n.text.startsWith("'") && /[.eEpP]/.test(n.text)) {
      return Number.isInteger(n.value) ? new GoFloat(n.value) : n.value;
    }
    if (n.isInt) {
      if (Math.abs(n.value) > 2 ** 63) fail(`${n.text} overflows int`);
      return n.value;
    }
    return n.value;
  };

  const walk = (dot: unknown, node: Node): void => {
    at(node);
    switch (node.type) {
      case 'action': {
        const val = evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) {
          at(node);
          if (kindOf(val) === 'func') fail(`can't print ${nodeString(node)} of type ${typeName(val)}`);
          out += formatValue(val);
        }
        return;
      }
      case 'break':
        throw BREAK;
      case 'continue':
        throw CONTINUE;
      case 'if':
      case 'with': {
        const mark = vars.length;
        const val = evalPipeline(dot, node.pipe);
        if (isTrue(val)) walk(node.type === 'with' ? val : dot, node.list);
        else if (node.elseList) walk(dot, node.elseList);
        vars.length = mark;
        return;
      }
      case 'list':
        for (const n of node.nodes) walk(dot, n);
        return;
      case 'range':
        return walkRange(dot, node);
      case 'template':
        return walkTemplate(dot, node);
      case 'text':
        out += node.text;
        return;
      default:
        fail(`unknown node: ${nodeString(node)}`);
    }
  };

  const walkRange = (dot: unknown, r: Extract<Node, { type: 'range' }>): void => {
    at(r);
    const outer = vars.length;
    const val = evalPipeline(dot, r.pipe);
    const mark = vars.length;
    const one = (index: unknown, elem: unknown): boolean => {
      if (r.pipe.decl.length > 0) {
        if (r.pipe.isAssign) setVar(r.pipe.decl[r.pipe.decl.length > 1 ? 1 : 0]!.ident[0]!, elem);
        else vars[vars.length - 1]!.value = elem;
      }
      if (r.pipe.decl.length > 1) {
        if (r.pipe.isAssign) setVar(r.pipe.decl[0]!.ident[0]!, index);
        else vars[vars.length - 2]!.value = index;
      }
      try {
        walk(elem, r.list);
      } catch (e) {
        if (e === BREAK) return false;
        if (e !== CONTINUE) throw e;
      } finally {
        vars.length = mark;
      }
      return true;
    };
    let any = false;
    switch (kindOf(val)) {
      case 'slice':
        for (const [i, e] of (val as unknown[]).entries()) {
          any = true;
          if (!one(i, e)) break;
        }
        break;
      case 'map':
        for (const [k, e] of entriesOf(val as object)) {
          any = true;
          if (!one(k, e)) break;
        }
        break;
      case 'invalid':
      case 'nil':
        break;
      default:
        fail(`range can't iterate over ${formatValue(val)}`);
    }
    if (!any && r.elseList) walk(dot, r.elseList);
    vars.length = outer;
  };

  const walkTemplate = (dot: unknown, t: Extract<Node, { type: 'template' }>): void => {
    at(t);
    const body = tpl.defs.get(t.name);
    if (!body) fail(`template ${goQuote(t.name)} not defined`);
    if (++depth > 100000) fail('exceeded maximum template depth (100000)');
    const newDot = evalPipeline(dot, t.pipe);
    const savedVars = vars.splice(0);
    const savedName = execName;
    vars.push({ name: '$', value: newDot });
    execName = t.name;
    try {
      walk(newDot, body!);
    } finally {
      vars.splice(0, vars.length, ...savedVars);
      execName = savedName;
      depth--;
    }
  };

  const evalPipeline = (dot: unknown, pipe: PipeNode | undefined): unknown => {
    if (!pipe) return undefined;
    at(pipe);
    let value: unknown = MISSING;
    for (const cmd of pipe.cmds) {
      value = evalCommand(dot, cmd, value);
      // Go takes the concrete value out of an interface here: a nil interface becomes no value.
      if (value === null) value = undefined;
    }
    for (const v of pipe.decl) {
      if (pipe.isAssign) setVar(v.ident[0]!, value);
      else vars.push({ name: v.ident[0]!, value });
    }
    return value;
  };

  const notAFunction = (args: Node[], final: Final): void => {
    if (args.length > 1 || final !== MISSING) fail(`can't give argument to non-function ${nodeString(args[0]!)}`);
  };

  const evalCommand = (dot: unknown, cmd: CommandNode, final: Final): unknown => {
    const first = cmd.args[0]!;
    switch (first.type) {
      case 'field':
        return evalFieldNode(dot, first, cmd.args, final);
      case 'chain':
        return evalChainNode(dot, first, cmd.args, final);
      case 'identifier':
        return evalFunction(dot, first, cmd, cmd.args, final);
      case 'pipe':
        notAFunction(cmd.args, final);
        return evalPipeline(dot, first);
      case 'variable':
        return evalVariableNode(dot, first, cmd.args, final);
      default:
    }
    at(first);
    notAFunction(cmd.args, final);
    switch (first.type) {
      case 'bool':
        return first.val;
      case 'dot':
        return dot;
      case 'nil':
        return fail('nil is not a command');
      case 'number':
        return idealConstant(first);
      case 'string':
        return first.text;
      default:
        return fail(`can't evaluate command ${goQuote(nodeString(first))}`);
    }
  };

  const evalFieldNode = (dot: unknown, field: FieldNode, args: Node[], final: Final): unknown => {
    at(field);
    return evalFieldChain(dot, dot, field, field.ident, args, final, false);
  };
  const evalChainNode = (dot: unknown, chain: ChainNode, args: Node[], final: Final): unknown => {
    at(chain);
    if (chain.node.type === 'nil') fail(`indirection through explicit nil in ${nodeString(chain)}`);
    const pipe = evalArg(dot, 'value', chain.node);
    return evalFieldChain(dot, pipe, chain, chain.field, args, final, false);
  };
  const evalVariableNode = (dot: unknown, v: VariableNode, args: Node[], final: Final): unknown => {
    at(v);
    const value = varValue(v.ident[0]!);
    if (v.ident.length === 1) {
      notAFunction(args, final);
      return value;
    }
    return evalFieldChain(dot, value, v, v.ident.slice(1), args, final, false);
  };
  const evalFieldChain = (dot: unknown, receiver: unknown, node: Node, ident: string[], args: Node[], final: Final, iface: boolean): unknown => {
    let r = receiver;
    let isIface = iface;
    for (let i = 0; i < ident.length - 1; i++) {
      const k = kindOf(r);
      r = evalField(dot, ident[i]!, node, [], MISSING, r, isIface);
      isIface = k === 'map';
    }
    return evalField(dot, ident[ident.length - 1]!, node, args, final, r, isIface);
  };
  const evalField = (dot: unknown, name: string, node: Node, args: Node[], final: Final, receiver: unknown, iface: boolean): unknown => {
    if (receiver === undefined || (receiver === null && !iface)) {
      if (opts.missingKey === 'error') fail(`nil data; no entry for key ${goQuote(name)}`);
      return undefined;
    }
    const typ = iface ? 'interface {}' : typeName(receiver);
    if (receiver === null) return fail(`nil pointer evaluating ${typ}.${name}`);
    const k = kindOf(receiver);
    if ((k === 'struct' || k === 'map') && typeof (receiver as Record<string, unknown>)[name] === 'function') {
      const method = (receiver as Record<string, (...a: unknown[]) => unknown>)[name]!;
      const params: ParamType[] = Array.from({ length: method.length }, () => 'string');
      return evalCall(dot, { params, fn: (...a) => method.apply(receiver, a) }, false, node, name, args, final);
    }
    const hasArgs = args.length > 1 || final !== MISSING;
    if (k === 'struct') {
      if (Object.prototype.hasOwnProperty.call(receiver, name)) {
        if (hasArgs) fail(`${name} has arguments but cannot be invoked as function`);
        return (receiver as Record<string, unknown>)[name];
      }
    } else if (k === 'map') {
      if (hasArgs) fail(`${name} is not a method but has arguments`);
      if (Object.prototype.hasOwnProperty.call(receiver, name)) return (receiver as Record<string, unknown>)[name];
      if (opts.missingKey === 'error') fail(`map has no entry for key ${goQuote(name)}`);
      return opts.missingKey === 'zero' ? null : undefined;
    }
    return fail(`can't evaluate field ${name} in type ${typ}`);
  };

  const evalFunction = (dot: unknown, node: IdentifierNode, cmd: Node, args: Node[], final: Final): unknown => {
    at(node);
    const fn = opts.funcs.get(node.ident);
    if (!fn) return fail(`${goQuote(node.ident)} is not a defined function`);
    return evalCall(dot, fn, BUILTIN_SHORT_CIRCUIT.has(node.ident), cmd, node.ident, args, final);
  };

  const evalCall = (dot: unknown, fn: TemplateFunc, shortCircuit: boolean, node: Node, name: string, allArgs: Node[], final: Final): unknown => {
    const args = allArgs.slice(1);
    const numIn = args.length + (final !== MISSING ? 1 : 0);
    const numFixed = fn.variadic ? fn.params.length : args.length;
    if (fn.variadic) {
      if (numIn < numFixed) fail(`wrong number of args for ${name}: want at least ${numFixed} got ${args.length}`);
    } else if (numIn !== fn.params.length) fail(`wrong number of args for ${name}: want ${fn.params.length} got ${numIn}`);
    if (shortCircuit) {
      let v: unknown;
      for (const a of args) {
        v = evalArg(dot, 'value', a);
        if (isTrue(v) === (name === 'or')) return v;
      }
      if (final !== MISSING) v = final;
      return v;
    }
    const argv: unknown[] = [];
    let i = 0;
    for (; i < numFixed && i < args.length; i++) argv.push(evalArg(dot, fn.params[i]!, args[i]!));
    if (fn.variadic) for (; i < args.length; i++) argv.push(evalArg(dot, fn.variadic, args[i]!));
    if (final !== MISSING) {
      const t = i < fn.params.length ? fn.params[i]! : fn.variadic ?? 'any';
      argv.push(validateType(final, t));
    }
    try {
      return fn.fn(...argv);
    } catch (e) {
      if (e instanceof TemplateExecError) throw e;
      at(node);
      return fail(`error calling ${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  const validateType = (value: unknown, t: ParamType): unknown => {
    if (value === undefined) {
      if (t === 'value') return undefined;
      if (canBeNil(t)) return null;
      return fail(`invalid value; expected ${typeLabel(t)}`);
    }
    if (value === null && canBeNil(t)) return null;
    if (!assignable(value, t)) fail(`wrong type for value; expected ${typeLabel(t)}; got ${typeName(value)}`);
    return value;
  };

  const evalArg = (dot: unknown, t: ParamType, n: Node): unknown => {
    at(n);
    switch (n.type) {
      case 'dot':
        return validateType(dot, t);
      case 'nil':
        if (canBeNil(t) || t === 'value') return null;
        return fail(`cannot assign nil to ${typeLabel(t)}`);
      case 'field':
        return validateType(evalFieldNode(dot, n, [n], MISSING), t);
      case 'variable':
        return validateType(evalVariableNode(dot, n, [], MISSING), t);
      case 'pipe':
        return validateType(evalPipeline(dot, n), t);
      case 'identifier':
        return validateType(evalFunction(dot, n, n, [n], MISSING), t);
      case 'chain':
        return validateType(evalChainNode(dot, n, [], MISSING), t);
      default:
    }
    switch (t) {
      case 'bool':
        if (n.type === 'bool') return n.val;
        return fail(`expected bool; found ${nodeString(n)}`);
      case 'int':
        if (n.type === 'number' && n.isInt) return n.value;
        return fail(`expected integer; found ${nodeString(n)}`);
      case 'string':
        if (n.type === 'string') return n.text;
        return fail(`expected string; found ${nodeString(n)}`);
      case 'any':
      case 'value':
        if (n.type === 'bool') return n.val;
        if (n.type === 'number') return idealConstant(n);
        if (n.type === 'string') return n.text;
        return fail(`can't handle assignment of ${nodeString(n)} to empty interface argument`);
      default:
        return fail(`can't handle ${nodeString(n)} for arg of type ${typeLabel(t)}`);
    }
  };

  walk(data, tpl.root as ListNode);
  return out;
}
