/**
 * The build battery's data model: one case is a Dockerfile, a context, build flags and what the
 * result must be (files with content, mode, owner; image config fields; or an error), written by
 * reading BuildKit's and moby's integration tests (the `upstream` field names the test).
 */

/** A context entry: a string is a 0644 file with that content. */
export type ContextEntry =
  | string
  | { content: string | Buffer; mode?: number }
  | { dir: true; mode?: number }
  | { symlink: string }
  | { socket: true }
  /** Bytes made when the context is written (archives). */
  | { bytes: () => Promise<Buffer>; mode?: number };

export type EntryKind = 'file' | 'dir' | 'symlink' | 'socket' | 'fifo' | 'char' | 'block';

export interface FileExpect {
  /** Exact content of a regular file. */
  content?: string;
  /** A regular file whose content contains this. */
  contains?: string;
  /** A regular file whose content does not contain this. */
  lacks?: string;
  type?: EntryKind;
  /** Permission bits (`mode & 0o7777`). */
  mode?: number;
  /** `uid:gid`. */
  owner?: string;
  /** Symlink target. */
  link?: string;
}

/**
 * Image config fields (the `config` object of the OCI image config) compared for equality;
 * `null` means absent or empty. `env` lists entries the Env must contain, `envLacks` variable
 * names it must not have.
 */
export interface ConfigExpect {
  User?: string | null;
  WorkingDir?: string | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  Shell?: string[] | null;
  StopSignal?: string | null;
  ExposedPorts?: Record<string, object> | null;
  Volumes?: Record<string, object> | null;
  Labels?: Record<string, string> | null;
  OnBuild?: string[] | null;
  Healthcheck?: object | null;
  Env?: string[];
  env?: string[];
  envLacks?: string[];
}

export interface Expect {
  /** Path in the image (no leading slash) → content (a string) or a FileExpect. */
  files?: Record<string, string | FileExpect>;
  /** Paths that must not exist. */
  absent?: string[];
  config?: ConfigExpect;
  /** Number of layers (`rootfs.diff_ids`). */
  layers?: number;
  /** The image's last history entries, oldest first: what `created_by` says, and whether it made no layer. */
  history?: { createdBy: RegExp; empty?: boolean }[];
  /** The build fails with a message matching this. */
  error?: RegExp;
}

/** An image the case's build starts from, built (and tagged) first by the same builder. */
export interface BaseBuild {
  tag: string;
  dockerfile: string;
  files?: Record<string, ContextEntry>;
}

export interface Case {
  /** Unique, kebab-case: also the image tag and context dir name. */
  name: string;
  /** The upstream test it reproduces: `buildkit <file>:<test>` or `moby <file>:<test>`. */
  upstream: string;
  /**
   * The Dockerfile. `{{http}}` is replaced by the base URL of the battery's HTTP server
   * (serving HTTP_FILES).
   */
  dockerfile: string;
  /** Name of the Dockerfile in the context when it is not `Dockerfile` (no -f is given). */
  dockerfileName?: string;
  files?: Record<string, ContextEntry>;
  args?: Record<string, string>;
  target?: string;
  bases?: BaseBuild[];
  expect: Expect;
  /** imgbuild is known to fail this case, and why (the test then asserts that it still fails). */
  xfail?: string;
  /** buildah (1.28) is known to fail this case, and why. */
  buildahFails?: string;
  /** The case cannot be given to buildah at all, and why (e.g. syntax it refuses to parse). */
  buildahSkip?: string;
  /** Secrets by id, given to the build (`--secret id=ID,src=FILE`). */
  secrets?: Record<string, string>;
}
