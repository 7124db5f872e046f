/**
 * The EXPOSE rules (BuildKit `convert_expose.go`): a protocol in upper case, and an IP address or a
 * host port in what only names a container port. Ports are taken as BuildKit splits them
 * (`[ip:][hostPort:]port[/proto]`); a port BuildKit refuses is the build's error, not a finding.
 */
import type { SourceRange } from '../frontend/instructions.js';
import { lex, type EscapeChar } from '../frontend/shell-lex.js';
import type { Linter } from './config.js';
import { RULES } from './rules.js';

function splitParts(raw: string): { ip: string; hostPort: string; port: string } {
  const parts = raw.split(':');
  if (parts.length === 1) return { ip: '', hostPort: '', port: parts[0]! };
  if (parts.length === 2) return { ip: '', hostPort: parts[0]!, port: parts[1]! };
  const n = parts.length;
  return { ip: parts.slice(0, n - 2).join(':'), hostPort: parts[n - 2]!, port: parts[n - 1]! };
}

export function lintExpose(linter: Linter, words: readonly string[], env: ReadonlyMap<string, string> | undefined, range: SourceRange, escape: EscapeChar): void {
  const ports: string[] = [];
  for (const w of words) {
    try {
      ports.push(...lex(w, (n) => env?.get(n), { escape }).words);
    } catch {
      return;
    }
  }
  for (const raw of ports) {
    const { ip, hostPort, port } = splitParts(raw);
    const slash = port.indexOf('/');
    const num = slash < 0 ? port : port.slice(0, slash);
    const proto = slash < 0 ? '' : port.slice(slash + 1);
    if (num === '' || !['', 'tcp', 'udp', 'sctp'].includes(proto.toLowerCase())) continue;
    if (proto !== proto.toLowerCase()) linter.report(RULES.ExposeProtoCasing, range, RULES.ExposeProtoCasing.format(raw));
    if (ip !== '' || hostPort !== '') linter.report(RULES.ExposeInvalidFormat, range, RULES.ExposeInvalidFormat.format(raw));
  }
}
