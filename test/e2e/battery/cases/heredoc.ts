/** Heredocs in COPY and RUN (buildah 1.28 has none: these cases are skipped there). */
import type { Case } from '../types.js';
import { addUser, lines } from './util.js';

const BK_HEREDOC = 'buildkit frontend/dockerfile/dockerfile_heredoc_test.go';
const SKIP = 'buildah 1.28 has no heredocs';

export const heredocCases: Case[] = [
  {
    name: 'heredoc-copy',
    upstream: `${BK_HEREDOC}:testCopyHeredoc`,
    dockerfile: `FROM busybox AS build
${addUser('user', 1000)}
WORKDIR /dest
COPY <<EOF single
single file
EOF
COPY <<EOF <<EOF2 double/
first file
EOF
second file
EOF2
RUN mkdir -p /permfiles
COPY --chmod=777 <<EOF /permfiles/all
dummy content
EOF
COPY --chmod=0644 <<EOF /permfiles/rw
dummy content
EOF
COPY --chown=user:user <<EOF /permfiles/owned
dummy content
EOF
RUN stat -c "%04a" /permfiles/all >> perms && stat -c "%04a" /permfiles/rw >> perms && stat -c "%U:%G" /permfiles/owned >> perms
FROM scratch
COPY --from=build /dest /
`,
    expect: {
      files: {
        single: { content: 'single file\n', mode: 0o644 },
        'double/EOF': 'first file\n',
        'double/EOF2': 'second file\n',
        perms: '0777\n0644\nuser:user\n',
      },
    },
    buildahSkip: SKIP,
  },
  {
    name: 'heredoc-copy-special-symbols',
    upstream: `${BK_HEREDOC}:testCopyHeredocSpecialSymbols`,
    dockerfile: lines(
      'FROM scratch',
      'COPY <<EOF quotefile', '"quotes in file"', 'EOF',
      'COPY <<EOF slashfile1', '\\', 'EOF',
      'COPY <<EOF slashfile2', '\\\\', 'EOF',
      'COPY <<EOF slashfile3', '\\$', 'EOF',
      'COPY <<"EOF" rawslashfile1', '\\', 'EOF',
      'COPY <<"EOF" rawslashfile2', '\\\\', 'EOF',
      'COPY <<"EOF" rawslashfile3', '\\$', 'EOF',
    ),
    expect: {
      files: {
        quotefile: '"quotes in file"\n',
        slashfile1: '\n',
        slashfile2: '\\\n',
        slashfile3: '$\n',
        rawslashfile1: '\\\n',
        rawslashfile2: '\\\\\n',
        rawslashfile3: '\\$\n',
      },
    },
    buildahSkip: SKIP,
  },
  {
    name: 'heredoc-run-basic',
    upstream: `${BK_HEREDOC}:testRunBasicHeredoc`,
    dockerfile: 'FROM busybox AS build\nRUN <<EOF\necho "i am" >> /dest\nwhoami >> /dest\nEOF\nFROM scratch\nCOPY --from=build /dest /dest\n',
    expect: { files: { dest: 'i am\nroot\n' } },
    buildahSkip: SKIP,
  },
  {
    name: 'heredoc-run-shebang',
    upstream: `${BK_HEREDOC}:testRunShebangHeredoc`,
    dockerfile: `FROM busybox AS build
WORKDIR /dest
RUN <<EOF
#!/bin/awk -f
BEGIN {
\tprint "hello" >> "./out1"
\tprint "world" >> "./out1"
}
EOF
RUN <<-EOF
\t#!/bin/awk -f
\tBEGIN {
\t\tprint "hello" >> "./out2"
\t\tprint "world" >> "./out2"
\t}
EOF
FROM scratch
COPY --from=build /dest /
`,
    expect: { files: { out1: 'hello\nworld\n', out2: 'hello\nworld\n' } },
    buildahSkip: SKIP,
  },
  {
    name: 'heredoc-run-complex',
    upstream: `${BK_HEREDOC}:testRunComplexHeredoc`,
    dockerfile: lines(
      'FROM busybox AS build',
      'WORKDIR /dest',
      "RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \\",
      "\tcat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2",
      'hello WORLD',
      'EOF1',
      'HELLO world',
      'EOF2',
      'RUN <<EOF 3<<IN1 4<<IN2 awk -f -',
      'BEGIN {',
      '\twhile ((getline line < "/proc/self/fd/3") > 0)',
      '\t\tprint tolower(line) > "./fd3"',
      '\twhile ((getline line < "/proc/self/fd/4") > 0)',
      '\t\tprint toupper(line) > "./fd4"',
      '}',
      'EOF',
      'hello WORLD',
      'IN1',
      'HELLO world',
      'IN2',
      'FROM scratch',
      'COPY --from=build /dest /',
    ),
    expect: { files: { out1: 'hello world\n', out2: 'HELLO WORLD\n', fd3: 'hello world\n', fd4: 'HELLO WORLD\n' } },
    buildahSkip: SKIP,
  },
  {
    name: 'heredoc-indent',
    upstream: `${BK_HEREDOC}:testHeredocIndent`,
    dockerfile: `FROM busybox AS build
COPY <<EOF /dest/foo-copy
\tfoo
EOF
COPY <<-EOF /dest/bar-copy
\tbar
EOF
RUN <<EOF
echo "
\tfoo" > /dest/foo-run
EOF
RUN <<-EOF
echo "
\tbar" > /dest/bar-run
EOF
RUN <<EOF
#!/bin/sh
echo "
\tfoo" > /dest/foo2-run
EOF
RUN <<-EOF
#!/bin/sh
echo "
\tbar" > /dest/bar2-run
EOF
RUN <<EOF sh > /dest/foo3-run
echo "
\tfoo"
EOF
RUN <<-EOF sh > /dest/bar3-run
echo "
\tbar"
EOF
FROM scratch
COPY --from=build /dest /
`,
    expect: {
      files: {
        'foo-copy': '\tfoo\n',
        'foo-run': '\n\tfoo\n',
        'foo2-run': '\n\tfoo\n',
        'foo3-run': '\n\tfoo\n',
        'bar-copy': 'bar\n',
        'bar-run': '\nbar\n',
        'bar2-run': '\nbar\n',
        'bar3-run': '\nbar\n',
      },
    },
    buildahSkip: SKIP,
  },
  {
    name: 'heredoc-variable-substitution',
    upstream: `${BK_HEREDOC}:testHeredocVarSubstitution`,
    dockerfile: lines(
      'FROM busybox as build',
      'ARG name=world',
      'COPY <<EOF /dest/c1', 'Hello ${name}!', 'EOF',
      "COPY <<'EOF' /dest/c2", 'Hello ${name}!', 'EOF',
      'COPY <<"EOF" /dest/c3', 'Hello ${name}!', 'EOF',
      'COPY <<EOF /dest/q1', "Hello '${name}'!", 'EOF',
      'COPY <<EOF /dest/q2', 'Hello "${name}"!', 'EOF',
      "COPY <<'EOF' /dest/qsingle1", "Hello '${name}'!", 'EOF',
      "COPY <<'EOF' /dest/qsingle2", 'Hello "${name}"!', 'EOF',
      'COPY <<"EOF" /dest/qdouble1', "Hello '${name}'!", 'EOF',
      'COPY <<"EOF" /dest/qdouble2', 'Hello "${name}"!', 'EOF',
      'RUN <<EOF', 'greeting="Hello"', 'echo "${greeting} ${name}!" > /dest/r1', 'EOF',
      'RUN <<EOF', 'name="new world"', 'echo "Hello ${name}!" > /dest/r2', 'EOF',
      'FROM scratch',
      'COPY --from=build /dest /',
    ),
    expect: {
      files: {
        c1: 'Hello world!\n',
        c2: 'Hello ${name}!\n',
        c3: 'Hello ${name}!\n',
        q1: "Hello 'world'!\n",
        q2: 'Hello "world"!\n',
        qsingle1: "Hello '${name}'!\n",
        qsingle2: 'Hello "${name}"!\n',
        qdouble1: "Hello '${name}'!\n",
        qdouble2: 'Hello "${name}"!\n',
        r1: 'Hello world!\n',
        r2: 'Hello new world!\n',
      },
    },
    buildahSkip: SKIP,
  },
  {
    name: 'heredoc-copy-chown-and-mode',
    upstream: `${BK_HEREDOC}:testCopyHeredoc (owner and mode in the image)`,
    dockerfile: 'FROM busybox\nCOPY --chown=daemon:daemon <<EOF /owned\nx\nEOF\nCOPY --chmod=4711 <<EOF /mode\ny\nEOF\n',
    expect: { files: { owned: { content: 'x\n', owner: '1:1', mode: 0o644 }, mode: { content: 'y\n', mode: 0o4711, owner: '0:0' } } },
    buildahSkip: SKIP,
  },
];
