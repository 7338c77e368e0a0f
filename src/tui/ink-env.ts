/**
 * Imported before ink and React, which read these variables once, when they
 * load. `kubecano tui` only loads them when a person is at a terminal:
 * - React's development build keeps a performance entry per render in a
 *   buffer nothing empties (a leak over a long session, ink issue #869) and
 *   costs several times more per frame: always the production build;
 * - ink draws nothing until it exits when it believes it runs in CI (the CI
 *   or CONTINUOUS_INTEGRATION variable is set), which a variable inherited
 *   from a build shell would make it believe.
 * Callers import this module on its own (`await import`) BEFORE importing
 * anything that loads ink: React and react-reconciler are CommonJS, and Node
 * runs the CommonJS modules of an ESM import graph before that graph's ESM
 * modules, so a static import of this file next to ink comes too late for
 * React (a development React with a production reconciler draws nothing).
 */
process.env["NODE_ENV"] = "production";
for (const name of ["CI", "CONTINUOUS_INTEGRATION"]) {
  if (process.env[name] !== undefined) process.env[name] = "false";
}

export {};
