/** Running the CLI on a real pseudo-terminal, for the `-t` tests of run and exec. */
import { spawn } from 'node:child_process';
import { CLI_EXE, REPO_ROOT } from '../helpers/cli.js';

/**
 * Runs a command on a real pseudo-terminal (Python's pty/termios: Node has no pty of its own) of
 * 30x100; once the output contains `ready` the window becomes 42x132, which makes the kernel send
 * SIGWINCH to the command. Prints the output, then `EXIT <status>`.
 */
const PTY_HARNESS = `
import os, sys, fcntl, termios, struct, select, subprocess, time
m, s = os.openpty()
fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 100, 0, 0))
def ctty():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
p = subprocess.Popen(sys.argv[1:], stdin=s, stdout=s, stderr=s, preexec_fn=ctty, close_fds=True)
os.close(s)
out, resized, deadline = b'', False, time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([m], [], [], 0.2)
    if r:
        try:
            b = os.read(m, 4096)
        except OSError:
            break
        if not b:
            break
        out += b
    if not resized and b'ready' in out:
        fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack('HHHH', 42, 132, 0, 0))
        resized = True
    if r == [] and p.poll() is not None:
        break
if p.poll() is None:
    p.kill()
sys.stdout.write(out.decode(errors='replace') + 'EXIT %d' % p.wait())
`;

/** The CLI with `args` on a 30x100 pty, resized to 42x132 once it printed `ready`; output then `EXIT n`. */
export function onPty(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', ['-c', PTY_HARNESS, CLI_EXE, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(out.replace(/\r/g, '')));
  });
}
