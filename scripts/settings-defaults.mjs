// Prints the settings file `make install` puts in /etc/default/cni-shim, from the settings
// table of the built program (dist/settings.js), so the two never drift apart.
const { SETTINGS_TABLE, ENV_FALLBACKS } = await import(new URL("../dist/settings.js", import.meta.url));
const lines = [
  "# Settings of the cni-shim service (EnvironmentFile of cni-shim.service). Uncomment and",
  "# change a line to override its default (shown); command-line flags win over these.",
  "# See `cni-shim serve --help`.",
];
for (const [flag, env, def, what] of SETTINGS_TABLE) {
  lines.push("", `# ${flag}: ${what}`);
  const fallback = ENV_FALLBACKS[flag];
  if (fallback) lines.push(`# (when ${env} is unset, ${fallback.env}=${fallback.form} is used if set)`);
  lines.push(`#${env}=${def}`);
}
process.stdout.write(lines.join("\n") + "\n");
