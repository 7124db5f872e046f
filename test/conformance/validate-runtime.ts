/**
 * A runtime-spec `config.json` validator (oci-runtime-tool's schema check) over the schemas in
 * test/conformance/data/runtime-spec-schema. They are draft-04; Ajv 8 reads them once `$schema`
 * is dropped (no draft-04-only keywords are used).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';

const SCHEMA_DIR = join(import.meta.dirname, 'data', 'runtime-spec-schema');

export function runtimeConfigValidator(): ValidateFunction {
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
  for (const f of readdirSync(SCHEMA_DIR).filter((n) => n.endsWith('.json'))) {
    const s = JSON.parse(readFileSync(join(SCHEMA_DIR, f), 'utf8')) as Record<string, unknown>;
    delete s.$schema;
    ajv.addSchema(s, f);
  }
  return ajv.getSchema('config-schema.json')!;
}
