/** imgbuild's own version, as `--version`, `version` and `info` print it. */
export const IMGBUILD_VERSION = '0.1.0';
