/** The command table: one module per command, each registering its own flags. */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import build from './build.js';
import run from './run.js';
import exec from './exec.js';
import ps from './ps.js';
import logs from './logs.js';
import stop from './stop.js';
import kill from './kill.js';
import rm from './rm.js';
import commit from './commit.js';
import pull from './pull.js';
import push from './push.js';
import login from './login.js';
import logout from './logout.js';
import images from './images.js';
import inspect from './inspect.js';
import history from './history.js';
import tag from './tag.js';
import rmi from './rmi.js';
import prune from './prune.js';
import importCmd from './import.js';
import save from './save.js';
import load from './load.js';

export type Register = (program: Command, ctx: CliContext) => void;

export const commands: Register[] = [build, run, exec, ps, logs, stop, kill, rm, commit, pull, push, login, logout, images, inspect, history, tag, rmi, prune, importCmd, save, load];
