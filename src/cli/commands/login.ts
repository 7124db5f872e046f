import type { Command } from 'commander';
import { InvalidArgumentError } from '../../errors.js';
import type { CliContext } from '../context.js';
import { createInterface } from 'node:readline';

interface LoginFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  insecure?: boolean;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const c of stream) s += typeof c === 'string' ? c : (c as Buffer).toString('utf8');
  return s;
}

/** Reads a line from the terminal, without echo for secrets. */
async function prompt(ctx: CliContext, question: string, secret: boolean): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: ctx.stderr as NodeJS.WritableStream, terminal: true });
  if (secret) {
    // mute the echo of typed characters
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.includes(question)) (ctx.stderr as NodeJS.WritableStream).write(s);
    };
  }
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    rl.close();
    if (secret) ctx.stderr.write('\n');
  }
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('login')
    .description('log in to a registry (credentials are checked, then saved like docker does)')
    .argument('[registry]', 'registry host (default docker.io)', 'docker.io')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password or token')
    .option('--password-stdin', 'read the password from stdin')
    .option('--insecure', 'allow plain http and unverified TLS for this registry')
    .action(async (registryArg: string, flags: LoginFlags) => {
      // The registry client loads here, not with the module: `--help` loads every command module,
      // and evaluating the client (undici) there cost ~10 ms (docs/architecture.md, Measurements).
      const [{ Keychain, StaticAuthenticator, keyHost }, { RegistrySession }] = await Promise.all([
        import('../../registry/auth.js'),
        import('../../registry/transport.js'),
      ]);
      const registry = keyHost(registryArg);
      if (flags.password !== undefined && flags.passwordStdin) throw new InvalidArgumentError('--password and --password-stdin are mutually exclusive');
      let username = flags.username;
      let password = flags.password;
      if (flags.passwordStdin) {
        if (username === undefined) throw new InvalidArgumentError('--password-stdin needs --username');
        password = (await readAll(process.stdin)).replace(/\r?\n$/, '');
      }
      const interactive = Boolean(process.stdin.isTTY);
      if (username === undefined) {
        if (!interactive) throw new InvalidArgumentError('no user name given (use -u) and stdin is not a terminal');
        username = (await prompt(ctx, 'Username: ', false)).trim();
      }
      if (password === undefined) {
        if (!interactive) throw new InvalidArgumentError('no password given (use -p or --password-stdin) and stdin is not a terminal');
        password = await prompt(ctx, 'Password: ', true);
      }
      if (!username) throw new InvalidArgumentError('user name is empty');
      if (!password) throw new InvalidArgumentError('password is empty');
      const session = new RegistrySession({
        auth: new StaticAuthenticator({ [registry]: { username, password } }),
        insecure: Boolean(flags.insecure),
        env: ctx.env,
      });
      try {
        await session.client(registry).verifyCredentials(ctx.signal);
      } finally {
        await session.close();
      }
      const { where } = await new Keychain({ env: ctx.env }).store(registry, { username, password });
      ctx.stderr.write(`credentials saved in ${where}\n`);
      ctx.stdout.write('Login Succeeded\n');
    });
}
