/**
 * Imported before ink. ink decides once, when it loads, whether it runs in
 * CI (the CI or CONTINUOUS_INTEGRATION variable is set), and in CI it draws
 * nothing until it exits. `kubecano tui` only loads ink when a person is at
 * a terminal, so a CI variable inherited from a build shell is wrong there.
 */
for (const name of ["CI", "CONTINUOUS_INTEGRATION"]) {
  if (process.env[name] !== undefined) process.env[name] = "false";
}

export {};
