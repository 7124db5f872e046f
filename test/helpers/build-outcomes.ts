/** Reading a build's plain progress (`--progress=plain`) in tests. */

/** Each step's outcome by its label: `CACHED`, `DONE` or `ERROR` (a label seen twice keeps its last). */
export function outcomes(stderr: string): Map<string, string> {
  const labels = new Map<string, string>();
  const out = new Map<string, string>();
  for (const line of stderr.split('\n')) {
    const m = /^#(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const id = m[1]!;
    const rest = m[2]!;
    if (!labels.has(id)) labels.set(id, rest);
    else if (rest === 'CACHED' || /^DONE /.test(rest) || rest.startsWith('ERROR')) out.set(labels.get(id)!, rest.split(' ')[0]!);
  }
  return out;
}

/** The outcomes of the layer steps (RUN, COPY, ADD), in order. */
export function layerSteps(stderr: string): [string, string][] {
  return [...outcomes(stderr)].filter(([l]) => /\] (RUN|COPY|ADD)/.test(l));
}
