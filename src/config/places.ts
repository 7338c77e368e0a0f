/**
 * Where kubecano looks for its config. Its own module, free of the schema:
 * shell completion reads the config's destination names on every TAB and
 * must not load the schema and every destination to find the file.
 */

export const MODULE_NAME = "kubecano";

/** Where a config is searched for, in order, in the current directory. */
export const SEARCH_PLACES = [
  "package.json",
  "kubecano.config.yaml",
  "kubecano.config.yml",
  "kubecano.config.json",
  "kubecano.config.js",
  "kubecano.config.mjs",
  "kubecano.config.ts",
  ".kubecanorc",
  ".kubecanorc.yaml",
  ".kubecanorc.yml",
  ".kubecanorc.json",
  ".kubecanorc.js",
  ".kubecanorc.mjs",
  ".kubecanorc.ts",
] as const;
