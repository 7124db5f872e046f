/** COPY/ADD --exclude and --parents. */
import type { Case, ContextEntry } from '../types.js';

const BK_EXCLUDE = 'buildkit frontend/dockerfile/exclude_patterns_test.go:testExcludedFilesOnCopy';
const BK_PARENTS = 'buildkit frontend/dockerfile/dockerfile_parents_test.go';

const NO_EXCLUDE = 'buildah 1.28 has no --exclude';
const NO_PARENTS = 'buildah 1.28 has no --parents';

const EXCLUDE_FILES: Record<string, ContextEntry> = {
  'dir1/file-101.png': '2',
  'dir1/file-102.txt': '3',
  'dir1/file-103.jpeg': '4',
  'dir2/file-201.pdf': '6',
  'dir2/file-202.jpeg': '7',
  'dir2/file-203.png': '8',
  'dir3/file-301.mp3': '9',
  'dir3/file-302.mpeg': '10',
  'dir4/file-401.txt': '11',
  'dir4/file-402.txt': { symlink: 'file-401.txt' },
  'dir4/file-403.txt': { symlink: 'file-404.txt' },
};

/** The tree the --parents cases copy from (made by a RUN, as upstream does). */
const PARENTS_BASE = `FROM busybox AS base
WORKDIR /test
RUN mkdir -p a/b/c/d/e a/b2/c/d/e a/b/c2/d/e a/b/c2/d/e2 && touch a/b/c/d/foo a/b/c/d/e/bay a/b2/c/d/e/bar a/b/c2/d/e/baz a/b/c2/d/e2/baz
FROM scratch
`;

export const filterCases: Case[] = [
  {
    name: 'exclude-images-from-context',
    upstream: `${BK_EXCLUDE} (builder1)`,
    dockerfile: 'FROM scratch\nCOPY --exclude=*/*.png --exclude=*/*.jpeg . /1\n',
    files: EXCLUDE_FILES,
    expect: {
      files: { '1/dir1/file-102.txt': '3', '1/dir2/file-201.pdf': '6', '1/dir3/file-301.mp3': '9', '1/dir4/file-402.txt': { link: 'file-401.txt' }, '1/dir4/file-403.txt': { link: 'file-404.txt' } },
      absent: ['1/dir1/file-101.png', '1/dir1/file-103.jpeg', '1/dir2/file-202.jpeg', '1/dir2/file-203.png'],
    },
    buildahFails: NO_EXCLUDE,
  },
  {
    name: 'exclude-documents-from-context',
    upstream: `${BK_EXCLUDE} (builder2)`,
    dockerfile: 'FROM scratch\nCOPY --exclude=*/*.pdf --exclude=*/*.txt . /2\n',
    files: EXCLUDE_FILES,
    expect: {
      files: { '2/dir1/file-101.png': '2', '2/dir2/file-203.png': '8', '2/dir3/file-302.mpeg': '10' },
      absent: ['2/dir1/file-102.txt', '2/dir2/file-201.pdf', '2/dir4/file-401.txt', '2/dir4/file-402.txt', '2/dir4/file-403.txt'],
    },
    buildahFails: NO_EXCLUDE,
  },
  {
    name: 'add-exclude-dir-source',
    upstream: `${BK_EXCLUDE} (builder3)`,
    dockerfile: 'FROM scratch\nADD --exclude=*.mp3 dir3/ /3/\n',
    files: EXCLUDE_FILES,
    expect: { files: { '3/file-302.mpeg': '10' }, absent: ['3/file-301.mp3'] },
    buildahFails: NO_EXCLUDE,
  },
  {
    name: 'exclude-wildcard-sources',
    upstream: `${BK_EXCLUDE} (builder4)`,
    dockerfile: 'FROM scratch\nCOPY --exclude=*.mp3 --exclude=*.jpeg --exclude=*.png --exclude=*.pdf --exclude=*.txt dir* /4/\n',
    files: EXCLUDE_FILES,
    expect: {
      files: { '4/file-302.mpeg': '10' },
      absent: ['4/file-101.png', '4/file-102.txt', '4/file-201.pdf', '4/file-301.mp3', '4/file-401.txt', '4/file-402.txt', '4/dir4'],
    },
    buildahFails: NO_EXCLUDE,
  },
  {
    name: 'add-exclude-wildcard-sources',
    upstream: `${BK_EXCLUDE} (builder5)`,
    dockerfile: 'FROM scratch\nADD --exclude=*.mp* --exclude=*.jpeg --exclude=*.png --exclude=*.pdf dir* /5\n',
    files: EXCLUDE_FILES,
    expect: {
      files: { '5/file-102.txt': '3', '5/file-401.txt': '11', '5/file-402.txt': { link: 'file-401.txt' }, '5/file-403.txt': { link: 'file-404.txt' } },
      absent: ['5/file-101.png', '5/file-301.mp3', '5/file-302.mpeg', '5/file-201.pdf'],
    },
    buildahFails: NO_EXCLUDE,
  },
  {
    name: 'exclude-everything',
    upstream: `${BK_EXCLUDE} (builder6)`,
    dockerfile: 'FROM scratch\nADD --exclude=* dir* /6\nCOPY dir3/file-302.mpeg /keep\n',
    files: EXCLUDE_FILES,
    expect: { files: { '6': { type: 'dir' }, keep: '10' }, absent: ['6/file-101.png', '6/file-302.mpeg', '6/dir1'] },
    buildahFails: NO_EXCLUDE,
  },
  {
    name: 'exclude-several-sources',
    upstream: `${BK_EXCLUDE} (patterns apply below each source)`,
    dockerfile: 'FROM scratch\nCOPY --exclude=*.txt dir1 dir4 /out/\n',
    files: EXCLUDE_FILES,
    expect: { files: { 'out/file-101.png': '2', 'out/file-103.jpeg': '4' }, absent: ['out/file-102.txt', 'out/file-401.txt', 'out/file-402.txt', 'out/file-403.txt'] },
    buildahFails: NO_EXCLUDE,
  },
  {
    name: 'exclude-double-star',
    upstream: `${BK_EXCLUDE} (a ** pattern)`,
    dockerfile: 'FROM scratch\nCOPY --exclude=**/*.png --exclude=dir2 . /out/\n',
    files: EXCLUDE_FILES,
    expect: { files: { 'out/dir1/file-102.txt': '3', 'out/dir3/file-301.mp3': '9' }, absent: ['out/dir1/file-101.png', 'out/dir2'] },
    buildahFails: NO_EXCLUDE,
  },
  {
    name: 'exclude-from-stage',
    upstream: `${BK_EXCLUDE} (COPY --from with --exclude)`,
    dockerfile: 'FROM busybox AS base\nCOPY . /src/\nFROM scratch\nCOPY --from=base --exclude=*/*.png --exclude=*/*.jpeg /src /1\n',
    files: EXCLUDE_FILES,
    expect: { files: { '1/dir1/file-102.txt': '3', '1/dir2/file-201.pdf': '6' }, absent: ['1/dir1/file-101.png', '1/dir2/file-202.jpeg'] },
    buildahFails: NO_EXCLUDE,
  },
  {
    name: 'parents-context',
    upstream: `${BK_PARENTS}:testCopyParents`,
    dockerfile: 'FROM scratch\nCOPY --parents foo1/foo2/bar /\nWORKDIR /test\nCOPY --parents foo1/foo2/ba* .\n',
    files: { 'foo1/foo2/bar': 'testing', 'foo1/foo2/baz': 'testing2' },
    expect: { files: { 'foo1/foo2/bar': 'testing', 'test/foo1/foo2/bar': 'testing', 'test/foo1/foo2/baz': 'testing2' } },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-several-sources',
    upstream: `${BK_PARENTS}:testCopyParents (several sources)`,
    dockerfile: 'FROM scratch\nCOPY --parents x/one y/z/two /out/\n',
    files: { 'x/one': '1', 'y/z/two': '2' },
    expect: { files: { 'out/x/one': '1', 'out/y/z/two': '2' }, absent: ['out/one', 'out/two'] },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-relative-anchor',
    upstream: `${BK_PARENTS}:testCopyRelativeParents (./ pivot in the context)`,
    dockerfile: 'FROM scratch\nCOPY --parents ./x/./y/file /out/\nCOPY --parents ./x/y/file /out2/\n',
    files: { 'x/y/file': 'f' },
    expect: { files: { 'out/y/file': 'f', 'out2/x/y/file': 'f' }, absent: ['out/x'] },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-pivot',
    upstream: `${BK_PARENTS}:testCopyRelativeParents (middle)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/a/b/./c/d /out/\n`,
    expect: { files: { 'out/c/d/e': { type: 'dir' }, 'out/c/d/foo': '' }, absent: ['out/a', 'out/e', 'out/d'] },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-dir-dot',
    upstream: `${BK_PARENTS}:testCopyRelativeParents (end)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/a/b/c/d/. /out/\n`,
    expect: { files: { 'out/test/a/b/c/d/e': { type: 'dir' }, 'out/test/a/b/c/d/foo': '' } },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-dot-start',
    upstream: `${BK_PARENTS}:testCopyRelativeParents (start)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents ./test/a/b/c/d /out/\n`,
    expect: { files: { 'out/test/a/b/c/d/e': { type: 'dir' }, 'out/test/a/b/c/d/foo': '' } },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-double-pivot',
    upstream: `${BK_PARENTS}:testCopyRelativeParents (double)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/a/./b/./c /out/\n`,
    expect: { files: { 'out/b/c/d/e': { type: 'dir' }, 'out/b/c/d/foo': '' }, absent: ['out/c', 'out/a'] },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-wildcard',
    upstream: `${BK_PARENTS}:testCopyRelativeParents (wildcard)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/a/./*/c /out/\n`,
    expect: { files: { 'out/b/c/d/e': { type: 'dir' }, 'out/b2/c/d/e/bar': '' }, absent: ['out/c'] },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-double-star',
    upstream: `${BK_PARENTS}:testCopyRelativeParents (doublewildcard)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/a/b*/./c/**/e /out/\n`,
    expect: { files: { 'out/c/d/e': { type: 'dir' }, 'out/c/d/e/bay': '', 'out/c/d/e/bar': '' }, absent: ['out/c/d/foo'] },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-double-star-two-sources',
    upstream: `${BK_PARENTS}:testCopyRelativeParents (doubleinputs)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar /out/\n`,
    expect: { files: { 'out/d/e/baz': '', 'out/d/e2/baz': '', 'out/c/d/e/bar': '' }, absent: ['out/d/e/bay'] },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-no-pivot',
    upstream: `${BK_PARENTS}:testCopyParentsMissingDirectory (normal)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/a/b/c/d /out/\n`,
    expect: { files: { 'out/test/a/b/c/d/e/bay': '', 'out/test/a/b/c/d/foo': '' }, absent: ['out/e', 'out/a', 'out/d'] },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-missing-file',
    upstream: `${BK_PARENTS}:testCopyParentsMissingDirectory (nonexistentfile)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/nonexistent-file /out/\n`,
    expect: { error: /nonexistent-file.*(not found|no such file)/i },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-wildcard-matches-nothing',
    upstream: `${BK_PARENTS}:testCopyParentsMissingDirectory (wildcard-nonexistent)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/a/b3*/c /out/\n`,
    expect: { files: { out: { type: 'dir' } }, absent: ['out/a', 'out/test'] },
    buildahFails: NO_PARENTS,
  },
  {
    name: 'parents-wildcard-after-pivot-matches-nothing',
    upstream: `${BK_PARENTS}:testCopyParentsMissingDirectory (wildcard-afterpivot)`,
    dockerfile: `${PARENTS_BASE}COPY --from=base --parents /test/a/b/./c3* /out/\n`,
    expect: { files: { out: { type: 'dir' } }, absent: ['out/a', 'out/c', 'out/c2'] },
    buildahFails: NO_PARENTS,
  },
];
