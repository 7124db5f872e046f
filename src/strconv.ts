/**
 * Go's strconv.ParseBool, which Docker and BuildKit use for the booleans of their options
 * (`--mount readonly=`, `--security-opt no-new-privileges=`, `# check=error=`, `--cache-to
 * ignore-error=`): undefined for anything else.
 */
export function parseBool(v: string): boolean | undefined {
  if (v === '1' || v === 't' || v === 'T' || v === 'true' || v === 'TRUE' || v === 'True') return true;
  if (v === '0' || v === 'f' || v === 'F' || v === 'false' || v === 'FALSE' || v === 'False') return false;
  return undefined;
}
