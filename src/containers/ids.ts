/** Container ids (64 hex, shown as 12) and generated names (`adjective_noun`, as Docker does). */
import { randomBytes, randomInt } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

export function shortId(id: string): string {
  return id.slice(0, 12);
}

const ADJECTIVES = [
  'brave', 'calm', 'clever', 'eager', 'fervent', 'gifted', 'happy', 'jolly', 'keen', 'lucid', 'modest', 'nifty',
  'quirky', 'serene', 'sharp', 'stoic', 'sweet', 'tender', 'upbeat', 'vibrant', 'witty', 'zealous', 'bold', 'quiet',
];
const NOUNS = [
  'babbage', 'curie', 'darwin', 'euler', 'fermi', 'galois', 'hopper', 'hypatia', 'kepler', 'lovelace', 'meitner',
  'noether', 'pasteur', 'ritchie', 'shannon', 'tesla', 'turing', 'volta', 'wozniak', 'yalow', 'lamport', 'knuth',
];

export function generateName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${NOUNS[randomInt(NOUNS.length)]}`;
}

/** Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. */
export function validateName(name: string): string {
  const n = name.startsWith('/') ? name.slice(1) : name;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(n)) {
    throw new InvalidArgumentError(`invalid container name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return n;
}
