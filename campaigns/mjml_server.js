// Long-lived MJML compiler for Crieur (campaigns/mjml.py drives it).
//
// Protocol: one JSON object per line on stdin, {"id", "mjml"}; one JSON object per line on
// stdout, {"id", "html", "errors"} or {"id", "error"} when mjml throws. A fresh `mjml`
// process costs ~0.3 s of start-up; this one pays it once.
//
// Usage: node mjml_server.js <node_modules dir>
// File-system includes are disabled: ignoreIncludes is always true, whatever is sent.
// With CRIEUR_MJML_TEST_HOOKS=1, {"id", "op": "sleep", "ms"} blocks the process (tests of
// the hang timeout) and {"id", "op": "exit"} exits abruptly (tests of the restart).
'use strict';

const path = require('path');
const readline = require('readline');

const modulesDir = path.resolve(process.argv[2] || path.join(__dirname, '..', 'node_modules'));
const mjml2html = require(path.join(modulesDir, 'mjml'));
const testHooks = process.env.CRIEUR_MJML_TEST_HOOKS === '1';

const OPTIONS = Object.freeze({
  validationLevel: 'soft',
  ignoreIncludes: true, // never read files named by the document (mj-include)
  keepComments: false,
  beautify: false,
  minify: false,
  fonts: {}, // no Google Fonts <link>: recipients' mail clients call nobody
});

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    reply({ id: null, error: 'bad request: ' + e.message });
    return;
  }
  const id = req.id === undefined ? null : req.id;
  if (testHooks && req.op === 'sleep') {
    const until = Date.now() + Number(req.ms || 0);
    while (Date.now() < until) { /* busy: simulate a hung compile */ }
    reply({ id, html: '', errors: [] });
    return;
  }
  if (testHooks && req.op === 'exit') {
    process.exit(3);
  }
  if (req.op === 'ping') {
    reply({ id, pong: true, version: require(path.join(modulesDir, 'mjml', 'package.json')).version });
    return;
  }
  try {
    const out = mjml2html(String(req.mjml || ''), OPTIONS);
    const errors = (out.errors || []).map((e) => ({
      line: e.line,
      message: e.message,
      tagName: e.tagName,
    }));
    reply({ id, html: out.html, errors });
  } catch (e) {
    reply({ id, error: String((e && e.message) || e) });
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (line.trim()) handle(line);
});
rl.on('close', () => process.exit(0));
