import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { Keychain, keyHost } from '../../registry/auth.js';

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('logout')
    .description('remove saved credentials for a registry')
    .argument('[registry]', 'registry host (default docker.io)', 'docker.io')
    .action(async (registryArg: string) => {
      const registry = keyHost(registryArg);
      const removed = await new Keychain({ env: ctx.env }).erase(registry);
      ctx.stdout.write(removed ? `Removing login credentials for ${registry}\n` : `Not logged in to ${registry}\n`);
    });
}
