/**
 * Private keys an ssh agent of ours serves (`build --ssh id=KEYFILE`): OpenSSH's own format
 * (`BEGIN OPENSSH PRIVATE KEY`, unencrypted) and PEM (PKCS#1 RSA, SEC1 EC, PKCS#8) for ed25519,
 * RSA and ECDSA (nistp256/384/521) keys; their public key blob as the agent protocol lists it,
 * and signatures as the protocol returns them (RFC 8332 for RSA's sha2 flags, RFC 5656 for
 * ECDSA). A passphrase-protected key is refused, as BuildKit refuses it.
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { InvalidArgumentError } from '../../errors.js';

/** The SSH wire encoding of a string (uint32 length, bytes). */
export function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/** An unsigned big-endian integer as an SSH mpint (a leading zero when the top bit is set). */
function mpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v.length && (v[0]! & 0x80) !== 0) v = Buffer.concat([Buffer.from([0]), v]);
  if (v.length === 1 && v[0] === 0) v = Buffer.alloc(0);
  return sshString(v);
}

/** Reads SSH wire values from a buffer in order. */
class WireReader {
  private pos = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  string(): Buffer {
    if (this.pos + 4 > this.buf.length) throw new InvalidArgumentError(`${this.what}: truncated key data`);
    const n = this.buf.readUInt32BE(this.pos);
    const start = this.pos + 4;
    if (start + n > this.buf.length) throw new InvalidArgumentError(`${this.what}: truncated key data`);
    this.pos = start + n;
    return this.buf.subarray(start, start + n);
  }
  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new InvalidArgumentError(`${this.what}: truncated key data`);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
}

const CURVES: Record<string, { crv: string; hash: string; size: number }> = {
  nistp256: { crv: 'P-256', hash: 'sha256', size: 32 },
  nistp384: { crv: 'P-384', hash: 'sha384', size: 48 },
  nistp521: { crv: 'P-521', hash: 'sha512', size: 66 },
};
const CURVE_BY_CRV: Record<string, string> = { 'P-256': 'nistp256', 'P-384': 'nistp384', 'P-521': 'nistp521' };

/** A private key an agent can list and sign with. */
export interface AgentKey {
  /** The public key blob (the wire form `ssh-add -L` shows in base64). */
  blob: Buffer;
  comment: string;
  /** The agent's answer to a sign request for `data` with `flags`: the signature blob. */
  sign(data: Buffer, flags: number): Buffer;
}

const b64u = (b: Buffer): string => b.toString('base64url');
/** A fixed-size big-endian integer from an mpint's bytes (for JWK coordinates). */
function fixed(b: Buffer, size: number): Buffer {
  let v = b;
  while (v.length > size && v[0] === 0) v = v.subarray(1);
  return v.length < size ? Buffer.concat([Buffer.alloc(size - v.length), v]) : v;
}

function fromKeyObject(key: KeyObject, comment: string, what: string): AgentKey {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const buf = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url');
  if (key.asymmetricKeyType === 'ed25519') {
    const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(buf(jwk.x))]);
    return { blob, comment, sign: (data) => Buffer.concat([sshString('ssh-ed25519'), sshString(sign(null, data, key))]) };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const blob = Buffer.concat([sshString('ssh-rsa'), mpint(buf(jwk.e)), mpint(buf(jwk.n))]);
    return {
      blob,
      comment,
      sign: (data, flags) => {
        // SSH_AGENT_RSA_SHA2_512 = 4, SSH_AGENT_RSA_SHA2_256 = 2; neither is the old sha1 `ssh-rsa`.
        const [alg, hash] = flags & 4 ? ['rsa-sha2-512', 'sha512'] : flags & 2 ? ['rsa-sha2-256', 'sha256'] : ['ssh-rsa', 'sha1'];
        return Buffer.concat([sshString(alg!), sshString(sign(hash!, data, key))]);
      },
    };
  }
  if (key.asymmetricKeyType === 'ec') {
    const name = CURVE_BY_CRV[jwk.crv ?? ''];
    if (!name) throw new InvalidArgumentError(`${what}: unsupported EC curve ${jwk.crv ?? '?'}`);
    const c = CURVES[name]!;
    const q = Buffer.concat([Buffer.from([4]), fixed(buf(jwk.x), c.size), fixed(buf(jwk.y), c.size)]);
    const type = `ecdsa-sha2-${name}`;
    const blob = Buffer.concat([sshString(type), sshString(name), sshString(q)]);
    return {
      blob,
      comment,
      sign: (data) => {
        const rs = sign(c.hash, data, { key, dsaEncoding: 'ieee-p1363' });
        const half = rs.length / 2;
        return Buffer.concat([sshString(type), sshString(Buffer.concat([mpint(rs.subarray(0, half)), mpint(rs.subarray(half))]))]);
      },
    };
  }
  throw new InvalidArgumentError(`${what}: unsupported key type ${key.asymmetricKeyType ?? '?'}`);
}

/** The private key of an unencrypted `openssh-key-v1` blob as a KeyObject, with its comment. */
function fromOpenssh(text: string, what: string): { key: KeyObject; comment: string } {
  const body = text.replace(/-----(BEGIN|END) OPENSSH PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  const raw = Buffer.from(body, 'base64');
  const magic = Buffer.from('openssh-key-v1\0');
  if (!raw.subarray(0, magic.length).equals(magic)) throw new InvalidArgumentError(`${what}: not an OpenSSH private key`);
  const r = new WireReader(raw.subarray(magic.length), what);
  const cipher = r.string().toString();
  r.string(); // kdf name
  r.string(); // kdf options
  if (cipher !== 'none') throw new InvalidArgumentError(`${what}: this private key is passphrase protected (give an agent socket instead)`);
  if (r.uint32() !== 1) throw new InvalidArgumentError(`${what}: only files holding one key are supported`);
  r.string(); // public key
  const p = new WireReader(r.string(), what);
  if (p.uint32() !== p.uint32()) throw new InvalidArgumentError(`${what}: corrupt private key (check bytes differ)`);
  const type = p.string().toString();
  const jwkKey = (jwk: Record<string, string>): KeyObject => createPrivateKey({ key: jwk, format: 'jwk' });
  let key: KeyObject;
  if (type === 'ssh-ed25519') {
    const pub = p.string();
    const priv = p.string();
    key = jwkKey({ kty: 'OKP', crv: 'Ed25519', x: b64u(pub), d: b64u(priv.subarray(0, 32)) });
  } else if (type === 'ssh-rsa') {
    const n = p.string();
    const e = p.string();
    const d = p.string();
    const qi = p.string();
    const pp = p.string();
    const q = p.string();
    const big = (b: Buffer): bigint => BigInt(`0x${b.toString('hex') || '0'}`);
    const bytes = (v: bigint): Buffer => {
      const h = v.toString(16);
      return Buffer.from(h.length % 2 ? `0${h}` : h, 'hex');
    };
    const strip = (b: Buffer): Buffer => (b.length > 1 && b[0] === 0 ? b.subarray(1) : b);
    key = jwkKey({
      kty: 'RSA', n: b64u(strip(n)), e: b64u(strip(e)), d: b64u(strip(d)), p: b64u(strip(pp)), q: b64u(strip(q)), qi: b64u(strip(qi)),
      dp: b64u(bytes(big(d) % (big(pp) - 1n))), dq: b64u(bytes(big(d) % (big(q) - 1n))),
    });
  } else if (type.startsWith('ecdsa-sha2-')) {
    const name = p.string().toString();
    const c = CURVES[name];
    if (!c) throw new InvalidArgumentError(`${what}: unsupported curve ${name}`);
    const q = p.string();
    const d = p.string();
    key = jwkKey({ kty: 'EC', crv: c.crv, x: b64u(q.subarray(1, 1 + c.size)), y: b64u(q.subarray(1 + c.size)), d: b64u(fixed(d, c.size)) });
  } else {
    throw new InvalidArgumentError(`${what}: unsupported key type ${type}`);
  }
  return { key, comment: p.string().toString() };
}

/** Parses a private key file's text (`what` names it in errors; the comment defaults to it). */
export function parsePrivateKey(text: string, what: string): AgentKey {
  if (text.includes('-----BEGIN OPENSSH PRIVATE KEY-----')) {
    const { key, comment } = fromOpenssh(text, what);
    return fromKeyObject(key, comment, what);
  }
  if (/-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.test(text)) {
    if (/ENCRYPTED/.test(text)) throw new InvalidArgumentError(`${what}: this private key is passphrase protected (give an agent socket instead)`);
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: text, format: 'pem' });
    } catch (e) {
      throw new InvalidArgumentError(`${what}: ${(e as Error).message}`, { cause: e });
    }
    return fromKeyObject(key, what, what);
  }
  throw new InvalidArgumentError(`${what}: no private key found (an OpenSSH or PEM private key, or an agent socket, is expected)`);
}
